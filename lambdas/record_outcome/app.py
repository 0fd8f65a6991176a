"""record_outcome: records a video's outcome on its task and writes its manifest.

SUCCEEDED when every operation succeeded, PARTIAL when some failed (each with its error),
FAILED when none did. A failed video is a recorded outcome, not a failed execution: the
execution fails only when the outcome itself cannot be recorded, which a person must look at.
A failed operation's lead on the result index is withdrawn, so identical videos waiting on it run
their own analysis.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import event_source

from rekpipe_shared.aws import DEFAULT_CONFIG
from rekpipe_shared.content_identity import ContentIdentity
from rekpipe_shared.exceptions import TaskNotFoundError
from rekpipe_shared.operations import operation
from rekpipe_shared.outputs import ResultsLayout, write_latest_pointer, write_manifest
from rekpipe_shared.payloads import OperationResult, RecordOutcomeEvent
from rekpipe_shared.result_index import ResultIndex, request_options, reuse_key
from rekpipe_shared.reuse import IDENTITY_ATTR, wake_waiters
from rekpipe_shared.schema import (
    METRICS_NAMESPACE,
    OUTPUT_BUCKET_ENV,
    RESULT_INDEX_TABLE_NAME_ENV,
    STATUS_FAILED,
    STATUS_IN_PROGRESS,
    STATUS_PARTIAL,
    STATUS_SUCCEEDED,
    TASK_TABLE_NAME_ENV,
    TERMINAL_STATUSES,
    VIDEO_QUEUE_URL_ENV,
)
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.tasks import TaskTable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "record_outcome"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

tasks = TaskTable(os.environ[TASK_TABLE_NAME_ENV])
OUTPUT_BUCKET = os.environ[OUTPUT_BUCKET_ENV]
s3 = boto3.client("s3", config=DEFAULT_CONFIG)
reuse_index = (ResultIndex(os.environ[RESULT_INDEX_TABLE_NAME_ENV]) if os.environ.get(RESULT_INDEX_TABLE_NAME_ENV)
               else None)
settings = PipelineSettings.from_environment()
sqs = boto3.client("sqs", config=DEFAULT_CONFIG)
VIDEO_QUEUE_URL = os.environ.get(VIDEO_QUEUE_URL_ENV, "")


def outcome_of(results: list[OperationResult]) -> tuple[str, dict[str, str], dict[str, dict[str, str]]]:
    """Status, outputs (by Start API) and errors (by Start API) from the Map's results."""
    outputs: dict[str, str] = {}
    errors: dict[str, dict[str, str]] = {}
    for result in results:
        api = operation(result.operation).video_start_api or result.operation
        if result.succeeded:
            outputs[api] = result.output_uri
        else:
            errors[api] = {"code": str(result.error or "Unknown"), "message": _cause(result.cause)}
    if not errors:
        return STATUS_SUCCEEDED, outputs, errors
    return (STATUS_PARTIAL if outputs else STATUS_FAILED), outputs, errors


def _cause(cause: Any) -> str:
    """Step Functions wraps Lambda errors as JSON in Cause; keep the readable part."""
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
            if isinstance(parsed, dict) and "errorMessage" in parsed:
                return str(parsed["errorMessage"])
        except ValueError:
            pass
        return cause[:1000]
    return str(cause or "no details")[:1000]


def release_failed_leads(task: dict[str, Any], results: list[OperationResult]) -> None:
    """Withdraw this task's result-index lead of every failed operation and wake its waiters.

    A succeeded operation's lead was replaced by its result (collect_results woke its waiters); a
    failed one would otherwise hold identical videos until the stuck-task finder breaks it.
    Idempotent: a lead already withdrawn (or someone else's) is left alone.
    """
    failed = [result.operation for result in results if not result.succeeded]
    tokens = task.get(IDENTITY_ATTR) or ()
    if reuse_index is None or not failed or not tokens or not settings.reuse_results:
        return
    identity = ContentIdentity.from_token(tokens[0])  # start_video_workflow claims under the first identity
    for name in failed:
        op = operation(name)
        api = op.video_start_api
        if api is None:
            continue
        key = reuse_key(api, identity, request_options(op, settings, video=True))
        waiters = reuse_index.withdraw(key, task["task_id"])
        if waiters:
            wake_waiters(sqs, VIDEO_QUEUE_URL, waiters)
            metrics.add_metric(name="VideoWaitersWoken", unit=MetricUnit.Count, value=len(waiters))
            logger.info("Lead withdrawn; identical videos run their own analysis", extra={"api": api,
                                                                                         "waiters": waiters})


@tracer.capture_method
def record(event: RecordOutcomeEvent) -> dict[str, Any]:
    task_id = event.task_id
    logger.append_keys(task_id=task_id)
    task = tasks.get(task_id)
    if task is None:
        raise TaskNotFoundError(task_id)
    status, outputs, errors = outcome_of(event.results)
    # Before anything can fail below: a failed operation's lead is dropped and its waiters run their own.
    release_failed_leads(event.task, event.results)
    # Operations copied from an identical video before the execution started (start_video_workflow).
    reused: dict[str, dict[str, Any]] = dict(task.get("reused") or {})
    outputs = {**{api: uri for api, uri in (task.get("outputs") or {}).items() if api in reused}, **outputs}
    if task["status"] in TERMINAL_STATUSES:
        logger.info("Outcome already recorded", extra={"status": task["status"]})
        return {"status": task["status"], "manifestUri": task.get("manifest_uri")}
    # The run of this execution (the task's own run cannot move while it is IN_PROGRESS).
    layout = ResultsLayout.for_task({**task, "run": event.run or task.get("run")}, video=True)
    manifest_uri = write_manifest(s3, OUTPUT_BUCKET, task=task, layout=layout, status=status, outputs=outputs,
                                  errors=errors, reused=reused)
    write_latest_pointer(s3, OUTPUT_BUCKET, task=task, layout=layout, status=status, manifest_uri=manifest_uri)
    first_error = next(iter(errors.values()), None)
    recorded = tasks.finish(
        task_id, status, outputs=outputs, manifest_uri=manifest_uri,
        error_code=first_error["code"] if first_error else None,
        error_message=first_error["message"] if first_error else None,
        operation_errors=errors or None, from_status=STATUS_IN_PROGRESS,
    )
    if recorded is None:
        raise RuntimeError(f"task {task_id} left IN_PROGRESS while its execution ran; not overwriting it")
    if reused and reuse_index is not None:
        reuse_index.count_reuse(task_id, operations=len(reused),
                                saved_usd=sum(float(entry.get("saved_usd") or 0) for entry in reused.values()))
    metrics.add_metric(name="VideosAnalysed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=f"Videos{status.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info("Video outcome recorded", extra={"status": status, "errors": list(errors)})
    return {"status": status, "manifestUri": manifest_uri}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=RecordOutcomeEvent)
def handler(event: RecordOutcomeEvent, context: LambdaContext) -> dict[str, Any]:
    return record(event)
