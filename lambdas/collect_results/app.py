"""collect_results: pages a finished job's Get* results straight to S3, resumably.

Each page (MaxResults 1000) is written as it arrives, with the running summary and the next
token saved beside it, so nothing large ever passes through the state machine (256 KB limit)
and a 6-hour video is collected over as many invocations as it needs (15-minute limit). Pages go
under the run's own prefix, so a re-run never mixes its pages with an earlier run's; a retried or
resumed collection picks up from the saved token. Get* is paced under the shared quota and its
throttling retried (``rekpipe_shared.get_calls``); only an error retrying cannot fix is final.
A finished result is indexed for identical videos, and the ones waiting on it are woken.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import event_source
from botocore.exceptions import ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG, error_code, error_message
from rekpipe_shared.content_identity import ContentIdentity
from rekpipe_shared.exceptions import ResultsUnreadableError
from rekpipe_shared.get_calls import GetCaller, default_limiter, get_client
from rekpipe_shared.operations import operation
from rekpipe_shared.outputs import COLLECT_STATE_NAME, SUMMARY_NAME, ResultsLayout, put_json, s3_uri
from rekpipe_shared.payloads import CollectResultsEvent
from rekpipe_shared.result_index import ResultIndex, model_version_of
from rekpipe_shared.reuse import IDENTITY_ATTR, ResultReuse, wake_waiters
from rekpipe_shared.schema import (
    METRICS_NAMESPACE,
    OUTPUT_BUCKET_ENV,
    RATE_LIMIT_TABLE_NAME_ENV,
    RESULT_INDEX_TABLE_NAME_ENV,
    VIDEO_QUEUE_URL_ENV,
)
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.video_summary import VideoSummary

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "collect_results"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

OUTPUT_BUCKET = os.environ[OUTPUT_BUCKET_ENV]
settings = PipelineSettings.from_environment()
rekognition = get_client()
# paced at the account's Get* quotas, found at run time
limiter = default_limiter(settings, os.environ.get(RATE_LIMIT_TABLE_NAME_ENV))
s3 = boto3.client("s3", config=DEFAULT_CONFIG)
sqs = boto3.client("sqs", config=DEFAULT_CONFIG)
VIDEO_QUEUE_URL = os.environ.get(VIDEO_QUEUE_URL_ENV, "")
reuse = ResultReuse(ResultIndex(os.environ[RESULT_INDEX_TABLE_NAME_ENV]) if os.environ.get(RESULT_INDEX_TABLE_NAME_ENV)
                    else None, s3, OUTPUT_BUCKET, settings)

TIME_RESERVE_SECONDS = 60.0
"""Stop paging with this much time left (one more slow page plus saving state) and let the state machine resume."""
STATE_NAME = COLLECT_STATE_NAME


def collect(event: CollectResultsEvent, context: LambdaContext) -> dict[str, Any]:
    """Write pages until done or until time runs short; returns where to resume."""
    task, op = event.task, operation(event.operation)
    assert op.video_get_api and op.video_result_key and op.video_start_api
    job_id = event.job_id
    prefix = ResultsLayout.for_task(task, video=True).video_folder_prefix(op.video_start_api)
    # Always look for saved state: a resumed collection, and a retried one (after throttling), go on
    # from the last saved token instead of paging from the start again.
    state = _load_state(prefix, job_id)
    summary = VideoSummary(op.name, state["summary"] if state else None)
    page = state["page"] if state else 0
    next_token = state["next_token"] if state else None
    caller = GetCaller(rekognition, limiter, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    try:
        result = _page(caller, op, job_id, prefix, summary, page, next_token, context)
        if result["done"]:
            _index(task, op, prefix, result.pop("modelVersion", None))
        return result
    finally:
        if caller.retry_count:
            metrics.add_metric(name="GetRetries", unit=MetricUnit.Count, value=caller.retry_count)
            logger.info("Get* calls retried", extra={"retries": caller.retries, "api": op.video_get_api})


def _page(caller: GetCaller, op: Any, job_id: str, prefix: str, summary: VideoSummary, page: int,
          next_token: str | None, context: LambdaContext) -> dict[str, Any]:
    while True:
        try:
            response = caller.call(op.video_get_api, op.video_get_request(job_id, next_token))
        except ClientError as error:  # not retryable: expired results, a bad token, access denied
            raise ResultsUnreadableError(op.video_get_api, job_id, error_code(error), error_message(error)) from error
        page += 1
        put_json(s3, OUTPUT_BUCKET, f"{prefix}page-{page:05d}.json", response)
        summary.add_page(response, op.video_result_key)
        next_token = response.get("NextToken")
        if not next_token:
            break
        _save_state(prefix, {"job_id": job_id, "page": page, "next_token": next_token, "summary": summary.state()})
        if context.get_remaining_time_in_millis() / 1000 < TIME_RESERVE_SECONDS:
            logger.info("Pausing collection; the state machine resumes it", extra={"page": page})
            metrics.add_metric(name="CollectionsResumed", unit=MetricUnit.Count, value=1)
            return {"done": False, "page": page, "prefix": s3_uri(OUTPUT_BUCKET, prefix)}
    model_version = model_version_of(response)
    summary_uri = put_json(s3, OUTPUT_BUCKET, f"{prefix}{SUMMARY_NAME}", summary.summary())
    s3.delete_object(Bucket=OUTPUT_BUCKET, Key=prefix + STATE_NAME)
    metrics.add_metric(name="ResultPagesWritten", unit=MetricUnit.Count, value=page)
    logger.info("Results collected", extra={"pages": page, "items": summary.state()["items"]})
    return {"done": True, "page": page, "items": summary.state()["items"], "prefix": s3_uri(OUTPUT_BUCKET, prefix),
            "summaryUri": summary_uri, "getRetries": caller.retry_count, "modelVersion": model_version}


def _index(task: dict[str, Any], op: Any, prefix: str, model_version: str | None) -> None:
    """Index this finished result, so an identical video later copies it instead of paying again."""
    identities = tuple(ContentIdentity.from_token(token) for token in task.get(IDENTITY_ATTR) or ())
    plan = reuse.plan(task, op, identities, video=True)
    if plan is not None:
        waiters = reuse.record(plan, task["task_id"], s3_uri(OUTPUT_BUCKET, prefix), model_version)
        if waiters:  # identical videos parked behind this analysis: they copy it now
            wake_waiters(sqs, VIDEO_QUEUE_URL, waiters)
            metrics.add_metric(name="VideoWaitersWoken", unit=MetricUnit.Count, value=len(waiters))
            logger.info("Waiting identical videos woken", extra={"waiters": waiters, "api": op.video_start_api})


def _save_state(prefix: str, state: dict[str, Any]) -> None:
    put_json(s3, OUTPUT_BUCKET, prefix + STATE_NAME, state)


def _load_state(prefix: str, job_id: str) -> dict[str, Any] | None:
    try:
        state = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key=prefix + STATE_NAME)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
    return state if state.get("job_id") == job_id else None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=CollectResultsEvent)
def handler(event: CollectResultsEvent, context: LambdaContext) -> dict[str, Any]:
    return collect(event, context)
