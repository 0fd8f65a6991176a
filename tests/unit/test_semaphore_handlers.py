"""The four semaphore functions called directly, on moto DynamoDB and Step Functions."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest

from rekpipe_shared.constants import VIDEO_SLOT_LIMIT_ENV
from tests.support.context import FakeLambdaContext

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

TABLE = "semaphore-table"
ACCOUNT = "123456789012"


def _arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:{ACCOUNT}:execution:video:{name}"


@pytest.fixture
def load(resources: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Import a semaphore function fresh, with the semaphore table in moto and a limit of 1."""
    monkeypatch.setenv(VIDEO_SLOT_LIMIT_ENV, "1")

    def load_module(name: str) -> ModuleType:
        return importlib.reload(importlib.import_module(f"lambdas.{name}.app"))

    return load_module


def _status_change(name: str, status: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e6e9b5a6-0bb4-4f5e-a7c4-1c3d3e0f2a11",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [_arn(name)],
        "detail": {"executionArn": _arn(name), "stateMachineArn": "sm", "name": name, "status": status},
    }


def test_acquire_slot_handler_acquires_then_parks(load):
    # GIVEN acquire_slot with one slot
    acquire = load("acquire_slot")

    # WHEN two holders ask
    first = acquire.handler({"holder": "a#L", "executionArn": _arn("a"), "taskToken": "t-a"}, FakeLambdaContext())
    second = acquire.handler({"holder": "b#L", "executionArn": _arn("b"), "taskToken": "t-b"}, FakeLambdaContext())

    # THEN the first holds and the second is parked
    assert first == {"holder": "a#L", "acquired": True}
    assert second == {"holder": "b#L", "acquired": False}


def test_acquire_slot_handler_limit_from_event(load):
    # GIVEN acquire_slot configured with one slot
    acquire = load("acquire_slot")

    # WHEN the events carry a limit of 2
    results = [
        acquire.handler({"holder": f"{n}#L", "executionArn": _arn(n), "taskToken": n, "limit": 2}, FakeLambdaContext())
        for n in ("a", "b")
    ]

    # THEN both hold
    assert [r["acquired"] for r in results] == [True, True]


def test_release_slot_handler_releases_again_when_waiter_is_gone(load):
    # GIVEN a holder and a waiter
    acquire, release = load("acquire_slot"), load("release_slot")
    acquire.handler({"holder": "a#L", "executionArn": _arn("a"), "taskToken": "t-a"}, FakeLambdaContext())
    acquire.handler({"holder": "b#L", "executionArn": _arn("b"), "taskToken": "t-b"}, FakeLambdaContext())

    # WHEN the holder releases twice
    first = release.handler({"holder": "a#L"}, FakeLambdaContext())
    again = release.handler({"holder": "a#L"}, FakeLambdaContext())

    # THEN the first hands off (b's execution does not exist in moto, so the slot is released again) and
    # the second is a no-op
    assert first == {"holder": "a#L", "released": True, "handedOffTo": None}
    assert again == {"holder": "a#L", "released": False, "handedOffTo": None}


@pytest.mark.parametrize("status", ["SUCCEEDED", "RUNNING"])
def test_release_execution_slots_handler_ignores_other_statuses(load, status):
    # GIVEN a holder
    acquire, cleanup = load("acquire_slot"), load("release_execution_slots")
    acquire.handler({"holder": "a#L", "executionArn": _arn("a"), "taskToken": "t-a"}, FakeLambdaContext())

    # WHEN a status change other than FAILED/TIMED_OUT/ABORTED arrives
    result = cleanup.handler(_status_change("a", status), FakeLambdaContext())

    # THEN nothing is released
    assert result == {"executionArn": _arn("a"), "status": status, "released": []}


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_release_execution_slots_handler_releases_ended_execution(load, status):
    # GIVEN a holder
    acquire, cleanup = load("acquire_slot"), load("release_execution_slots")
    acquire.handler({"holder": "a#L", "executionArn": _arn("a"), "taskToken": "t-a"}, FakeLambdaContext())

    # WHEN its execution ends without releasing
    result = cleanup.handler(_status_change("a", status), FakeLambdaContext())

    # THEN its slot is released
    assert result == {"executionArn": _arn("a"), "status": status, "released": ["a#L"]}


def test_reconcile_slots_handler_releases_missing_execution(load):
    # GIVEN a holder whose execution does not exist
    acquire, reconcile = load("acquire_slot"), load("reconcile_slots")
    acquire.handler({"holder": "a#L", "executionArn": _arn("a"), "taskToken": "t-a"}, FakeLambdaContext())

    # WHEN the scheduled reconciler runs
    result = reconcile.handler({"detail-type": "Scheduled Event", "detail": {}}, FakeLambdaContext())

    # THEN the holder is released and the semaphore is empty
    assert result == {"released": ["a#L"], "holders": 0, "waiters": 0}


def test_release_execution_slots_handler_records_the_task_failed(load, resources):
    # GIVEN a video task IN_PROGRESS under execution "<task id>-1"
    from rekpipe_shared.tasks import NewTask, TaskTable

    tasks = TaskTable(resources.task_table)
    task = NewTask(bucket="b", key="v.mp4", version_id="v1", etag=None, size=10, media_type="video",
                   operations=("labels",), source="s3-event")
    tasks.create(task)
    tasks.mark_queued(task.task_id)
    tasks.claim(task.task_id, lease_seconds=3600)
    cleanup = load("release_execution_slots")

    # WHEN its execution is aborted
    event = _status_change(f"{task.task_id}-1", "ABORTED")
    event["detail"]["cause"] = "stopped by an operator"
    cleanup.handler(event, FakeLambdaContext())

    # THEN the task is FAILED with why and how to re-run it, and listed for attention
    stored = tasks.get(task.task_id)
    assert stored["status"] == "FAILED"
    assert stored["error_code"] == "ExecutionAborted"
    assert "ABORTED" in stored["error_message"] and "stopped by an operator" in stored["error_message"]
    assert "redrive" in stored["error_message"]
    assert [t["task_id"] for t in tasks.needing_attention("FAILED")] == [task.task_id]
