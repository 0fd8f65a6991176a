"""``rekpipe redrive --dlq``: every dead-letter queue of the stack, each handled in its own way.

=====================  ==============================================  ==================================
DLQ                    what a message is                                how it is redriven
=====================  ==============================================  ==================================
ImageDlq, VideoDlq,    a work message given up on after its            moved back to its source queue
JobCompletedDlq        maxReceiveCount (SQS redrive policy)
IngestS3Dlq            the S3 notice ingest_s3 failed on after its      re-ingested: ingest_s3 is invoked
                       async retries (Lambda async DLQ: the event,      with the notice (a duplicate is a
                       attributes RequestID, ErrorCode, ErrorMessage)   no-op)
RouteTaskFailures      metadata of a stream batch route_task failed     the tasks it left PENDING are
                       on (shard, sequence numbers; no records)         routed by the stuck-task path
VideoEventsDlq         an EventBridge event or a Scheduler tick whose   a status change is delivered to its
                       target failed (attributes RULE_ARN,              target again (record_ended_execution
                       TARGET_ARN, ERROR_CODE)                          or the slot queue); a tick is dropped
SlotDlq                a slot message failed 5 deliveries               moved back to the slot queue (FIFO)
=====================  ==============================================  ==================================

Sources: Lambda Developer Guide, "Retaining records of asynchronous invocations" (DLQ message
attributes) and "Retaining discarded records for a DynamoDB event source" (on-failure record);
EventBridge User Guide, "Using dead-letter queues to process undelivered events".

Every message is either handled and then deleted, or left in its DLQ with the reason printed;
nothing is deleted unprocessed. A message left alone reappears in its DLQ after the visibility
timeout this run gave it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe.cli.stack import Clients, StackOutputs

SQS_BATCH = 10
MOVE_VISIBILITY_SECONDS = 60
"""Long enough to send and delete one batch; a message not moved in time simply reappears in its DLQ."""
HANDLE_VISIBILITY_SECONDS = 300
"""A handled message may wait on a function invocation or a stuck-task pass before it is deleted."""
STREAM_FAILURE_MARGIN_SECONDS = 60
"""Clock skew allowed between a failed stream record and the task's ``updated_at``; routing a task
that did not need it is a harmless duplicate."""
_REASONS_SHOWN = 20

KIND_MOVE = "move back to the source queue"
KIND_S3_EVENTS = "re-ingest S3 notices"
KIND_STREAM_FAILURES = "route the tasks left PENDING"
KIND_EVENTS = "re-run the EventBridge target"
SPECIAL_DLQS = {
    "IngestS3DlqUrl": ("IngestS3Dlq", KIND_S3_EVENTS),
    "RouteTaskFailuresUrl": ("RouteTaskFailures", KIND_STREAM_FAILURES),
    "VideoEventsDlqUrl": ("VideoEventsDlq", KIND_EVENTS),
}
"""Stack output -> (label, how): the DLQs whose messages are not work messages of a source queue."""
STATUS_CHANGE_EVENT = "Step Functions Execution Status Change"


@dataclass
class DeadLetterResult:
    """Per DLQ label: messages handled (and deleted), and those left with their reasons."""

    handled: dict[str, int] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)
    reasons: list[tuple[str, str, str]] = field(default_factory=list)
    """(DLQ, message id, why it was left)."""

    def leave(self, label: str, message_id: str, reason: str) -> None:
        self.left[label] = self.left.get(label, 0) + 1
        self.reasons.append((label, message_id, reason))


def dead_letter_queues(outputs: StackOutputs) -> list[tuple[str, str, str]]:
    """(label, URL, kind) of every DLQ the stack outputs."""
    found = []
    for output, (label, kind) in SPECIAL_DLQS.items():
        if outputs.raw.get(output):
            found.append((label, outputs.raw[output], kind))
    special = {label for label, _, _ in found}
    for name, url in outputs.dlq_urls.items():
        if f"{name}Dlq" not in special:
            found.append((f"{name}Dlq", url, KIND_MOVE))
    return found


def redrive_dead_letters(clients: Clients, outputs: StackOutputs, *, max_messages: int, wait_seconds: int,
                         dry_run: bool) -> DeadLetterResult:
    """Redrive every DLQ (or, with ``dry_run``, count what each holds); print one line per DLQ."""
    from rekpipe.cli.console import note

    result = DeadLetterResult()
    queues = dead_letter_queues(outputs)
    if not queues:
        note(f"Stack {outputs.stack_name} has no dead-letter queue outputs: nothing to redrive")
        return result
    sqs = clients.client("sqs")
    for label, url, kind in queues:
        if dry_run:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            count = min(int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0)), max_messages)
            result.handled[label] = count
            click.echo(f"{label}: would {kind} for (approximately) {count:,} messages")
            continue
        if kind == KIND_MOVE:
            source_url = _source_queue(sqs, outputs, label[: -len("Dlq")], url)
            if source_url is None:
                note(f"{label}: no source queue found (no queue names it in its redrive policy, and the stack has "
                     f"no {label[: -len('Dlq')]}QueueUrl output); inspect it with "
                     f"`aws sqs receive-message --queue-url {url}`")
                continue
            _move_messages(sqs, label, url, source_url, result, max_messages=max_messages, wait_seconds=wait_seconds)
        elif kind == KIND_STREAM_FAILURES:
            _redrive_stream_failures(clients, outputs, sqs, label, url, result, max_messages=max_messages,
                                     wait_seconds=wait_seconds)
        else:
            handler = (_S3EventHandler(clients, outputs) if kind == KIND_S3_EVENTS
                       else _EventHandler(clients, outputs))
            _handle_each(sqs, label, url, handler, result, max_messages=max_messages, wait_seconds=wait_seconds)
        extra = (f", {result.left[label]:,} left in the DLQ (reasons on stderr)" if result.left.get(label) else "")
        click.echo(f"{label}: {kind}: {result.handled.get(label, 0):,} messages handled{extra}")
    for label, message_id, reason in result.reasons[:_REASONS_SHOWN]:
        note(f"{label}: message {message_id} left in the DLQ: {reason}")
    if len(result.reasons) > _REASONS_SHOWN:
        note(f"... and {len(result.reasons) - _REASONS_SHOWN:,} more messages left in their DLQs")
    return result


# --- receiving -------------------------------------------------------------------------------------
def _receive(sqs: Any, url: str, *, limit: int, wait_seconds: int, visibility: int) -> list[dict[str, Any]]:
    return list(sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=min(SQS_BATCH, limit), WaitTimeSeconds=wait_seconds,
        VisibilityTimeout=visibility, MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId", "SentTimestamp"],
    ).get("Messages", []))


def _delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), SQS_BATCH):
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages[start: start + SQS_BATCH])
        ])


# --- SQS redrive policies: move back -------------------------------------------------------------
def _source_queue(sqs: Any, outputs: StackOutputs, name: str, dlq_url: str) -> str | None:
    """The queue whose redrive policy targets this DLQ; else the stack's ``<Name>QueueUrl`` output."""
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
    if len(sources) == 1:
        return str(sources[0])
    by_name = outputs.raw.get(f"{name}QueueUrl")
    if by_name and (not sources or by_name in sources):
        return by_name
    return None


def _move_messages(sqs: Any, label: str, dlq_url: str, source_url: str, result: DeadLetterResult, *,
                   max_messages: int, wait_seconds: int) -> None:
    """Receive, send, delete in batches of 10 until the DLQ is empty or ``max_messages`` were seen.

    A message is deleted from the DLQ only after its send succeeded, so a crash in between
    duplicates a message (harmless: the pipeline is idempotent) but never loses one.
    """
    from rekpipe.cli.console import Progress

    fifo = source_url.endswith(".fifo")
    seen = 0
    with Progress() as progress:
        while seen < max_messages:
            received = _receive(sqs, dlq_url, limit=max_messages - seen, wait_seconds=wait_seconds,
                                visibility=MOVE_VISIBILITY_SECONDS)
            if not received:
                break
            seen += len(received)
            entries = [_send_entry(str(index), message, fifo=fifo) for index, message in enumerate(received)]
            sent = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
            sent_ids = {entry["Id"] for entry in sent.get("Successful", [])}
            for failure in sent.get("Failed", []):
                message = received[int(failure["Id"])]
                result.leave(label, message["MessageId"], f"send to the source queue failed: {failure.get('Code')}")
            _delete(sqs, dlq_url, [m for index, m in enumerate(received) if str(index) in sent_ids])
            result.handled[label] = result.handled.get(label, 0) + len(sent_ids)
            progress.update(f"{label}: moved {result.handled[label]:,} messages")


def _send_entry(entry_id: str, message: dict[str, Any], *, fifo: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attributes = {
        name: {key: value for key, value in attribute.items() if key in ("DataType", "StringValue", "BinaryValue")}
        for name, attribute in (message.get("MessageAttributes") or {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    if fifo:
        system = message.get("Attributes") or {}
        entry["MessageGroupId"] = system.get("MessageGroupId", "redrive")
        if system.get("MessageDeduplicationId"):
            entry["MessageDeduplicationId"] = system["MessageDeduplicationId"]
    return entry


# --- one message at a time: S3 notices and EventBridge events --------------------------------------
def _handle_each(sqs: Any, label: str, url: str, handle: Callable[[dict[str, Any]], str | None],
                 result: DeadLetterResult, *, max_messages: int, wait_seconds: int) -> None:
    """``handle(message)`` returns None when handled (then the message is deleted), else why not."""
    from rekpipe.cli.console import Progress

    seen = 0
    with Progress() as progress:
        while seen < max_messages:
            received = _receive(sqs, url, limit=max_messages - seen, wait_seconds=wait_seconds,
                                visibility=HANDLE_VISIBILITY_SECONDS)
            if not received:
                break
            seen += len(received)
            done = []
            for message in received:
                try:
                    reason = handle(message)
                except Exception as error:  # the message stays; the reason says what to look at
                    reason = f"{type(error).__name__}: {error}"
                if reason is None:
                    done.append(message)
                else:
                    result.leave(label, message["MessageId"], reason)
            _delete(sqs, url, done)
            result.handled[label] = result.handled.get(label, 0) + len(done)
            progress.update(f"{label}: {result.handled[label]:,} messages handled")


def _invoke(lambda_client: Any, function_arn: str, payload: str) -> str | None:
    """Invoke a function synchronously; None on success, else its error."""
    response = lambda_client.invoke(FunctionName=function_arn, Payload=payload.encode())
    if response.get("FunctionError"):
        body = response["Payload"].read().decode(errors="replace")
        try:
            error = json.loads(body)
            body = f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
        except (ValueError, AttributeError):
            pass
        return f"{function_arn.rsplit(':', 1)[-1]} failed again ({body[:300]})"
    return None


class _S3EventHandler:
    """Re-ingests a failed S3 notice by invoking ingest_s3 with it (the same code and settings)."""

    def __init__(self, clients: Clients, outputs: StackOutputs) -> None:
        self.lambda_client = clients.client("lambda")
        self.function_arn = outputs.raw.get("IngestS3FunctionArn")
        self.buckets = {b for b in (outputs.content_bucket_name,) if b}

    def __call__(self, message: dict[str, Any]) -> str | None:
        from rekpipe_shared.ingestion import is_s3_test_event

        try:
            event = json.loads(message["Body"])
        except ValueError:
            return "not JSON, so not an S3 notice"
        if is_s3_test_event(event):
            return None  # S3's test message: nothing to ingest (ingest_s3 ignores it now)
        records = event.get("Records") if isinstance(event, dict) else None
        if not records or not all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records):
            return "not an S3 notice (no Records from aws:s3)"
        foreign = {r.get("s3", {}).get("bucket", {}).get("name") for r in records} - self.buckets
        if foreign:
            return f"names bucket(s) {sorted(map(str, foreign))} this stack does not watch"
        if not self.function_arn:
            return "the stack has no IngestS3FunctionArn output: deploy the current version of the stack"
        return _invoke(self.lambda_client, self.function_arn, message["Body"])


class _EventHandler:
    """Re-delivers a failed EventBridge or Scheduler delivery to its target.

    - A status change from the record rule: record_ended_execution is invoked with it again.
    - A status change from the cancel rule (TARGET_ARN is the slot queue): it is sent to the slot queue
      again, in the slot group; ``cancel`` is idempotent.
    - A tick from the slot schedule: it is handled by being dropped, because every later tick does all
      that it would have done (reconcile, heartbeat, admit).
    """

    def __init__(self, clients: Clients, outputs: StackOutputs) -> None:
        self.lambda_client = clients.client("lambda")
        self.sqs = clients.client("sqs")
        self.state_machine_arn = outputs.video_state_machine_arn
        self.record_function = outputs.raw.get("RecordEndedExecutionFunctionArn")
        self.slot_queue_url = outputs.raw.get("SlotQueueUrl")

    def __call__(self, message: dict[str, Any]) -> str | None:
        try:
            event = json.loads(message["Body"])
        except ValueError:
            return "not JSON, so not an EventBridge event"
        if isinstance(event, dict) and event.get("kind") == "tick":
            return None  # superseded by the schedule's next tick
        kind = event.get("detail-type") if isinstance(event, dict) else None
        if kind != STATUS_CHANGE_EVENT:
            return f"an event of type {kind!r}, which no rule of this stack sends here"
        if (event.get("detail") or {}).get("stateMachineArn") != self.state_machine_arn:
            return "a status change of another state machine"
        named = ((message.get("MessageAttributes") or {}).get("TARGET_ARN") or {}).get("StringValue") or ""
        if named.startswith("arn:aws:sqs:"):
            return self._to_slot_queue(message["Body"])
        if not self.record_function:
            return "the stack has no RecordEndedExecutionFunctionArn output: deploy the current stack"
        if named and named.split(":")[:7] != self.record_function.split(":")[:7]:
            return f"its TARGET_ARN {named} is neither the slot queue nor {self.record_function}"
        return _invoke(self.lambda_client, self.record_function, message["Body"])

    def _to_slot_queue(self, body: str) -> str | None:
        from botocore.exceptions import ClientError

        from rekpipe_shared.schema import SLOT_MESSAGE_GROUP

        if not self.slot_queue_url:
            return "the stack has no SlotQueueUrl output: deploy the current stack"
        try:  # content-based deduplication, as for the rule's own delivery
            self.sqs.send_message(QueueUrl=self.slot_queue_url, MessageBody=body, MessageGroupId=SLOT_MESSAGE_GROUP)
        except ClientError as error:
            return f"send to the slot queue failed: {error.response.get('Error', {}).get('Code')}"
        return None


# --- stream failures: the stuck-task path -----------------------------------------------------------
def _redrive_stream_failures(clients: Clients, outputs: StackOutputs, sqs: Any, label: str, url: str,
                             result: DeadLetterResult, *, max_messages: int, wait_seconds: int) -> None:
    """Route every task still PENDING from before the latest failed batch, then delete the records.

    The on-failure record holds only the batch's metadata and the stream keeps records 24 hours,
    so the tasks are found in the ``in_flight`` index instead: a task of a failed batch that is
    still PENDING was last updated before that batch was read.
    """
    from rekpipe.cli.redrive_stuck import redrive_stuck

    received: list[dict[str, Any]] = []
    latest = 0.0
    while len(received) + result.left.get(label, 0) < max_messages:
        batch = _receive(sqs, url, limit=max_messages - len(received), wait_seconds=wait_seconds,
                         visibility=HANDLE_VISIBILITY_SECONDS)
        if not batch:
            break
        for message in batch:
            moment = _stream_failure_time(message)
            if moment is None:
                result.leave(label, message["MessageId"], "not a DynamoDB stream on-failure record")
                continue
            latest = max(latest, moment)
            received.append(message)
    if not received:
        return
    import time

    age = max(0.0, time.time() - latest - STREAM_FAILURE_MARGIN_SECONDS)
    outcomes = redrive_stuck(clients, outputs, statuses=("PENDING",), older_than=age, dry_run=False,
                             label=f"{label}: ")
    failed = sum(count for outcome, count in outcomes.get("PENDING", {}).items() if outcome.startswith("failed"))
    if failed:
        for message in received:
            result.leave(label, message["MessageId"], f"{failed} of its tasks could not be routed; run it again")
        return
    _delete(sqs, url, received)
    result.handled[label] = result.handled.get(label, 0) + len(received)


def _stream_failure_time(message: dict[str, Any]) -> float | None:
    """Epoch seconds of the failed batch's last record (else of the failure, else of the message)."""
    try:
        record = json.loads(message["Body"])
    except ValueError:
        return None
    info = record.get("DDBStreamBatchInfo") if isinstance(record, dict) else None
    if not isinstance(info, dict):
        return None
    for value in (info.get("approximateArrivalOfLastRecord"), record.get("timestamp")):
        if value:
            try:
                return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC).timestamp()
            except ValueError:
                continue
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    return int(sent) / 1000 if sent else None
