"""slot_dispatcher: the single writer of the video slots.

It consumes the slot FIFO queue, whose one message group makes Lambda hand it one batch at a time, and
applies each message with the slot rules (rekpipe_shared.slots). Each message has its own error
boundary: a message that breaks a rule is quarantined (an item in the slot table and a metric) and
acknowledged, so one bad message never stops the pipeline; a failure worth retrying (a throttled call,
a lost fence, the store itself) fails that message and, FIFO order being kept, the rest of the batch.
"""

from __future__ import annotations

import os
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG
from rekpipe_shared.quotas import VIDEO_JOBS, initial_slot_limit, pipeline_quotas
from rekpipe_shared.schema import (
    METRICS_NAMESPACE,
    REKOGNITION_ROLE_ARN_ENV,
    SEMAPHORE_TABLE_NAME_ENV,
    SLOT_QUEUE_URL_ENV,
    TASK_TABLE_NAME_ENV,
    VIDEO_QUEUE_URL_ENV,
    VIDEO_TOPIC_ARN_ENV,
)
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.slots import FenceError, SlotRules, SlotSettings, TransientWorldError, decode, superseded_ticks
from rekpipe_shared.slots.admission import Admission
from rekpipe_shared.slots.aws_world import AwsSlotWorld
from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore
from rekpipe_shared.tasks import TaskTable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "slot_dispatcher"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
settings = PipelineSettings.from_environment()
store = DynamoDBSlotStore(os.environ[SEMAPHORE_TABLE_NAME_ENV], default_limit=initial_slot_limit(settings))
sfn = boto3.client("stepfunctions", config=DEFAULT_CONFIG)
sqs = boto3.client("sqs", config=DEFAULT_CONFIG)
SLOT_QUEUE_URL = os.environ[SLOT_QUEUE_URL_ENV]
# Legacy retries: LimitExceededException must reach the rules at once (standard mode retries it as throttling).
rekognition = boto3.client("rekognition", config=Config(retries={"mode": "legacy", "max_attempts": 3}))
world = AwsSlotWorld(
    sfn=sfn, rekognition=rekognition, settings=settings, topic_arn=os.environ[VIDEO_TOPIC_ARN_ENV],
    role_arn=os.environ[REKOGNITION_ROLE_ARN_ENV],
    admit=Admission(TaskTable(os.environ[TASK_TABLE_NAME_ENV]), sqs, os.environ[VIDEO_QUEUE_URL_ENV]),
    quotas=pipeline_quotas(settings, [VIDEO_JOBS]),  # the tick takes a changed job quota as the stored limit
)
# The first pause after LimitExceededException is the operator's setting; the rest is the rules' tuning.
_backoff = float(settings.video_job_limit_retry_seconds)
rules = SlotRules(store, world, clock=time.time,
                  settings=SlotSettings(backoff_base=_backoff, backoff_max=max(SlotSettings.backoff_max, _backoff),
                                        heartbeat_interval=settings.video_slot_heartbeat_seconds / 3))
RETRY_LATER = (TransientWorldError, FenceError, ClientError, BotoCoreError)
"""Failures of a call or of the store (an error answer, or no answer: a connection or read timeout): the message
is redelivered. Anything else is a broken rule."""


@tracer.capture_method
def dispatch(record: SQSRecord, superseded: frozenset[str] = frozenset()) -> None:
    """Apply one message inside its own error boundary; a tick that a later tick of the batch repeats is
    acknowledged without work (``superseded``)."""
    if record.message_id in superseded:
        metrics.add_metric(name="SlotTicksCoalesced", unit=MetricUnit.Count, value=1)
        return
    try:
        message = decode(record.body)
        logger.append_keys(kind=message.kind)
        snap = rules.handle(message)
    except RETRY_LATER as error:
        logger.warning("Slot message failed; it is redelivered", extra={"message_id": record.message_id,
                                                                          "error": f"{type(error).__name__}: {error}"})
        metrics.add_metric(name="SlotMessageRetries", unit=MetricUnit.Count, value=1)
        raise
    except Exception as error:  # the boundary: quarantine, never block the group
        logger.exception("Slot message quarantined", extra={"message_id": record.message_id})
        store.quarantine(record.message_id, record.body, f"{type(error).__name__}: {error}")
        metrics.add_metric(name="SlotMessagesQuarantined", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name="SlotHolders", unit=MetricUnit.Count, value=len(snap.holders))
    metrics.add_metric(name="SlotWaiters", unit=MetricUnit.Count, value=len(snap.waiters))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # One processor per invocation (it holds its batch while it runs). FIFO: after the first failed message
    # the rest of the batch is reported failed too, keeping their order.
    processor = SqsFifoPartialProcessor()
    records = event.get("Records") or []
    superseded = frozenset(superseded_ticks([(r.get("messageId", ""), r.get("body", "")) for r in records]))
    try:
        response = process_partial_response(event=event, record_handler=partial(dispatch, superseded=superseded),
                                            processor=processor, context=context)
    except BatchProcessingError:  # every message failed: the whole batch returns, so bring it all back soon
        redeliver_soon(event, {"batchItemFailures": [{"itemIdentifier": r.get("messageId")}
                                                     for r in event.get("Records") or []]})
        raise
    redeliver_soon(event, response)
    return response


REDELIVERY_SECONDS = 5
"""Visibility given to failed slot messages: the group is blocked while any of its messages is in flight, so
waiting for the queue's visibility timeout (6 minutes) would stop every slot decision that long."""


def redeliver_soon(event: dict[str, Any], response: dict[str, Any]) -> None:
    """Make the batch's failed messages visible again in seconds (best effort: they return anyway)."""
    failed = {item["itemIdentifier"] for item in response.get("batchItemFailures") or []}
    for record in event.get("Records") or []:
        if record.get("messageId") not in failed:
            continue
        try:
            sqs.change_message_visibility(QueueUrl=SLOT_QUEUE_URL, ReceiptHandle=record["receiptHandle"],
                                          VisibilityTimeout=REDELIVERY_SECONDS)
        except ClientError as error:
            logger.warning("Could not shorten a failed slot message's visibility; it returns after the queue's "
                           "visibility timeout", extra={"message_id": record.get("messageId"), "error": str(error)})
