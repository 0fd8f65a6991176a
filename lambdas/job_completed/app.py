"""job_completed: turns Rekognition's SNS completion notices into ``done`` messages for the slot dispatcher.

Notices arrive through SQS (so none is lost while this function is throttled or failing). The
dispatcher starts every job with ``JobTag = holder``, so the notice names the holder whose slot it
frees and whose token it resumes. A notice leaves its queue only after its ``done`` was sent, so a
failed send is redelivered (within seconds) and sent again; the dispatcher ignores duplicates. A
notice of a job this pipeline did not start (its JobTag is no holder id) is logged and dropped.
"""

from __future__ import annotations

import os
import random
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG, error_code
from rekpipe_shared.batches import process_sqs_batch
from rekpipe_shared.get_calls import GetCaller, default_limiter, get_client, job_status
from rekpipe_shared.operations import CATALOGUE
from rekpipe_shared.payloads import JobNotice
from rekpipe_shared.schema import (
    METRICS_NAMESPACE,
    RATE_LIMIT_TABLE_NAME_ENV,
    SLOT_MESSAGE_GROUP,
    SLOT_QUEUE_URL_ENV,
)
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.slots.messages import Done, done_deduplication_id, encode, is_holder_id

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "job_completed"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

sqs = boto3.client("sqs", config=DEFAULT_CONFIG)
settings = PipelineSettings.from_environment()
SLOT_QUEUE_URL = os.environ[SLOT_QUEUE_URL_ENV]
rekognition = get_client()
# paced at the account's Get* quotas, found at run time
limiter = default_limiter(settings, os.environ.get(RATE_LIMIT_TABLE_NAME_ENV))
STATUS_MESSAGE_ATTEMPTS = 3
"""The failure is reported with or without Rekognition's reason; a few paced tries are enough."""

REDELIVERY_DELAY_SECONDS = (1, 3)
"""Visibility given to a notice whose send failed: a short, jittered pause before it is resent."""


@tracer.capture_method
def resume(record: SQSRecord) -> None:
    """Tell the slot dispatcher that this notice's job ended.

    A failed send raises (after shortening the notice's visibility), so the notice comes back in
    seconds and is sent again; it is never dropped unsent.
    """
    notice = JobNotice.from_sqs_record(record)
    job_id, tag, status = notice.job_id, notice.job_tag, notice.status
    logger.append_keys(job_id=job_id, job_tag=tag)
    if not (is_holder_id(tag) and job_id and status):
        logger.warning("Notice for a job this pipeline did not start; ignored", extra={"status": status})
        metrics.add_metric(name="UnknownJobNotices", unit=MetricUnit.Count, value=1)
        return
    message = "" if status == "SUCCEEDED" else _status_message_for_api(notice.api, job_id, status)
    try:
        _send_done(str(tag), str(job_id), str(status), message)
    except ClientError:
        metrics.add_metric(name="JobNoticeSendFailures", unit=MetricUnit.Count, value=1)
        _redeliver_soon(record)
        raise
    if status != "SUCCEEDED":
        metrics.add_metric(name="VideoJobsFailed", unit=MetricUnit.Count, value=1)


def _status_message_for_api(api: Any, job_id: str, status: str) -> str:
    """Rekognition's reason for a failed job, found from the notice's ``API`` (its Start* name)."""
    names = [name for name, op in CATALOGUE.items() if op.video_start_api == api]
    return _status_message(names[0], job_id, status) if names else f"job {job_id} ended {status}"


def _send_done(holder: str, job_id: str, status: str, message: str = "") -> None:
    """A job the slot dispatcher started: tell the single writer, which resumes the holder's token and
    frees its slot. A failed send raises, so the notice is redelivered; a duplicate is dropped by SQS's
    deduplication ID within 5 minutes, and is a no-op for the rules after it."""
    sqs.send_message(QueueUrl=SLOT_QUEUE_URL, MessageBody=encode(Done(holder, job_id, status, message)),
                     MessageGroupId=SLOT_MESSAGE_GROUP, MessageDeduplicationId=done_deduplication_id(job_id))
    logger.info("Job notice sent to the slot dispatcher", extra={"status": status, "holder": holder})


def _redeliver_soon(record: SQSRecord) -> None:
    """Bring a failed notice back in seconds instead of after the queue's visibility timeout (minutes),
    so the waiting execution is resumed promptly; the notice returns anyway if this call fails."""
    try:
        sqs.change_message_visibility(QueueUrl=_queue_url(record.event_source_arn),
                                      ReceiptHandle=record.receipt_handle,
                                      VisibilityTimeout=random.randint(*REDELIVERY_DELAY_SECONDS))
    except ClientError as error:
        logger.warning("Could not shorten the notice's visibility; it returns after the queue's timeout",
                       extra={"error_code": error_code(error)})


@lru_cache(maxsize=4)
def _queue_url(queue_arn: str) -> str:
    _, _, _, _, account, name = queue_arn.split(":", 5)
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def _status_message(operation_name: str, job_id: str | None, status: str | None) -> str:
    """Rekognition's own reason for the failure (the notice does not carry it)."""
    try:
        caller = GetCaller(rekognition, limiter, max_attempts=STATUS_MESSAGE_ATTEMPTS, cap_seconds=2.0)
        message = job_status(caller.call, operation_name, str(job_id)).message or f"job {job_id} ended {status}"
        return f"Rekognition reports job {job_id} {status}: {message}"
    except Exception as error:  # the failure itself must still be reported
        return f"job {job_id} ended {status} (status message unavailable: {error_code(error)})"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_sqs_batch(event, resume, context)
