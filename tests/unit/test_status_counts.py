"""Counts by status kept from the stream (rekpipe_shared.status_counts): exact across redeliveries."""

from __future__ import annotations

import random

import boto3
import pytest

from rekpipe.emulator.event_filters import matches_any
from rekpipe.emulator.event_sources import StreamReader
from rekpipe_shared.routing import STREAM_FILTER_PATTERNS
from rekpipe_shared.status_counts import StatusCounts, status_deltas
from rekpipe_shared.tasks import NewTask, TaskTable
from tests.support.context import FakeLambdaContext

TASKS = 12


def _new(i: int) -> NewTask:
    return NewTask(bucket="b", key=f"img-{i}.jpg", version_id=None, etag=f"e{i}", size=10, media_type="image",
                   operations=("labels",), source="s3-event")


def _run_tasks(table: TaskTable) -> dict[str, int]:
    """Move 12 tasks through the statuses; returns the true counts by status."""
    for i in range(TASKS):
        table.create(_new(i))
    for i in range(TASKS):
        task_id = _new(i).task_id
        table.mark_queued(task_id)
        if i % 3:
            table.claim(task_id, lease_seconds=60)
            table.record_output(task_id, "DetectLabels", "s3://o/x.json")  # no status change
            table.finish(task_id, "SUCCEEDED" if i % 3 == 1 else "FAILED", outputs={})
    truth = {"QUEUED": 0, "SUCCEEDED": 0, "FAILED": 0}
    for i in range(TASKS):
        truth[table.get(_new(i).task_id)["status"]] += 1
    return truth


@pytest.fixture
def table(resources) -> TaskTable:
    return TaskTable(resources.task_table)


def test_status_changes_are_single_writes_and_counted_from_the_stream(resources, table):
    # GIVEN tasks moved through their statuses with single conditional writes (no transaction)
    dynamodb = boto3.client("dynamodb")
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    truth = _run_tasks(TaskTable(resources.task_table, boto3_client=dynamodb))

    # WHEN the stream's records are counted in batches of 7, in order
    counts = StatusCounts(resources.task_table, boto3.client("dynamodb"))
    records = StreamReader(resources.task_stream_arn).read()
    for start in range(0, len(records), 7):
        counts.apply(records[start:start + 7])

    # THEN no status change used a transaction, and the counts are the tasks' real statuses
    assert "TransactWriteItems" not in calls
    assert {status: n for status, n in counts.read().items() if n} == truth


def test_counts_stay_exact_when_batches_are_redelivered(resources, table):
    # GIVEN the stream of 12 tasks' lives, and a poller that redelivers like Lambda does
    truth = _run_tasks(table)
    records = StreamReader(resources.task_stream_arn).read()
    counts = StatusCounts(resources.task_table, boto3.client("dynamodb"))
    rng = random.Random(7)

    # WHEN each batch is counted, then delivered again whole (a function error after the write), and a
    # batch that "failed" at a record is counted up to it and delivered again from it, many times over
    position = 0
    while position < len(records):
        batch = records[position:position + rng.randint(1, 9)]
        failed_at = rng.randint(0, len(batch)) if rng.random() < 0.5 else len(batch)
        counts.apply(batch[:failed_at])
        counts.apply(batch[:failed_at])  # the same delivery again
        if failed_at and rng.random() < 0.5:
            counts.apply(batch)  # a retry of the whole batch that now gets further
            failed_at = len(batch)
        position += max(failed_at, 1) if failed_at else 0
        if not failed_at:
            counts.apply(batch)
            position += len(batch)

    # THEN every status change was counted exactly once
    assert {status: n for status, n in counts.read().items() if n} == truth


def test_route_task_counts_once_when_its_batch_comes_back(resources, load_handler, table):
    # GIVEN 12 tasks' lives on the stream, filtered as the mapping filters them
    truth = _run_tasks(table)
    records = [r for r in StreamReader(resources.task_stream_arn).read() if matches_any(list(STREAM_FILTER_PATTERNS), r)]
    app = load_handler("route_task")

    # WHEN route_task gets each batch of 10 twice (a redelivery after a lost response)
    for start in range(0, len(records), 10):
        batch = {"Records": records[start:start + 10]}
        app.handler(batch, FakeLambdaContext())
        app.handler(batch, FakeLambdaContext())

    # THEN the counts are exact (route_task's own QUEUED writes are later records, not in these batches)
    assert {status: n for status, n in table.counts().items() if n} == truth


def test_the_filter_passes_status_changes_only(resources, table):
    # GIVEN one task created, queued, claimed, given an output, then finished
    task = _new(0)
    table.create(task)
    table.mark_queued(task.task_id)
    table.claim(task.task_id, lease_seconds=60)
    table.record_output(task.task_id, "DetectLabels", "s3://o/x.json")
    table.finish(task.task_id, "SUCCEEDED", outputs={})
    StatusCounts(resources.task_table, boto3.client("dynamodb")).apply(
        StreamReader(resources.task_stream_arn).read())  # the counters' and the marker's own writes

    # WHEN the stream is matched against route_task's filter
    records = StreamReader(resources.task_stream_arn).read()
    passed = [r for r in records if matches_any(list(STREAM_FILTER_PATTERNS), r)]

    # THEN the four status changes pass, the output and the bookkeeping writes do not
    assert len(records) > len(passed)
    assert [status_deltas([r]) for r in passed] == [
        {"PENDING": 1}, {"PENDING": -1, "QUEUED": 1}, {"QUEUED": -1, "IN_PROGRESS": 1},
        {"IN_PROGRESS": -1, "SUCCEEDED": 1}]
