"""analyze_image: runs the configured Rekognition image APIs on each queued image.

Throttling is retried with capped, jittered backoff while the invocation has time, then left to
SQS; an error about the object itself fails the task at once; one failed analysis keeps the
others' results (PARTIAL). Each finished analysis is recorded as it lands, so a retry never
calls (or pays for) it again. Results go under the run's own prefix (``rekpipe_shared.outputs``);
an error the catalogue calls a result (face_search on a face-less image) is recorded as one.
"""

from __future__ import annotations

import os
import random
import time
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore import xform_name
from botocore.exceptions import ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG, error_code, error_message
from rekpipe_shared.batches import process_sqs_batch
from rekpipe_shared.exceptions import ResultPendingError, RetryableAnalysisError
from rekpipe_shared.get_calls import GET_CLIENT_CONFIG
from rekpipe_shared.operations import OBJECT_ERRORS, RETRYABLE_ERRORS, THROTTLING_ERRORS, operation
from rekpipe_shared.outputs import ResultsLayout, put_json, write_latest_pointer, write_manifest
from rekpipe_shared.pacing import AimdPacer, SharedSchedule
from rekpipe_shared.payloads import WorkMessage
from rekpipe_shared.quotas import pipeline_quotas
from rekpipe_shared.result_index import ResultIndex, model_version_of
from rekpipe_shared.reuse import ResultReuse, reused_entry
from rekpipe_shared.schema import (
    IMAGE_QUEUE_URL_ENV,
    METRICS_NAMESPACE,
    OUTPUT_BUCKET_ENV,
    RATE_LIMIT_TABLE_NAME_ENV,
    RESULT_INDEX_TABLE_NAME_ENV,
    STATUS_FAILED,
    STATUS_PARTIAL,
    STATUS_SUCCEEDED,
    TASK_TABLE_NAME_ENV,
)
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.tasks import TaskTable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from rekpipe_shared.reuse import ReusePlan

SERVICE = "analyze_image"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

settings = PipelineSettings.from_environment()
tasks = TaskTable(os.environ[TASK_TABLE_NAME_ENV])
OUTPUT_BUCKET = os.environ[OUTPUT_BUCKET_ENV]
QUEUE_URL = os.environ[IMAGE_QUEUE_URL_ENV]
# No botocore retries: a retry inside botocore would skip the pacer; every retry here is paced and counted.
rekognition = boto3.client("rekognition", config=GET_CLIENT_CONFIG)
s3 = boto3.client("s3", config=DEFAULT_CONFIG)
sqs = boto3.client("sqs", config=DEFAULT_CONFIG)
quotas = pipeline_quotas(settings, sorted({operation(name).image_api for name in settings.all_image_operations
                                           if operation(name).image_api}))
pacer = AimdPacer(quotas, SharedSchedule(os.environ.get(RATE_LIMIT_TABLE_NAME_ENV)))
reuse = ResultReuse(ResultIndex(os.environ[RESULT_INDEX_TABLE_NAME_ENV]) if os.environ.get(RESULT_INDEX_TABLE_NAME_ENV)
                    else None, s3, OUTPUT_BUCKET, settings)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
MAX_ATTEMPTS = 8
"""Calls of one API for one image in one invocation; then the message goes back to the queue."""
TIME_RESERVE_SECONDS = 10.0
"""Time kept back to record the outcome and hand the message back before the function times out."""
REDELIVERY_DELAY_SECONDS = (15, 60)
"""Visibility timeout given to a message handed back for throttling: a jittered short pause."""
FOLLOWER_DELAY_SECONDS = (2, 60)
"""Bounds of the pause of a task waiting for an identical object's analysis: a third of the leader's
lease left, so a follower is back soon after a normal analysis and uses few of its receives."""



def _seconds_left(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000


def call_rekognition(api: str, request: dict[str, Any], task_id: str, context: LambdaContext) -> dict[str, Any]:
    """Call one image API at its place under the shared quota, backing off (capped, full jitter) on
    throttling for at most ``MAX_ATTEMPTS`` calls and as long as this invocation (``context``) can afford."""
    method = getattr(rekognition, xform_name(api))
    attempt = 0
    while True:
        pacer.wait(api, max_wait=max(0.0, _seconds_left(context) - 2 * TIME_RESERVE_SECONDS))
        attempt += 1
        try:
            response = method(**request)
        except ClientError as error:
            code = error_code(error)
            if code not in RETRYABLE_ERRORS:
                raise
            throttled = code in THROTTLING_ERRORS
            if throttled:
                pacer.throttled(api)
            metrics.add_metric(name="Throttles" if throttled else "ServiceErrors", unit=MetricUnit.Count, value=1)
            delay = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))
            if attempt >= MAX_ATTEMPTS or _seconds_left(context) - delay < TIME_RESERVE_SECONDS:
                raise RetryableAnalysisError(task_id, f"{code} from {api} after {attempt} calls") from error
            time.sleep(delay)
            continue
        pacer.succeeded(api)
        response.pop("ResponseMetadata", None)
        return response


@tracer.capture_method
def analyze(task_id: str, context: LambdaContext) -> str | None:
    """Run every requested analysis of one image within this invocation's time (``context``); returns the
    final status (None if not ours to run)."""
    lease = int(_seconds_left(context)) + 30
    task = tasks.claim(task_id, lease_seconds=lease)
    if task is None:
        current = tasks.get(task_id)
        logger.info("Task not claimable; duplicate or already running",
                    extra={"task_id": task_id, "status": (current or {}).get("status", "missing")})
        return None
    logger.append_keys(task_id=task_id)
    layout = ResultsLayout.for_task(task)
    outputs: dict[str, str] = dict(task.get("outputs") or {})
    errors: dict[str, dict[str, str]] = {}
    # Analyses done by an earlier attempt are skipped: never pay twice.
    todo = [operation(name) for name in task["operations"] if operation(name).image_api not in outputs]
    identities = reuse.identities(task) if todo else ()
    for index, op in enumerate(todo):
        assert op.image_api is not None
        # Each result but the last is recorded as it lands, so a retry skips it; the last one is
        # recorded by the finishing write itself, which saves one write per image.
        last = index == len(todo) - 1
        plan = reuse.plan(task, op, identities, video=False)
        try:
            if plan is not None and _reused(task, plan, layout, outputs, lease):
                continue
        except ResultPendingError:
            tasks.release_claim(task_id, "waiting for identical content")
            raise
        request = op.image_request(task["bucket"], task["object_key"], task.get("version_id"), settings)
        try:
            response = call_rekognition(op.image_api, request, task_id, context)
        except RetryableAnalysisError:
            if plan is not None:
                reuse.withdraw(plan, task_id)
            tasks.release_claim(task_id, "throttled")
            raise
        except ClientError as error:
            if plan is not None:
                reuse.withdraw(plan, task_id)
            code, message = error_code(error), error_message(error)
            result = op.result_for_error(code, message)
            if result is not None:  # e.g. face_search on a face-less image: a search with no matches
                logger.info("Rekognition error recorded as a result", extra={"api": op.image_api, "error_code": code})
                outputs[op.image_api] = put_json(s3, OUTPUT_BUCKET, layout.image_result_key(op.image_api), result)
                if not last:
                    tasks.record_output(task_id, op.image_api, outputs[op.image_api])
                if plan is not None:
                    reuse.record(plan, task_id, outputs[op.image_api], None)
                continue
            _count_failure(code)
            if code in OBJECT_ERRORS:
                return _finish(task, STATUS_FAILED, outputs, {op.image_api: {"code": code, "message": message}},
                               error=(code, message))
            errors[op.image_api] = {"code": code, "message": message}
            logger.warning("Analysis failed", extra={"api": op.image_api, "error_code": code})
            continue
        outputs[op.image_api] = put_json(s3, OUTPUT_BUCKET, layout.image_result_key(op.image_api), response)
        if not last:
            tasks.record_output(task_id, op.image_api, outputs[op.image_api])
        if plan is not None:
            reuse.record(plan, task_id, outputs[op.image_api], model_version_of(response))
    if not errors:
        status = STATUS_SUCCEEDED
    elif outputs:
        status = STATUS_PARTIAL
    else:
        status = STATUS_FAILED
    first_error = next(iter(errors.values()), None)
    return _finish(task, status, outputs, errors,
                   error=(first_error["code"], first_error["message"]) if first_error else None)


def _reused(task: dict[str, Any], plan: ReusePlan, layout: ResultsLayout, outputs: dict[str, str], lease: int) -> bool:
    """Copy an identical object's stored result for this operation, if there is one (True when copied).

    Otherwise this task leads the analysis of those bytes, or, when another task leads it now, raises
    ResultPendingError so the message comes back once that analysis has likely landed.
    """
    task_id, api = task["task_id"], plan.api
    found = reuse.find(plan)
    if found is None and not plan.forced:
        claim = reuse.claim(plan, task_id, lease)
        if not claim.lead and claim.result is None:
            raise ResultPendingError(task_id, claim.leader_task_id, claim.wait_seconds)
        found = claim.result
    if found is None:
        return False
    uri = reuse.copy_file(plan, found, layout.image_result_key(api))
    if uri is None:  # the stored result expired: analyse (and index this one instead)
        return False
    outputs[api] = uri
    entry = reused_entry(found)
    tasks.record_reuse(task_id, api, uri, entry)
    task.setdefault("reused", {})[api] = entry
    metrics.add_metric(name="OperationsReused", unit=MetricUnit.Count, value=1)
    logger.info("Result reused from identical content", extra={"api": api, "source_task_id": found.source_task_id})
    return True


def _finish(task: dict[str, Any], status: str, outputs: dict[str, str], errors: dict[str, dict[str, str]],
            *, error: tuple[str, str] | None) -> str:
    layout = ResultsLayout.for_task(task)
    reused = dict(task.get("reused") or {})
    manifest_uri = write_manifest(s3, OUTPUT_BUCKET, task=task, layout=layout, status=status, outputs=outputs,
                                  errors=errors, reused=reused)
    write_latest_pointer(s3, OUTPUT_BUCKET, task=task, layout=layout, status=status, manifest_uri=manifest_uri)
    finished = tasks.finish(task["task_id"], status, outputs=outputs, manifest_uri=manifest_uri,
                            error_code=error[0] if error else None, error_message=error[1] if error else None,
                            operation_errors=errors or None)
    if finished is not None and reused and reuse.index is not None:
        saved = sum(operation(name).image_price for name in task["operations"]
                    if operation(name).image_api in reused)
        reuse.index.count_reuse(task["task_id"], operations=len(reused), saved_usd=saved)
    metrics.add_metric(name="ImagesAnalysed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=f"Images{status.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info("Image analysed", extra={"status": status, "outputs": len(outputs), "errors": list(errors)})
    return status


def _count_failure(code: str) -> None:
    with single_metric(name="AnalysisFailures", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as m:
        m.add_dimension(name="ErrorCode", value=code)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """One SQS message: one task id. A throttled task is handed back with a short, jittered delay.

    Powertools passes the invocation's context as ``lambda_context`` (the parameter's name asks for it),
    so concurrent invocations in one process (the emulator's threads) each see their own remaining time.
    """
    try:
        analyze(WorkMessage(record.json_body).task_id, lambda_context)
    except ResultPendingError as pending:
        low, high = FOLLOWER_DELAY_SECONDS
        delay = int(min(high, max(low, pending.wait_seconds / 3))) + random.randint(0, 3)
        sqs.change_message_visibility(QueueUrl=QUEUE_URL, ReceiptHandle=record.receipt_handle,
                                      VisibilityTimeout=delay)
        raise
    except RetryableAnalysisError:
        sqs.change_message_visibility(QueueUrl=QUEUE_URL, ReceiptHandle=record.receipt_handle,
                                      VisibilityTimeout=random.randint(*REDELIVERY_DELAY_SECONDS))
        raise


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_sqs_batch(event, record_handler, context)
