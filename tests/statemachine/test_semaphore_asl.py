"""The semaphore protocol executed end to end: ASL in moto's interpreter, real handlers in-process."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from rekpipe_shared.semaphore import VideoSemaphore
from tests.statemachine.conftest import SEMAPHORE_TABLE

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.statemachine.conftest import SemaphoreProbe

ACCOUNT = "123456789012"


def _history(execution_arn: str) -> list[dict[str, Any]]:
    # moto returns the whole history in one page and ignores reverseOrder/maxResults.
    return boto3.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]


def _acquire_tasks_scheduled(events: list[dict[str, Any]]) -> int:
    return sum(
        1
        for event in events
        if event["type"] == "TaskScheduled"
        and event["taskScheduledEventDetails"]["resource"] == "invoke.waitForTaskToken"
    )


def _state_transitions(events: list[dict[str, Any]]) -> int:
    return sum(1 for event in events if event["type"].endswith("StateEntered"))


def _status_change_event(execution_arn: str) -> dict[str, Any]:
    """The EventBridge event Step Functions emits when an execution ends, built from DescribeExecution."""
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": datetime.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": described["stateMachineArn"],
            "name": execution_arn.rsplit(":", 1)[-1],
            "status": described["status"],
            "startDate": int(described["startDate"].timestamp() * 1000),
            "stopDate": None,
            "input": described.get("input", "{}"),
            "output": None,
        },
    }


SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": ACCOUNT,
    "time": "2026-11-25T12:00:00Z",
    "region": "us-east-1",
    "resources": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/reconcile-slots"],
    "detail": {},
}


def test_semaphore_asl_forty_executions_never_exceed_limit(semaphore_probe: Callable[..., SemaphoreProbe]):
    # GIVEN the probe machine against the real acquire/release handlers, 3 slots, a fallback timeout longer
    # than the test, and a sampler reading the holder count from the table
    probe = semaphore_probe(limit=3)
    machine = probe.create_state_machine(fallback_seconds=45)
    stop, sampled = threading.Event(), [0]

    def sample() -> None:
        semaphore = probe.semaphore
        while not stop.wait(0.01):
            sampled[0] = max(sampled[0], len(semaphore.snapshot().holders))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    # WHEN 40 executions start at once
    started = time.monotonic()
    executions = [probe.start(machine, f"probe-{i:02d}", work_seconds=0.15) for i in range(40)]
    statuses = probe.wait_for(executions, timeout=40)
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join(5)

    # THEN all succeed, never more than 3 work at once, the semaphore ends empty and nobody spun
    histories = {arn: _history(arn) for arn in executions}
    scheduled = Counter(_acquire_tasks_scheduled(events) for events in histories.values())
    transitions = [_state_transitions(events) for events in histories.values()]
    work_start = {holder: at for at, holder, _ in probe.work_starts}
    latencies = [
        work_start[output["holder"]] - sent
        for sent, output in probe.wakes
        if output["via"] != "acquire" and output["holder"] in work_start
    ]
    table_peak = max(holders for _, _, holders in probe.work_starts)
    print(
        f"\n40 executions, limit 3: {elapsed:.2f}s; peak working {probe.peak_working}, peak holders sampled "
        f"{sampled[0]}, at work start {table_peak}; AcquireSlot tasks per execution {dict(scheduled)}; state "
        f"transitions per execution mean {statistics.mean(transitions):.1f} max {max(transitions)}; "
        f"grants {Counter(o['via'] for _, o in probe.wakes)}; wake-up latency (SendTaskSuccess -> DoWork) "
        f"median {statistics.median(latencies) * 1000:.0f} ms max {max(latencies) * 1000:.0f} ms "
        f"over {len(latencies)} wakes"
    )
    assert set(statuses.values()) == {"SUCCEEDED"}, Counter(statuses.values())
    assert probe.peak_working <= 3
    assert sampled[0] <= 3
    assert table_peak <= 3
    assert max(scheduled) <= 2
    assert len(latencies) >= 25  # most executions waited and were woken by a release
    assert _counts(probe) == (0, 0)


@pytest.mark.parametrize("ending", ["TIMED_OUT", "ABORTED"])
def test_semaphore_asl_ended_execution_slot_freed_by_release_execution_slots(
    semaphore_probe: Callable[..., SemaphoreProbe], ending: str
):
    # GIVEN one slot, held by an execution that then times out (or is stopped) inside DoWork, and a second
    # execution parked behind it
    probe = semaphore_probe(limit=1)
    machine = probe.create_state_machine(fallback_seconds=30)
    if ending == "TIMED_OUT":
        doomed_machine = probe.create_state_machine("semaphore-probe-timeout", timeout_seconds=1)
        doomed = probe.start(doomed_machine, "doomed", work_seconds=1.5)
    else:
        doomed = probe.start(machine, "doomed", work_seconds=1.5)
    _wait_until(lambda: "doomed#LabelDetection" in probe.snapshot().holders)
    waiter = probe.start(machine, "waiter", work_seconds=0.05)
    _wait_until(lambda: [w.holder for w in probe.snapshot().waiters] == ["waiter#LabelDetection"])
    if ending == "ABORTED":
        boto3.client("stepfunctions").stop_execution(executionArn=doomed, error="Test", cause="aborted by test")
    assert probe.wait_for([doomed], timeout=10) == {doomed: ending}
    assert "doomed#LabelDetection" in probe.snapshot().holders  # the ended execution never released

    # WHEN the status-change rule invokes release_execution_slots
    result = probe.invoke("release_execution_slots", _status_change_event(doomed))

    # THEN the slot goes to the parked execution, which completes, and the semaphore ends empty
    assert result == {"executionArn": doomed, "status": ending, "released": ["doomed#LabelDetection"]}
    assert probe.wait_for([waiter], timeout=10) == {waiter: "SUCCEEDED"}
    assert [o["holder"] for _, o in probe.wakes if o["via"] == "handoff"] == ["waiter#LabelDetection"]
    assert _counts(probe) == (0, 0)


def test_semaphore_asl_stuck_holders_freed_by_reconcile_slots(semaphore_probe: Callable[..., SemaphoreProbe]):
    # GIVEN two slots held by executions that are gone: one that never existed and one that SUCCEEDED
    # without releasing; and an execution parked behind them
    probe = semaphore_probe(limit=2)
    machine = probe.create_state_machine(fallback_seconds=30)
    finished = probe.start(machine, "finished", work_seconds=0)
    assert probe.wait_for([finished], timeout=10) == {finished: "SUCCEEDED"}
    missing = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:semaphore-probe:missing"
    semaphore = probe.semaphore
    assert semaphore.acquire("missing#LabelDetection", missing, "dead-token")
    assert semaphore.acquire("finished#LabelDetection", finished, "dead-token")
    waiter = probe.start(machine, "waiter", work_seconds=0.05)
    _wait_until(lambda: [w.holder for w in probe.snapshot().waiters] == ["waiter#LabelDetection"])

    # WHEN the scheduled reconciler runs
    result = probe.invoke("reconcile_slots", SCHEDULED_EVENT)

    # THEN both stuck slots are released, the parked execution is woken and completes
    assert sorted(result["released"]) == ["finished#LabelDetection", "missing#LabelDetection"]
    assert probe.wait_for([waiter], timeout=10) == {waiter: "SUCCEEDED"}
    assert _counts(probe) == (0, 0)


def test_semaphore_asl_failed_work_releases_slot_on_catch_path(semaphore_probe: Callable[..., SemaphoreProbe]):
    # GIVEN one slot, an execution whose work fails, and one parked behind it
    probe = semaphore_probe(limit=1)
    machine = probe.create_state_machine(fallback_seconds=30)
    broken = probe.start(machine, "broken", work_seconds=-1)
    waiter = probe.start(machine, "waiter", work_seconds=0.05)

    # WHEN both run
    statuses = probe.wait_for([broken, waiter], timeout=10)

    # THEN the failure went through ReleaseSlotAfterError, freeing the slot for the waiter
    assert statuses == {broken: "FAILED", waiter: "SUCCEEDED"}
    entered = [e["stateEnteredEventDetails"]["name"] for e in _history(broken) if e["type"] == "TaskStateEntered"]
    assert entered == ["AcquireSlot", "DoWork", "ReleaseSlotAfterError"]
    failed = boto3.client("stepfunctions").describe_execution(executionArn=broken)
    assert failed.get("error") == "SimulatedJobError"
    assert _counts(probe) == (0, 0)


def test_semaphore_asl_lost_wake_up_recovered_by_fallback_timeout(semaphore_probe: Callable[..., SemaphoreProbe]):
    # GIVEN one slot held by a gone execution and an execution parked behind it with a 1 s fallback
    probe = semaphore_probe(limit=1)
    machine = probe.create_state_machine(fallback_seconds=1)
    gone = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:semaphore-probe:gone"
    assert probe.semaphore.acquire("gone#LabelDetection", gone, "dead-token")
    waiter = probe.start(machine, "waiter", work_seconds=0.05)
    _wait_until(lambda: [w.holder for w in probe.snapshot().waiters] == ["waiter#LabelDetection"])

    # WHEN a releaser hands the slot over and crashes before its SendTaskSuccess
    class CrashingStepFunctions:
        def send_task_success(self, **kwargs: Any) -> None:
            raise RuntimeError("releaser crashed")

    crashing = VideoSemaphore(SEMAPHORE_TABLE, limit=1, sfn_client=CrashingStepFunctions())
    with pytest.raises(RuntimeError):
        crashing.release("gone#LabelDetection")
    assert set(probe.snapshot().holders) == {"waiter#LabelDetection"}

    # THEN the fallback timeout re-runs AcquireSlot, which finds the slot the execution already owns
    assert probe.wait_for([waiter], timeout=10) == {waiter: "SUCCEEDED"}
    events = _history(waiter)
    # at least one re-run; a loaded machine lets the 1 s fallback fire again before the work ends
    assert _acquire_tasks_scheduled(events) >= 2
    assert [e["type"] for e in events].count("TaskTimedOut") == 1
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert entered == [
        "ValidateInput",
        "NameHolder",
        "AcquireSlot",
        "RecheckSlot",
        "AcquireSlot",
        "DoWork",
        "ReleaseSlot",
    ]
    assert [o["via"] for _, o in probe.wakes if o["holder"] == "waiter#LabelDetection"] == ["acquire"]
    assert _counts(probe) == (0, 0)


def test_semaphore_asl_release_slot_is_idempotent(semaphore_probe: Callable[..., SemaphoreProbe]):
    # GIVEN a completed execution (its ReleaseSlot already ran)
    probe = semaphore_probe(limit=1)
    machine = probe.create_state_machine(fallback_seconds=30)
    done = probe.start(machine, "done", work_seconds=0)
    assert probe.wait_for([done], timeout=10) == {done: "SUCCEEDED"}

    # WHEN ReleaseSlot runs again, as a Step Functions retry would
    result = probe.invoke("release_slot", {"holder": "done#LabelDetection"})

    # THEN it is a no-op
    assert result == {"holder": "done#LabelDetection", "released": False, "handedOffTo": None}
    output = json.loads(boto3.client("stepfunctions").describe_execution(executionArn=done)["output"])
    assert output["stateoutput"]["ReleaseSlot"] == {"released": True, "handedOffTo": None}


def _counts(probe: SemaphoreProbe) -> tuple[int, int]:
    holders, waiters = probe.snapshot()
    return len(holders), len(waiters)


def _wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)
