"""record_ended_execution: records the task of a video execution that failed, timed out or was aborted
as FAILED, so the video is listed for attention instead of staying IN_PROGRESS.

Target of the EventBridge rule on "Step Functions Execution Status Change" events of the video state
machine; such an execution never reaches RecordOutcome. Its slots are not this function's concern:
the same status change reaches the slot dispatcher as ``cancel``, which keeps a slot until its job is
known ended (a Rekognition job cannot be stopped).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from rekpipe_shared.schema import METRICS_NAMESPACE, STATUS_FAILED, TASK_TABLE_NAME_ENV
from rekpipe_shared.tasks import TaskTable, task_id_of_execution

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "record_ended_execution"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

tasks = TaskTable(os.environ[TASK_TABLE_NAME_ENV])

ENDED_WITHOUT_OUTCOME = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
"""Statuses whose executions never ran RecordOutcome; the EventBridge rule filters on the same list."""


class ExecutionStatusChangeEvent(EventBridgeEvent):
    """EventBridge "Step Functions Execution Status Change" event."""

    @property
    def execution_arn(self) -> str:
        return self.detail["executionArn"]

    @property
    def status(self) -> str:
        return self.detail["status"]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=ExecutionStatusChangeEvent)
def handler(event: ExecutionStatusChangeEvent, context: LambdaContext) -> dict[str, Any]:
    return record_ended_execution(event)


@tracer.capture_method
def record_ended_execution(event: ExecutionStatusChangeEvent) -> dict[str, Any]:
    """Mark the execution's task FAILED with why; a task already finished is left alone.

    Returns
    -------
    dict
        ``{"executionArn": str, "status": str, "recorded": bool}``; other statuses are ignored.
    """
    if event.status not in ENDED_WITHOUT_OUTCOME:
        logger.info("status needs no record", extra={"execution_arn": event.execution_arn, "status": event.status})
        return {"executionArn": event.execution_arn, "status": event.status, "recorded": False}
    task_id = task_id_of_execution(event.execution_arn)
    detail = event.detail
    reason = ": ".join(str(part) for part in (detail.get("error"), detail.get("cause")) if part)
    recorded = tasks.finish(
        task_id,
        STATUS_FAILED,
        error_code=f"Execution{event.status.title().replace('_', '')}",
        error_message=f"the video's execution ended {event.status} before recording an outcome"
        + (f" ({reason})" if reason else "") + "; re-run it with `rekpipe redrive --failed`",
    ) is not None
    logger.info("task recorded as failed" if recorded else "task already finished; left as it is",
                extra={"task_id": task_id, "status": event.status})
    if recorded:
        metrics.add_metric(name="VideoExecutionsEndedWithoutOutcome", unit=MetricUnit.Count, value=1)
    return {"executionArn": event.execution_arn, "status": event.status, "recorded": recorded}
