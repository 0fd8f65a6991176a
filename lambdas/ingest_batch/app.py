"""ingest_batch: the S3 Batch Operations function of a backfill (invocation schemas 1.0 and 2.0).

Each task is answered with a result a person can act on: ``Succeeded`` (task written, or already
known), ``TemporaryFailure`` (throttling, service errors: Batch Operations retries) or
``PermanentFailure`` (unsupported type, missing object).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import (
    S3BatchOperationEvent,
    S3BatchOperationResponse,
    S3BatchOperationResponseRecord,
    event_source,
)
from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG, error_code, error_message
from rekpipe_shared.ingestion import ingest_object
from rekpipe_shared.schema import METRICS_NAMESPACE, TASK_TABLE_NAME_ENV
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.tasks import TaskTable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import S3BatchOperationTask
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "ingest_batch"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

settings = PipelineSettings.from_environment()
tasks = TaskTable(os.environ[TASK_TABLE_NAME_ENV])
s3 = boto3.client("s3", config=DEFAULT_CONFIG)

_MISSING = {"404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NotFound"}
_DENIED = {"403", "AccessDenied", "AllAccessDisabled"}
_TEMPORARY = {
    "SlowDown", "503", "500", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestLimitExceeded",
    "ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError",
    "TransactionConflictException", "TransactionCanceledException",
}


@tracer.capture_method
def ingest_task(task: S3BatchOperationTask) -> S3BatchOperationResponseRecord:
    """Check one manifest entry against S3 and write its task; classify anything that goes wrong."""
    bucket, key, version_id = task.s3_bucket, task.s3_key, task.s3_version_id
    where = f"s3://{bucket}/{key}" + (f"?versionId={version_id}" if version_id else "")
    try:
        head_args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            head_args["VersionId"] = version_id
        head = s3.head_object(**head_args)
        outcome = ingest_object(
            tasks,
            settings,
            bucket=bucket,
            key=key,
            version_id=version_id or head.get("VersionId"),
            etag=head.get("ETag"),
            size=int(head.get("ContentLength", 0)),
            source="batch",
        )
    except ClientError as error:
        code = error_code(error)
        if code in _MISSING:
            return _result(task, "PermanentFailure",
                           f"Object not found: {where}. It was deleted or the manifest is stale; rebuild it.", code)
        if code in _DENIED:
            return _result(task, "PermanentFailure",
                           f"Access denied to {where}: grant the ingest_batch function s3:GetObject on it.", code)
        if code in _TEMPORARY:
            return _result(task, "TemporaryFailure", f"{code} on {where}: {error_message(error)}; will retry.", code)
        return _result(task, "PermanentFailure", f"{code} on {where}: {error_message(error)}", code)
    except BotoCoreError as error:  # connection resets, timeouts: worth another try
        return _result(task, "TemporaryFailure", f"{type(error).__name__} on {where}: {error}; will retry.",
                       type(error).__name__)

    if outcome.outcome in ("created", "duplicate"):
        label = "Task created" if outcome.outcome == "created" else "Already known"
        return _result(task, "Succeeded", f"{label}: task {outcome.task_id} ({outcome.reason})", outcome.outcome)
    if outcome.outcome == "rejected":
        return _result(task, "Succeeded", f"Recorded as FAILED, task {outcome.task_id}: {outcome.reason}", "rejected")
    return _result(task, "PermanentFailure", f"Not analysed: {where} is a {outcome.reason}.", "skipped")


def _result(task: S3BatchOperationTask, code: str, text: str, outcome: str) -> S3BatchOperationResponseRecord:
    logger.info(text, extra={"result_code": code, "outcome": outcome, "batch_task_id": task.task_id})
    metrics.add_metric(name=f"Batch{code}", unit=MetricUnit.Count, value=1)
    if outcome == "created":
        metrics.add_metric(name="TasksIngested", unit=MetricUnit.Count, value=1)
    return task.build_task_batch_response(code, text)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=S3BatchOperationEvent)
def handler(event: S3BatchOperationEvent, context: LambdaContext) -> dict[str, Any]:
    response = S3BatchOperationResponse(event.invocation_schema_version, event.invocation_id, "PermanentFailure")
    for task in event.tasks:
        response.add_result(ingest_task(task))
    return response.asdict()
