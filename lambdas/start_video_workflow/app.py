"""start_video_workflow: starts one video state machine execution per queued video task.

The execution is named after the task and its run, so a redelivered message finds the
execution already there (ExecutionAlreadyExists) instead of starting, and paying for, a second.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from rekpipe_shared.aws import DEFAULT_CONFIG
from rekpipe_shared.constants import (
    METRICS_NAMESPACE,
    STATUS_IN_PROGRESS,
    TASK_TABLE_NAME_ENV,
    VIDEO_STATE_MACHINE_ARN_ENV,
)
from rekpipe_shared.tasks import TaskTable, execution_name

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "start_video_workflow"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
# A fully failed batch is reported item by item, not raised: the failures are expected, not bugs.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

tasks = TaskTable(os.environ[TASK_TABLE_NAME_ENV])
STATE_MACHINE_ARN = os.environ[VIDEO_STATE_MACHINE_ARN_ENV]
sfn = boto3.client("stepfunctions", config=DEFAULT_CONFIG)

VIDEO_LEASE_SECONDS = 7 * 24 * 3600
"""A video task is owned by its execution; the lease only stops the image-style reclaim."""


@tracer.capture_method
def start_workflow(record: SQSRecord) -> None:
    body = json.loads(record.body)
    task_id = body["task_id"]
    task = tasks.claim(task_id, lease_seconds=VIDEO_LEASE_SECONDS)
    if task is None:
        task = tasks.get(task_id)
        if task is None or task["status"] != STATUS_IN_PROGRESS or int(task.get("run", 0)) != int(body["run"]):
            logger.info("Video task not startable; duplicate or finished",
                        extra={"task_id": task_id, "status": (task or {}).get("status", "missing")})
            return
        # Claimed by an attempt that may have died before StartExecution: the name makes this safe.
    name = execution_name(task_id, int(task.get("run", body["run"])))
    execution_input = {
        "task": {
            "task_id": task_id,
            "bucket": task["bucket"],
            "key": task["object_key"],
            "version_id": task.get("version_id"),
            "etag": task.get("etag"),
            "run": int(task.get("run", body["run"])),
        },
        "operations": list(task["operations"]),
    }
    try:
        response = sfn.start_execution(stateMachineArn=STATE_MACHINE_ARN, name=name,
                                       input=json.dumps(execution_input))
        tasks.set_attributes(task_id, execution_arn=response["executionArn"])
        metrics.add_metric(name="VideoExecutionsStarted", unit=MetricUnit.Count, value=1)
        logger.info("Video execution started", extra={"task_id": task_id, "execution": name})
    except sfn.exceptions.ExecutionAlreadyExists:
        logger.info("Execution already exists; duplicate message", extra={"task_id": task_id, "execution": name})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=start_workflow, processor=processor, context=context)
