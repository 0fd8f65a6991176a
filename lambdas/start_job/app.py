"""start_job: stores the waiting task token, then starts the Rekognition video job.

Invoked by the StartJob state with ``lambda:invoke.waitForTaskToken``: the state waits until
job_completed resumes the token. The token goes in first, so a job that finishes at once finds
it; the ClientRequestToken makes a retried start return the same JobId instead of a second job.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG, error_code, error_message
from rekpipe_shared.constants import (
    JOB_TOKEN_TABLE_NAME_ENV,
    METRICS_NAMESPACE,
    REKOGNITION_ROLE_ARN_ENV,
    VIDEO_TOPIC_ARN_ENV,
)
from rekpipe_shared.exceptions import (
    JobLimitExceededError,
    JobRejectedError,
    RekognitionBusyError,
    ResultsUnreadableError,
)
from rekpipe_shared.get_calls import GetCaller, default_limiter, get_client
from rekpipe_shared.job_tokens import CLOSED_TOKEN_ERRORS, JobTokenStore, client_request_token, job_tag
from rekpipe_shared.operations import JOB_LIMIT_ERROR, PERMANENT_ERRORS, RETRYABLE_ERRORS, operation
from rekpipe_shared.settings import PipelineSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "start_job"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

settings = PipelineSettings.from_environment()
tokens = JobTokenStore(os.environ[JOB_TOKEN_TABLE_NAME_ENV])
TOPIC_ARN = os.environ[VIDEO_TOPIC_ARN_ENV]
ROLE_ARN = os.environ[REKOGNITION_ROLE_ARN_ENV]
# Legacy mode does not silently retry LimitExceededException as throttling: the state machine's
# Retry owns that wait, with a backoff measured in tens of seconds rather than milliseconds.
rekognition = boto3.client("rekognition", config=Config(retries={"mode": "legacy", "max_attempts": 3}))
sfn = boto3.client("stepfunctions", config=DEFAULT_CONFIG)
get_rekognition = get_client()
limiter = default_limiter(settings.video_get_tps_quota)
_context: LambdaContext | None = None


def _seconds_left() -> float:
    return _context.get_remaining_time_in_millis() / 1000 if _context else 30.0


@tracer.capture_method
def start_job(event: dict[str, Any]) -> dict[str, Any]:
    """Store the token, start (or find again) the job, and resume at once if it is already over."""
    task, op = event["task"], operation(event["operation"])
    assert op.video_start_api is not None and op.video_get_api is not None
    tag = job_tag(task["task_id"], int(task["run"]), op.name)
    logger.append_keys(task_id=task["task_id"], operation=op.name, job_tag=tag)
    tokens.put_token(tag, task_token=event["taskToken"], operation=op.name, task_id=task["task_id"],
                     execution_arn=event.get("executionArn", ""))
    request = op.video_start_request(
        task["bucket"], task["key"], task.get("version_id"), settings=settings, job_tag=tag,
        client_request_token=client_request_token(task["task_id"], int(task["run"]), op.name),
        topic_arn=TOPIC_ARN, role_arn=ROLE_ARN,
    )
    try:
        job_id = getattr(rekognition, xform_name(op.video_start_api))(**request)["JobId"]
    except ClientError as error:
        code = error_code(error)
        if code == JOB_LIMIT_ERROR:
            metrics.add_metric(name="JobLimitExceeded", unit=MetricUnit.Count, value=1)
            raise JobLimitExceededError(f"{op.video_start_api}: {error_message(error)}") from error
        if code in PERMANENT_ERRORS:
            raise JobRejectedError(code, error_message(error)) from error
        if code in RETRYABLE_ERRORS:
            raise RekognitionBusyError(f"{code} from {op.video_start_api}: {error_message(error)}") from error
        raise
    tokens.set_job_id(tag, job_id)
    metrics.add_metric(name="VideoJobsStarted", unit=MetricUnit.Count, value=1)
    if event.get("resume"):
        _resume_if_finished(op.video_get_api, job_id, event["taskToken"], tag)
    logger.info("Video job started", extra={"job_id": job_id, "api": op.video_start_api})
    return {"jobId": job_id, "jobTag": tag}


def _resume_if_finished(get_api: str, job_id: str, token: str, tag: str) -> None:
    """After a lost notice the job may already be over: answer the new token ourselves.

    Get* is paced and retried; when it stays throttled, RekognitionThrottledError goes to the state
    machine, whose retry of StartJob finds the same job again (same ClientRequestToken).
    Send first, then claim (as job_completed does): a send that fails raises, nothing is claimed,
    and the notice or the retried StartJob sends it again. A closed token is harmless and logged.
    """
    caller = GetCaller(get_rekognition, limiter, seconds_left=_seconds_left)
    try:
        response = caller.call(get_api, {"JobId": job_id, "MaxResults": 1})
    except ClientError as error:
        raise ResultsUnreadableError(get_api, job_id, error_code(error), error_message(error)) from error
    finally:
        if caller.retry_count:
            metrics.add_metric(name="GetRetries", unit=MetricUnit.Count, value=caller.retry_count)
    status = response["JobStatus"]
    if status == "IN_PROGRESS" or tokens.already_notified(tokens.find(tag=tag, job_id=None) or {}, token):
        return
    try:
        if status == "SUCCEEDED":
            sfn.send_task_success(taskToken=token, output=f'{{"jobId": "{job_id}", "status": "SUCCEEDED"}}')
        else:
            sfn.send_task_failure(taskToken=token, error="JobFailedError",
                                  cause=f"Rekognition reports job {job_id} {status}: "
                                        f"{response.get('StatusMessage') or 'no status message'}")
    except ClientError as error:
        if error_code(error) not in CLOSED_TOKEN_ERRORS:
            raise
        logger.info("Token already closed (its notice resumed it first); the send was harmless",
                    extra={"job_id": job_id, "error_code": error_code(error)})
    tokens.mark_notified(tag, token, status)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _context
    _context = context
    return start_job(event)
