"""check_job: asks Rekognition how a job stands when its notice did not come in time.

The StartJob wait timed out: either the job is still running (wait again), finished and the
notice was lost (go on), or never started (start it again; the idempotency token makes that safe).
Get* is paced and its throttling retried (``rekpipe_shared.get_calls``); a job is reported FAILED
only when Rekognition says so.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from rekpipe_shared.aws import error_code, error_message
from rekpipe_shared.constants import JOB_TOKEN_TABLE_NAME_ENV, METRICS_NAMESPACE
from rekpipe_shared.exceptions import ResultsUnreadableError
from rekpipe_shared.get_calls import GetCaller, default_limiter, get_client
from rekpipe_shared.job_tokens import JobTokenStore, job_tag
from rekpipe_shared.operations import operation
from rekpipe_shared.settings import PipelineSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "check_job"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

tokens = JobTokenStore(os.environ[JOB_TOKEN_TABLE_NAME_ENV])
settings = PipelineSettings.from_environment()
rekognition = get_client()
limiter = default_limiter(settings.video_get_tps_quota)
_context: LambdaContext | None = None


def _seconds_left() -> float:
    return _context.get_remaining_time_in_millis() / 1000 if _context else 60.0


@tracer.capture_method
def check_job(event: dict[str, Any]) -> dict[str, Any]:
    """Returns ``{"status": IN_PROGRESS|SUCCEEDED|FAILED|NOT_STARTED, "jobId", "statusMessage"}``."""
    task, op = event["task"], operation(event["operation"])
    tag = job_tag(task["task_id"], int(task["run"]), op.name)
    item = tokens.find(tag=tag, job_id=None) or {}
    job_id = item.get("job_id")
    if not job_id:
        logger.warning("No job was recorded for this operation; it will be started again", extra={"job_tag": tag})
        return {"status": "NOT_STARTED", "jobId": None, "statusMessage": None}
    caller = GetCaller(rekognition, limiter, seconds_left=_seconds_left)
    try:
        response = caller.call(op.video_get_api, {"JobId": job_id, "MaxResults": 1})
    except ClientError as error:  # not retryable: the service no longer knows the job, or denies it
        raise ResultsUnreadableError(op.video_get_api, job_id, error_code(error), error_message(error)) from error
    finally:
        if caller.retry_count:
            metrics.add_metric(name="GetRetries", unit=MetricUnit.Count, value=caller.retry_count)
    status = response["JobStatus"]
    if status != "IN_PROGRESS":
        metrics.add_metric(name="LostJobNotices", unit=MetricUnit.Count, value=1)
    logger.info("Job checked after wait timeout", extra={"job_id": job_id, "status": status})
    message = response.get("StatusMessage")
    if status not in ("IN_PROGRESS", "SUCCEEDED"):
        message = f"Rekognition reports job {job_id} {status}: {message or 'no status message'}"
    return {"status": status, "jobId": job_id, "statusMessage": message}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _context
    _context = context
    return check_job(event)
