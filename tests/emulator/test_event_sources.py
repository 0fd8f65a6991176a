"""The emulator's SQS and stream pollers stay quiet while idle and still deliver everything once busy."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.sqs.models import SQSBackend

from rekpipe.emulator.event_sources import SqsEventSource
from tests.emulator.moto_functions import create_function

if TYPE_CHECKING:
    from rekpipe.emulator import InProcessLambdas


@pytest.fixture
def receives(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the ReceiveMessage calls moto serves, with the WaitTimeSeconds of each."""
    seen: list[int] = []
    original = SQSBackend.receive_message

    def counting(self: SQSBackend, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any,
                 **kwargs: Any) -> Any:
        seen.append(wait_seconds_timeout)
        return original(self, queue_name, count, wait_seconds_timeout, *args, **kwargs)

    monkeypatch.setattr(SQSBackend, "receive_message", counting)
    return seen


def _consumer(adapter: InProcessLambdas) -> tuple[str, list[str], threading.Lock]:
    bodies: list[str] = []
    lock = threading.Lock()

    def handler(event: Any, context: Any) -> dict[str, Any]:
        with lock:
            bodies.extend(record["body"] for record in event["Records"])
        return {"batchItemFailures": []}

    create_function("consumer")
    adapter.register("consumer", handler)
    # A short visibility timeout: when moto's unsynchronised concurrent receives hand one message to two pollers,
    # the first delete's receipt handle goes stale and the message comes back after this timeout, as SQS's
    # at-least-once delivery allows (30 s by default, which outlasted the test's deadline in a CI run).
    return boto3.client("sqs").create_queue(QueueName="work", Attributes={"VisibilityTimeout": "3"})["QueueUrl"], \
        bodies, lock


def test_idle_sqs_source_has_one_long_poll_in_flight_and_parks_the_other_pollers(adapter, receives):
    # GIVEN a source with five pollers on an empty queue
    queue_url, bodies, _ = _consumer(adapter)
    source = SqsEventSource(queue_url, "consumer", batch_size=10, max_concurrency=5).start()
    try:
        # WHEN it idles: the lead's receive has begun, and a second passes
        deadline = time.monotonic() + 10
        while not receives:
            assert time.monotonic() < deadline, "no poller ever asked"
            time.sleep(0.05)
        time.sleep(1)
        # THEN only the lead poller asked, once, with the longest wait SQS allows
        assert receives == [20]
    finally:
        source.stop()
    assert bodies == []


def test_busy_sqs_source_wakes_its_pollers_and_delivers_every_message(adapter, receives):
    # GIVEN an idle source with five pollers
    queue_url, bodies, lock = _consumer(adapter)
    source = SqsEventSource(queue_url, "consumer", batch_size=2, max_concurrency=5).start()
    sqs = boto3.client("sqs")
    expected = {f"m-{n}" for n in range(60)}
    try:
        # WHEN 60 messages arrive
        for start in range(0, 60, 10):
            sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(n), "MessageBody": f"m-{n}"} for n in range(start, start + 10)])
        deadline = time.monotonic() + 30
        while True:
            with lock:
                if set(bodies) >= expected:
                    break
            assert time.monotonic() < deadline, f"delivered {len(set(bodies))} of 60"
            time.sleep(0.05)
        # THEN each was delivered, rarely twice: a standard queue delivers at least once ("occasionally more
        # than one copy of a message is delivered", SQS Developer Guide, "Amazon SQS standard queues"), and
        # moto's concurrent receives do that too now and then; the handlers' claims make a copy a no-op.
        # The parked pollers joined in (short waits while busy).
        with lock:
            assert set(bodies) == expected
            assert len(bodies) - len(expected) <= 10, sorted(bodies)
        assert 1 in receives
    finally:
        source.stop()
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_stopping_an_idle_sqs_source_returns_without_waiting_for_the_long_poll(adapter):
    # GIVEN an idle source whose lead poller is inside a 20 s receive
    queue_url, _, _ = _consumer(adapter)
    source = SqsEventSource(queue_url, "consumer", max_concurrency=3).start()
    time.sleep(0.5)
    # WHEN it stops
    source.stop()
    # THEN the parked pollers have ended (the lead is left to finish its receive, delivering nothing)
    assert [thread.is_alive() for thread in source._threads[1:]] == [False, False]
