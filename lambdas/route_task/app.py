"""route_task: reads the task table's stream, routes each task that became PENDING, and keeps the counts
by status.

A task becomes PENDING when it is created and again when an operator re-queues it.
- An image is sent to the image queue first and marked QUEUED second: a crash in between sends a
  duplicate message, which the consumer's claim turns into a no-op; the other order could lose it.
- A video is marked QUEUED in the video backlog (``tasks.VIDEO_BACKLOG``), where it waits durably,
  for any time, until the slot dispatcher's tick admits it; open executions then stay near the slot
  limit for a backlog of any size. An admit-only tick is sent at once (one per batch that backlogs a
  video), so a lone upload does not wait for the schedule.

The mapping's filter (``rekpipe_shared.routing.STREAM_FILTER_PATTERNS``) hands it status changes only.
Once the batch is routed, the status changes of its records up to the first failed one are counted
in one small transaction, exactly once however often the batch comes back
(``rekpipe_shared.status_counts``).
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from rekpipe_shared.aws import DEFAULT_CONFIG
from rekpipe_shared.routing import send_to_queue
from rekpipe_shared.schema import (
    IMAGE_QUEUE_URL_ENV,
    MEDIA_IMAGE,
    MEDIA_VIDEO,
    METRICS_NAMESPACE,
    SLOT_QUEUE_URL_ENV,
    STATUS_PENDING,
    TASK_TABLE_NAME_ENV,
    VIDEO_QUEUE_URL_ENV,
)
from rekpipe_shared.slots.nudge import nudge_admission
from rekpipe_shared.status_counts import StatusCounts
from rekpipe_shared.tasks import TaskTable, from_stream_image, is_counter_id

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "route_task"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
tasks = TaskTable(os.environ[TASK_TABLE_NAME_ENV])
sqs = boto3.client("sqs", config=DEFAULT_CONFIG)
QUEUES = {MEDIA_IMAGE: os.environ[IMAGE_QUEUE_URL_ENV], MEDIA_VIDEO: os.environ[VIDEO_QUEUE_URL_ENV]}
counts = StatusCounts(tasks.table_name, tasks.client)
SLOT_QUEUE_URL = os.environ[SLOT_QUEUE_URL_ENV]


def needs_routing(record: DynamoDBRecord) -> dict[str, Any] | None:
    """The task, if this change made it PENDING; None for every other change."""
    change = record.raw_event.get("dynamodb", {})
    new_image = change.get("NewImage")
    if not new_image or is_counter_id(new_image.get("task_id", {}).get("S", "#")):
        return None
    task = from_stream_image(new_image)
    if task.get("status") != STATUS_PENDING:
        return None
    old_image = change.get("OldImage")
    if old_image and from_stream_image(old_image).get("status") == STATUS_PENDING:
        return None  # some other attribute of a pending task changed
    return task


@tracer.capture_method
def route(record: DynamoDBRecord, backlogged: list[str]) -> None:
    """Send one pending task to its queue, then mark it QUEUED; a video goes to the backlog instead, and
    into ``backlogged`` (this invocation's list: the handler nudges the dispatcher once for all of them)."""
    task = needs_routing(record)
    if task is None:
        return
    task_id = task["task_id"]
    if task.get("media_type") == MEDIA_VIDEO:
        queued = tasks.mark_queued(task_id, backlog=True)
        backlogged.append(task_id)
    else:
        send_to_queue(sqs, QUEUES, task, run=int(task.get("run", 0)) + 1)
        queued = tasks.mark_queued(task_id)
    logger.info("Task routed" if queued else "Task already routed; duplicate stream record",
                extra={"task_id": task_id, "media_type": task["media_type"]})
    metrics.add_metric(name="TasksRouted", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Per invocation, as concurrent invocations can share this module (the embedded runtime): the processor
    # (it holds its batch while it runs) and the videos backlogged. A fully failed batch is reported item
    # by item, not raised: the failures are expected, not bugs.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    backlogged: list[str] = []
    response = process_partial_response(event=event, record_handler=partial(route, backlogged=backlogged),
                                        processor=processor, context=context)
    if backlogged:  # one nudge per batch, however many videos it added to the backlog
        nudge_admission(sqs, SLOT_QUEUE_URL)
    count_done(event.get("Records", []), response)  # raises on a failed count: the batch comes back
    return response


def count_done(records: list[dict[str, Any]], response: dict[str, Any]) -> None:
    """Count the batch's records before its first failed one: Lambda delivers that one and the rest again."""
    failed = {str(item["itemIdentifier"]) for item in response.get("batchItemFailures", [])}
    done = []
    for record in records:
        if str(record.get("dynamodb", {}).get("SequenceNumber")) in failed:
            break
        done.append(record)
    applied = counts.apply(done)
    if applied:
        metrics.add_metric(name="StatusChangesCounted", unit=MetricUnit.Count, value=sum(map(abs, applied.values())))
