"""Event source mappings as Lambda's own pollers run them: SQS queues and DynamoDB streams.

moto's event source mappings invoke the function synchronously inside the SendMessage or PutItem
call, one record at a time. The embedded runtime needs what AWS does instead: pollers that batch
(BatchSize), bound parallelism (MaximumConcurrency), honour ReportBatchItemFailures and leave
failed messages for the queue's redelivery, and retry a stream batch from its first failure
before sending it to the on-failure destination. Functions are invoked through moto's
``lambda.invoke``, so the in-process adapter runs the real handlers.

Over 400 lines: the SQS and the stream pollers share their invoke, stats, stop and long-poll rules, which AWS
documents together (Lambda Developer Guide, "Lambda event source mappings").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from rekpipe.emulator.event_filters import matches_any
from rekpipe.emulator.iam.signing import acting_as

LOG = logging.getLogger("rekpipe.emulator")
POLL_INTERVAL_SECONDS = 0.05
"""Pause after a failed poll, so a poller that keeps failing does not spin."""
IDLE_LONG_POLL_SECONDS = 20
"""The lead poller's ``WaitTimeSeconds`` on an empty queue: the longest SQS allows (SQS Developer Guide,
"Setting-up long polling"). An idle queue costs one receive per 20 s, and a message that arrives wakes
the receive within a second (moto re-checks the queue once a second)."""
BUSY_LONG_POLL_SECONDS = 1
"""The other pollers' wait: they poll only while the lead is finding messages, then park again."""
STREAM_POLL_SECONDS = 0.25
"""Lambda polls each stream shard four times per second (Lambda Developer Guide, "Using AWS Lambda with
Amazon DynamoDB"); a stream poller that just found records reads again after this long."""
STREAM_IDLE_POLL_SECONDS = 2.0
"""An idle stream poller doubles its pause up to this, so an idle runtime stays quiet (each read is
three requests); the first record after an idle spell is delivered within this long."""
STOP_JOIN_SECONDS = 2.0
"""How long ``stop()`` waits for a poller; a lead poller inside its 20 s receive is left to end alone (a
daemon thread that delivers nothing once stopped, as a poller that dies would)."""


def aws_client(service: str, region: str | None = None) -> Any:
    """A boto3 client for the emulator; streams get the regional endpoint moto serves in-process."""
    region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    if service == "dynamodbstreams" and not (
        os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
    ):
        # botocore routes streams to an account-id endpoint that moto's in-process mock does not serve
        return boto3.client(
            service, region_name=region, endpoint_url=f"https://streams.dynamodb.{region}.amazonaws.com"
        )
    return boto3.client(service, region_name=region)


@dataclass
class InvocationResult:
    """What one invoke returned: the payload, and whether the function raised."""

    payload: Any
    function_error: str | None


def invoke(lambda_client: Any, function_name: str, event: dict[str, Any]) -> InvocationResult:
    response = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event, default=str).encode())
    raw = response["Payload"].read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return InvocationResult(payload, response.get("FunctionError"))


@dataclass
class EventSourceStats:
    """Counts a benchmark or test can read: batches, records, failures."""

    batches: int = 0
    records: int = 0
    failed_records: int = 0
    function_errors: int = 0
    filtered: int = 0
    """Records the mapping's FilterCriteria dropped (never delivered, never billed as invocations)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, records: int, failed: int, error: bool) -> None:
        with self.lock:
            self.batches += 1
            self.records += records
            self.failed_records += failed
            self.function_errors += int(error)


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Received SQS messages shaped as the event Lambda's SQS poller delivers."""
    return {"Records": [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        for m in messages
    ]}


class SqsEventSource:
    """Polls one queue with up to ``max_concurrency`` concurrent invocations of ``batch_size`` messages.

    Parameters
    ----------
    queue_url, function_name: str
        The queue and the consumer.
    batch_size: int
        Messages per invocation (BatchSize).
    max_concurrency: int
        Concurrent invocations (MaximumConcurrency); each is one poller thread, as in Lambda.
    report_batch_item_failures: bool
        Delete everything but the reported failures (else nothing, on a function error).
    """

    def __init__(
        self,
        queue_url: str,
        function_name: str,
        *,
        batch_size: int = 10,
        max_concurrency: int = 5,
        report_batch_item_failures: bool = True,
        region: str | None = None,
        role_credentials: Any = None,
    ) -> None:
        self.role_credentials = role_credentials
        """The function's execution role: Lambda polls, deletes and reports with it (None: the caller's)."""
        self.queue_url = queue_url
        self.function_name = function_name
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.report_batch_item_failures = report_batch_item_failures
        self.region = region
        self.stats = EventSourceStats()
        self._stop = threading.Event()
        self._busy = threading.Event()
        """Set while the lead poller finds messages: the other pollers poll only then, as Lambda scales
        its pollers up with the backlog and back down when the queue is empty."""
        self._threads: list[threading.Thread] = []
        self._arn: str | None = None

    def start(self) -> SqsEventSource:
        sqs = aws_client("sqs", self.region)
        self._arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for index in range(self.max_concurrency):
            thread = threading.Thread(target=self._run, args=(index == 0,), name=f"sqs-{self.function_name}-{index}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def request_stop(self) -> None:
        """Tell the pollers to stop without waiting, so a runtime stops all its sources in one wait."""
        self._stop.set()
        self._busy.set()  # parked pollers wake and see the stop

    def stop(self, deadline: float | None = None) -> None:
        """Stop and wait for the pollers until ``deadline`` (monotonic; default ``STOP_JOIN_SECONDS`` from now).
        An idle lead poller may sit in a 20 s long poll; it sees the stop when the receive returns."""
        self.request_stop()
        deadline = time.monotonic() + STOP_JOIN_SECONDS if deadline is None else deadline
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self, lead: bool) -> None:
        sqs, lam = aws_client("sqs", self.region), aws_client("lambda", self.region)
        while not self._stop.is_set():
            if not lead and not self._busy.is_set():
                self._busy.wait()
                continue
            try:
                with acting_as(self.role_credentials):
                    received = self.poll_once(sqs, lam, wait_seconds=IDLE_LONG_POLL_SECONDS if lead
                                              else BUSY_LONG_POLL_SECONDS)
                if lead:
                    (self._busy.set if received else self._busy.clear)()
            except Exception:  # a poller must outlive any single bad batch, as Lambda's does
                if self._stop.is_set():
                    return  # the world went away under a receive that outlived stop()
                LOG.exception("SQS poller for %s failed a batch", self.function_name)
                self._stop.wait(POLL_INTERVAL_SECONDS)

    def poll_once(self, sqs: Any, lam: Any, *, wait_seconds: int = BUSY_LONG_POLL_SECONDS) -> int:
        """Receive one batch (long polling up to ``wait_seconds``) and deliver it; returns its size."""
        messages = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages or self._stop.is_set():
            return 0  # once stopped, what a receive returns is redelivered after its visibility timeout
        event = sqs_lambda_event(messages, self._arn or "",
                                 self.region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        with acting_as(None):  # the Lambda service invokes; no role's policy is involved
            result = invoke(lam, self.function_name, event)
        if result.function_error:
            self.stats.add(len(messages), len(messages), True)
            return len(messages)  # every message returns after its visibility timeout
        failed: set[str] = set()
        if self.report_batch_item_failures and isinstance(result.payload, dict):
            failed = {item["itemIdentifier"] for item in result.payload.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        self.stats.add(len(messages), len(failed), False)
        return len(messages)


class StreamReader:
    """Reads a DynamoDB stream in order, shaping records as Lambda delivers them.

    The position is kept as a count of records read and every read asks for a fresh
    ``AT_SEQUENCE_NUMBER`` iterator: moto 5.2.5 replaces a table's stream shard object when it rolls
    back a cancelled transaction, which strands any iterator held across calls.
    Upstream: docs/upstream/dynamodb-transact-rollback-replaces-table.md (same root cause as the
    ``TransactWriteItems`` fix in moto_fixes.py; still in moto at 0af643a, 2026-08-22).
    """

    def __init__(self, stream_arn: str, client: Any = None, *, region: str | None = None) -> None:
        self.stream_arn = stream_arn
        self.region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.client = client or aws_client("dynamodbstreams", self.region)
        self._positions: dict[str, int] = {}

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        shards = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            first = int(shard["SequenceNumberRange"]["StartingSequenceNumber"])
            position = self._positions.get(shard_id, 0)
            iterator = self.client.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=str(first + position))["ShardIterator"]
            batch = self.client.get_records(ShardIterator=iterator, Limit=limit)["Records"]
            self._positions[shard_id] = position + len(batch)
            records.extend(self._as_lambda_record(r) for r in batch)
        return records

    def has_unread(self) -> bool | None:
        """Whether moto's stream holds records this reader has not read, asked of moto's backend in this process
        (None if its model is not what this expects: then the poller reads every time).

        An idle poller asks this instead of making its three stream calls, so an idle runtime stays quiet; a
        record written raises the shard's length, so none is missed."""
        try:
            from moto.dynamodbstreams.models import dynamodbstreams_backends

            account = self.stream_arn.split(":")[4]
            backend = dynamodbstreams_backends[account][self.region]
            shard = backend._get_table_from_arn(self.stream_arn).stream_shard
            if shard is None:
                return False
            return len(shard.items) > self._positions.get(shard.id, 0)
        except Exception:  # a moto upgrade changed its model: read as before
            return None

    def _as_lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": change,
            "eventSourceARN": self.stream_arn,
        }


class StreamEventSource:
    """Reads a DynamoDB stream in order and delivers batches, retrying from the first failure.

    A batch that still fails after ``max_retry_attempts`` is described on the on-failure queue
    (as Lambda's OnFailure destination does) and the poller moves past it.
    """

    def __init__(
        self,
        stream_arn: str,
        function_name: str,
        *,
        batch_size: int = 100,
        max_retry_attempts: int = 10,
        on_failure_queue_url: str | None = None,
        region: str | None = None,
        role_credentials: Any = None,
        filter_patterns: list[dict[str, Any]] | None = None,
        batching_window_seconds: float = 0.0,
    ) -> None:
        self.role_credentials = role_credentials
        """The function's execution role: Lambda reads the stream and sends to the on-failure queue with it."""
        self.filter_patterns = list(filter_patterns or [])
        """The mapping's FilterCriteria: records that match none are dropped, never delivered."""
        self.batching_window_seconds = batching_window_seconds
        """Lambda waits up to this long for a full batch before it invokes (MaximumBatchingWindowInSeconds)."""
        self._gathering_since: float | None = None
        self.stream_arn = stream_arn
        self.function_name = function_name
        self.batch_size = batch_size
        self.max_retry_attempts = max_retry_attempts
        self.on_failure_queue_url = on_failure_queue_url
        self.region = region
        self.stats = EventSourceStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: StreamReader | None = None
        self._pending: list[dict[str, Any]] = []

    def start(self) -> StreamEventSource:
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.function_name}", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Tell the reader to stop without waiting."""
        self._stop.set()

    def stop(self) -> None:
        """Stop and wait for the reader: it finishes the batch it is delivering."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        streams, lam = aws_client("dynamodbstreams", self.region), aws_client("lambda", self.region)
        sqs = aws_client("sqs", self.region)
        pause = STREAM_POLL_SECONDS
        while not self._stop.is_set():
            try:
                with acting_as(self.role_credentials):
                    delivered = self.poll_once(streams, lam, sqs)
                if delivered:
                    pause = STREAM_POLL_SECONDS
                else:
                    self._stop.wait(pause)
                    pause = min(pause * 2, STREAM_IDLE_POLL_SECONDS)
            except Exception:
                LOG.exception("Stream poller for %s failed", self.function_name)
                self._stop.wait(POLL_INTERVAL_SECONDS)

    def poll_once(self, streams: Any, lam: Any, sqs: Any) -> int:
        """Deliver the next batch (after reading any new records); returns records delivered."""
        if self._reader is None:
            self._reader = StreamReader(self.stream_arn, streams, region=self.region)
        if len(self._pending) < self.batch_size and self._reader.has_unread() is not False:
            records = self._reader.read()
            kept = [r for r in records if matches_any(self.filter_patterns, r)]
            self.stats.filtered += len(records) - len(kept)
            self._pending.extend(kept)
        if not self._pending:
            return 0
        if len(self._pending) < self.batch_size and self.batching_window_seconds:
            self._gathering_since = self._gathering_since or time.monotonic()
            if time.monotonic() - self._gathering_since < self.batching_window_seconds:
                return 0  # keep gathering: the window is still open and the batch not full
        self._gathering_since = None
        batch = self._pending[: self.batch_size]
        for attempt in range(self.max_retry_attempts + 1):
            with acting_as(None):  # the Lambda service invokes; no role's policy is involved
                result = invoke(lam, self.function_name, {"Records": batch})
            if result.function_error:
                failed_from = 0
            else:
                failures = (
                    (result.payload or {}).get("batchItemFailures") or [] if isinstance(result.payload, dict) else []
                )
                if not failures:
                    self.stats.add(len(batch), 0, False)
                    del self._pending[: len(batch)]
                    return len(batch)
                first = min(str(f["itemIdentifier"]) for f in failures)
                failed_from = next((i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] == first), 0)
            self.stats.add(len(batch), len(batch) - failed_from, bool(result.function_error))
            del self._pending[:failed_from]
            batch = batch[failed_from:]
            if self._stop.wait(min(0.05 * 2**attempt, 1.0)):
                return 0
        if self.on_failure_queue_url:
            sqs.send_message(QueueUrl=self.on_failure_queue_url,
                             MessageBody=json.dumps(self.on_failure_record(batch, self.max_retry_attempts + 1)))
        LOG.error(
            "Stream batch for %s sent to the on-failure destination after %d attempts",
            self.function_name,
            self.max_retry_attempts + 1,
        )
        del self._pending[: len(batch)]
        return len(batch)

    def on_failure_record(self, batch: list[dict[str, Any]], attempts: int) -> dict[str, Any]:
        """The invocation record Lambda sends to a stream mapping's on-failure destination: metadata of
        the batch only, never its records (Lambda Developer Guide, "Retaining discarded records for a
        DynamoDB event source")."""
        shard = next(iter(self._reader._positions), "") if self._reader else ""  # the table has one shard here
        arrivals = [float(r["dynamodb"].get("ApproximateCreationDateTime") or time.time()) for r in batch]
        return {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.function_name,
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(min(arrivals)),
                "approximateArrivalOfLastRecord": _iso(max(arrivals)),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.05) -> bool:
    """Poll until ``predicate()`` is true or the timeout passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
