"""find_stuck_tasks: counts in-flight tasks that outlived their expected bound with no live owner.

Scheduled by EventBridge. For each non-terminal status it reads the oldest tasks from the task
table's sparse ``in_flight`` index (never a scan), judges each against its lease or its execution
(:mod:`rekpipe_shared.stuck`) and publishes ``StuckPendingTasks``, ``StuckQueuedTasks`` and
``StuckInProgressTasks``, whose alarms tell an operator to run ``rekpipe redrive --stuck``.
A video parked behind an identical video's lead counts as stuck QUEUED once that lead is gone or its
leader's execution ended without a result (it reads the lead and the leader's task).
It changes nothing: recovery is the operator's call.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from rekpipe_shared.aws import DEFAULT_CONFIG
from rekpipe_shared.result_index import ResultIndex
from rekpipe_shared.schema import (
    IN_FLIGHT_STATUSES,
    METRICS_NAMESPACE,
    RESULT_INDEX_TABLE_NAME_ENV,
    TASK_TABLE_NAME_ENV,
    VIDEO_STATE_MACHINE_ARN_ENV,
)
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.stuck import StuckTaskInspector
from rekpipe_shared.tasks import TaskTable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "find_stuck_tasks"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

settings = PipelineSettings.from_environment()
inspector = StuckTaskInspector(
    TaskTable(os.environ[TASK_TABLE_NAME_ENV]),
    sfn_client=boto3.client("stepfunctions", config=DEFAULT_CONFIG),
    state_machine_arn=os.environ[VIDEO_STATE_MACHINE_ARN_ENV],
    index=ResultIndex(os.environ[RESULT_INDEX_TABLE_NAME_ENV]) if os.environ.get(RESULT_INDEX_TABLE_NAME_ENV) else None,
)
MAX_EXAMINED_PER_STATUS = 500
"""Oldest tasks judged per status and run: bounds the run's time; any stuck one already alarms."""
METRIC_NAMES = {"PENDING": "StuckPendingTasks", "QUEUED": "StuckQueuedTasks", "IN_PROGRESS": "StuckInProgressTasks"}


@tracer.capture_method
def find_stuck_tasks() -> dict[str, Any]:
    """Count stuck tasks per status; returns ``{status: {"stuck": n, "examined": n}}``."""
    found: dict[str, Any] = {}
    bounds = settings.stuck_after_seconds
    for status in IN_FLIGHT_STATUSES:
        stuck = examined = 0
        examples: list[str] = []
        for verdict in inspector.candidates(status, older_than_seconds=bounds[status]):
            examined += 1
            if verdict.stuck:
                stuck += 1
                if len(examples) < 5:
                    examples.append(verdict.task_id)
            if examined >= MAX_EXAMINED_PER_STATUS:
                break
        metrics.add_metric(name=METRIC_NAMES[status], unit=MetricUnit.Count, value=stuck)
        found[status] = {"stuck": stuck, "examined": examined}
        if stuck:
            logger.warning("Stuck tasks found; recover them with `rekpipe redrive --stuck`",
                           extra={"status": status, "stuck": stuck, "bound_seconds": bounds[status],
                                  "examples": examples})
    return found


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return find_stuck_tasks()
