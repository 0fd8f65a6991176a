"""The embedded runtime acts out the slot queue's two senders: the Scheduler tick and the
EventBridge status-change rule's SQS target (both on the slot FIFO queue, in its one group)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from rekpipe_shared.tasks import NewTask, TaskTable

if TYPE_CHECKING:
    from rekpipe.emulator.runtime import EmbeddedRuntime

pytestmark = pytest.mark.e2e


@pytest.fixture
def runtime(make_runtime) -> EmbeddedRuntime:
    """The runtime with ``make_runtime``'s defaults (tests/conftest.py)."""
    return make_runtime()


def _wait_for(read: Any, timeout: float = 60) -> Any:
    """Poll ``read`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := read()):
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.25)
    return value


def test_runtime_reads_the_tick_schedule_and_the_cancel_rule_as_slot_queue_targets(runtime):
    # GIVEN the deployed stack
    assert runtime.stack is not None
    queues = {target.queue_arn.rsplit(":", 1)[-1]: target for rule in runtime.stack.rules
              for target in rule.queue_targets}
    # THEN the Scheduler tick and the status-change rule both target the slot FIFO queue, in one group
    schedules = [r for r in runtime.stack.rules if r.queue_targets and r.schedule_seconds is not None]
    cancels = [r for r in runtime.stack.rules if r.queue_targets and r.state_machine_arns]
    assert len(schedules) == 1 and ":scheduler:" in schedules[0].rule_arn
    assert '"kind":"tick"' in (schedules[0].queue_targets[0].input or "").replace(" ", "")
    assert len(cancels) == 1 and cancels[0].queue_targets[0].input is None
    assert cancels[0].state_machine_arns == [runtime.outputs["VideoStateMachineArn"]]
    assert all(name.endswith(".fifo") and t.message_group_id for name, t in queues.items())
    assert len({t.queue_arn for t in queues.values()}) == 1


def test_a_tick_from_the_schedule_admits_a_queued_video(runtime):
    # GIVEN a video task in the backlog and nothing else: route_task is stubbed out, so it neither
    # routes the task nor nudges the dispatcher, and only the tick's admission can start its execution
    assert runtime.adapter is not None
    runtime.adapter.register(runtime.function_name("route_task"), lambda event, context: {"batchItemFailures": []})
    bucket = runtime.outputs["ContentBucketName"]
    table = TaskTable(runtime.outputs["TaskTableName"])
    task = NewTask(bucket=bucket, key="backlog/a.mp4", version_id="v1", etag=None, size=10, media_type="video",
                   operations=("labels",), source="test")
    assert table.create(task)
    assert table.mark_queued(task.task_id, backlog=True) is not None
    time.sleep(1)
    assert (table.get(task.task_id) or {}).get("status") == "QUEUED"  # nobody admitted it yet
    # WHEN the schedule fires (the runtime sends its tick to the slot queue)
    runtime.run_schedules_now()
    # THEN the dispatcher's admission claims the task and starts its execution
    execution_arn = _wait_for(lambda: (table.get(task.task_id) or {}).get("execution_arn"))
    assert execution_arn.startswith(runtime.outputs["VideoStateMachineArn"].replace(":stateMachine:", ":execution:"))
