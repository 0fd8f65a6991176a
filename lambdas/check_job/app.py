"""check_job: asks Rekognition how a job stands when its notice did not come in time.

The StartJob wait timed out: either the job is still running (wait again), finished and the
notice was lost (go on), or never started (start it again; the idempotency token makes that safe).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore import xform_name

from rekpipe_shared.aws import DEFAULT_CONFIG
from rekpipe_shared.constants import JOB_TOKEN_TABLE_NAME_ENV, METRICS_NAMESPACE
from rekpipe_shared.job_tokens import JobTokenStore, job_tag
from rekpipe_shared.operations import operation

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "check_job"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

tokens = JobTokenStore(os.environ[JOB_TOKEN_TABLE_NAME_ENV])
rekognition = boto3.client("rekognition", config=DEFAULT_CONFIG)


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
    response = getattr(rekognition, xform_name(op.video_get_api))(JobId=job_id, MaxResults=1)
    status = response["JobStatus"]
    if status != "IN_PROGRESS":
        metrics.add_metric(name="LostJobNotices", unit=MetricUnit.Count, value=1)
    logger.info("Job checked after wait timeout", extra={"job_id": job_id, "status": status})
    return {"status": status, "jobId": job_id, "statusMessage": response.get("StatusMessage")}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return check_job(event)
