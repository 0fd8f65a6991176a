"""The slot rules on the in-memory store: the defects of issue 11 (D1a-D9) as named regressions,
and the rules' other paths (quota held elsewhere, refused starts, a second writer)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rekpipe_shared.slots import (
    START_FAILED,
    Done,
    FenceError,
    MemorySlotStore,
    SetLimit,
    SlotRules,
    Tick,
    Want,
    encode,
    superseded_ticks,
)
from tests.support.slot_model import SlotModel


def _drain(model: SlotModel) -> None:
    while model.deliver():
        pass


def _holders(model: SlotModel) -> set[str]:
    return set(model.store.load().holders)


def _waiters(model: SlotModel) -> list[str]:
    return [w.holder for w in model.store.load().queue()]


# --- D1a to D9 ---------------------------------------------------------------------------------
def test_d1a_dead_iteration_cannot_keep_slot() -> None:
    # GIVEN X holds the only slot, E#labels parks and its iteration then dies (its token closes while E runs)
    model = SlotModel(limit=1)
    model.want("X#labels")
    labels = model.want("E#labels", "exec-E")
    _drain(model)
    model.kill_token(labels)
    model.want("E#moderation", "exec-E")
    _drain(model)
    # WHEN X's job ends
    model.finish_job("X#labels")
    _drain(model)
    # THEN the slot goes to E#moderation, not to the dead E#labels, and E can finish
    assert _holders(model) == {"E#moderation"}
    assert "E#labels" not in model.jobs
    model.settle()
    assert model.result_of("E#moderation") is not None


def test_d1b_stale_waiter_item_never_receives_a_slot() -> None:
    # GIVEN A holds, and its want is redelivered twice (a duplicate and a retry with a new token)
    model = SlotModel(limit=1)
    model.want("A#labels")
    _drain(model)
    first = model.queue_snapshot_want("A#labels")
    model.queue.append(first)
    model.want("A#labels")
    model.want("B#labels")
    _drain(model)
    # THEN A has one item (a holder, never also a waiter), and A's end grants B
    assert _holders(model) == {"A#labels"}
    assert _waiters(model) == ["B#labels"]
    model.finish_job("A#labels")
    _drain(model)
    assert _holders(model) == {"B#labels"}
    assert model.starts == 2


def test_d2_grant_nobody_hears_of_is_completed_by_the_next_message() -> None:
    # GIVEN the dispatcher dies right after committing the grant (starting), before Start*
    model = SlotModel(limit=1)
    model.want("A#labels")
    model.crash_at = 4  # 1: commit waiter, 2: heartbeat, 3: commit starting, 4: Start*
    model.deliver()
    assert model.store.load().holders["A#labels"].phase == "starting"
    assert model.jobs == {}
    # WHEN the message is redelivered
    model.deliver()
    # THEN the job starts once, the slot is its job, and the end is heard
    assert model.starts == 1
    assert model.store.load().holders["A#labels"].phase == "running"
    model.settle()
    assert model.result_of("A#labels")["status"] == "SUCCEEDED"


def test_d2_start_replayed_after_a_crash_returns_the_same_job() -> None:
    # GIVEN Start* ran but the dispatcher died before recording the JobId
    model = SlotModel(limit=1)
    model.want("A#labels")
    model.crash_at = 5  # 4: Start*, 5: the commit of the JobId
    model.deliver()
    assert model.starts == 1
    # WHEN the next tick drives the start again
    model.tick()
    _drain(model)
    # THEN ClientRequestToken = holder returns the same job: still one job, now recorded
    assert model.starts == 1
    assert model.store.load().holders["A#labels"].job_id == model.jobs["A#labels"].job_id


@pytest.mark.parametrize("crash_step", range(1, 6))
def test_d3_release_that_dies_never_loses_the_wake_up(crash_step: int) -> None:
    # GIVEN A holds, B waits, and the dispatcher dies at some step of handling A's done
    model = SlotModel(limit=1)
    model.want("A#labels")
    model.want("B#labels")
    _drain(model)
    model.finish_job("A#labels")
    model.crash_at = model.steps + crash_step
    model.deliver()
    # WHEN the done is redelivered (no tick in between)
    _drain(model)
    # THEN B has the slot at once, not at a fallback timeout
    assert _holders(model) == {"B#labels"}
    assert model.result_of("A#labels")["status"] == "SUCCEEDED"


def test_d4_late_want_after_cleanup_takes_no_slot() -> None:
    # GIVEN E is aborted and its cancel is handled before its want arrives
    model = SlotModel(limit=1)
    model.executions["exec-E"] = "RUNNING"
    model.end_execution("exec-E")
    _drain(model)
    model.queue.append(Want("E#labels", "tok-late", "exec-E", {}))
    model.want("B#labels")
    # WHEN both are handled
    _drain(model)
    # THEN the late want leaves nothing behind and B gets the slot
    assert _holders(model) == {"B#labels"}
    assert "E#labels" not in model.jobs
    assert _waiters(model) == []


def test_d5_slot_freed_when_notice_lost_by_the_tick_get_check() -> None:
    # GIVEN A's job ends but no done ever arrives; B waits
    model = SlotModel(limit=1)
    model.want("A#labels")
    model.want("B#labels")
    _drain(model)
    model.finish_job("A#labels", notice="lost")
    _drain(model)
    assert _holders(model) == {"A#labels"}
    # WHEN the tick runs
    model.tick()
    _drain(model)
    # THEN Get* frees A (and resumes its token) and B starts
    assert _holders(model) == {"B#labels"}
    assert model.result_of("A#labels")["jobId"] == model.jobs["A#labels"].job_id


def test_tick_checks_a_long_job_once_per_heartbeat_interval_not_on_every_tick() -> None:
    # GIVEN 5 jobs running at limit 5, and a tick every 10 s for 3 hours (1,080 ticks)
    model = SlotModel(limit=5)
    for index in range(5):
        model.want(f"T{index}#labels")
    _drain(model)
    before = model.calls()
    ticks, period = 1080, 10
    for _ in range(ticks):
        model.now += period
        model.tick()
        _drain(model)
    # THEN each holder was checked (Get* and heartbeat) often while young and then once per heartbeat
    # interval: at least 10,800 / 300 = 36 times (its token never goes 300 s without a heartbeat) and
    # at most 50, not 1,080
    calls = {k: v - before.get(k, 0) for k, v in model.calls().items()}
    per_holder = calls.get("job_status", 0) / 5
    assert ticks * period / model.settings.heartbeat_interval <= per_holder <= 50
    assert calls.get("heartbeat", 0) == calls.get("job_status", 0)
    assert len(_holders(model)) == 5


def test_d6_notice_resumes_from_the_dispatcher_and_a_duplicate_frees_nothing() -> None:
    # GIVEN A holds; B and C wait; A's notice arrives twice (job_completed resumed nothing: it died)
    model = SlotModel(limit=1)
    for name in ("A#labels", "B#labels", "C#labels"):
        model.want(name)
    _drain(model)
    model.finish_job("A#labels", notice="twice")
    # WHEN both copies are handled
    _drain(model)
    # THEN A's token is resumed by the dispatcher, B holds, and the duplicate did not free B's slot for C
    assert model.result_of("A#labels")["status"] == "SUCCEEDED"
    assert _holders(model) == {"B#labels"}
    assert _waiters(model) == ["C#labels"]


def test_d7_slot_kept_while_job_may_still_run_after_abort_and_failure() -> None:
    # GIVEN A's job runs; then its iteration fails (token closed) and its execution is aborted; B waits
    model = SlotModel(limit=1)
    token = model.want("A#labels", "exec-A")
    model.want("B#labels")
    _drain(model)
    model.kill_token(token)
    model.end_execution("exec-A")
    model.tick()
    _drain(model)
    # THEN the slot stays with A's running job
    assert _holders(model) == {"A#labels"}
    assert model.store.load().holders["A#labels"].orphan
    assert model.running_jobs() == 1
    # WHEN the job ends, B gets the slot
    model.finish_job("A#labels")
    _drain(model)
    assert _holders(model) == {"B#labels"}


def test_d8_tick_isolates_each_failure_and_costs_per_holder_not_per_waiter() -> None:
    # GIVEN 3 holders with ended jobs and lost notices, 50 fresh waiters, and Get* failing for the first
    model = SlotModel(limit=3)
    for index in range(53):
        model.want(f"T{index}#labels")
    _drain(model)
    for index in range(3):
        model.finish_job(f"T{index}#labels", notice="lost")
    model.transient_at = {model.steps + 1}
    before = model.calls()
    # WHEN one tick runs
    model.tick()
    _drain(model)
    # THEN the two others were freed despite the failure, and no waiter cost a call except the granted ones
    calls = {k: v - before.get(k, 0) for k, v in model.calls().items()}
    assert len(_holders(model) - {"T0#labels"}) == 2
    assert "T0#labels" in _holders(model)
    assert calls["job_status"] == 3
    assert calls["heartbeat"] == 2  # the two grants' liveness checks
    # AND the next tick frees the one that failed (its check was skipped, so it is still due)
    model.tick()
    _drain(model)
    assert "T0#labels" not in _holders(model)
    # AND once the heartbeat interval has passed, each of the 50 waiters costs one heartbeat per interval
    model.now += model.settings.heartbeat_interval
    before = model.calls()
    model.tick()
    _drain(model)
    calls = {k: v - before.get(k, 0) for k, v in model.calls().items()}
    assert calls["heartbeat"] == len(model.store.load().waiters) + len(_holders(model))


def test_d9_limit_is_one_stored_value_changed_only_by_set_limit_or_the_quota() -> None:
    # GIVEN limit 1 with three operations; want carries no limit at all
    model = SlotModel(limit=1)
    assert "limit" not in Want.__dataclass_fields__
    for name in ("A#labels", "B#labels", "C#labels"):
        model.want(name)
    _drain(model)
    assert len(_holders(model)) == 1
    # WHEN the stored limit is raised to 2
    model.queue.append(SetLimit(2))
    _drain(model)
    # THEN a second job starts at once, and later wants do not move the limit
    assert len(_holders(model)) == 2
    model.want("D#labels")
    _drain(model)
    assert model.store.load().header.limit == 2
    # AND lowering it to 1 starts nothing new until the holders drop below 1
    model.set_limit(1)
    _drain(model)
    for holder in sorted(_holders(model)):
        model.finish_job(holder)
    _drain(model)
    assert len(_holders(model)) == 1


# --- other paths -------------------------------------------------------------------------------
def test_rules_limit_exceeded_puts_the_waiter_back_at_the_head_and_backs_off() -> None:
    # GIVEN another workload holds the account's quota
    model = SlotModel(limit=2, quota=1, other_jobs=1)
    model.want("A#labels")
    model.want("B#labels")
    _drain(model)
    # THEN nothing runs, A is first in line again and grants pause
    assert _holders(model) == set()
    assert _waiters(model) == ["A#labels", "B#labels"]
    assert model.store.load().header.backoff_until > model.now
    # WHEN the other workload ends and the backoff passes
    model.other_jobs = 0
    model.quota = 2
    model.now += 61
    model.tick()
    _drain(model)
    assert _holders(model) == {"A#labels", "B#labels"}


def test_rules_refused_start_fails_the_token_and_frees_the_slot() -> None:
    # GIVEN Start* refuses A for good
    model = SlotModel(limit=1, reject={"A#labels"})
    token = model.want("A#labels")
    model.want("B#labels")
    # WHEN handled
    _drain(model)
    # THEN A's token fails, B runs, and a retry of A's want gets the same failure, not a job
    assert model.tokens[token].error == "JobRejectedError"
    assert _holders(model) == {"B#labels"}
    assert model.store.load().finished["A#labels"].status == START_FAILED
    retry = model.want("A#labels")
    _drain(model)
    assert model.tokens[retry].error == "JobRejectedError"


def test_rules_second_writer_loses_the_fence_and_reapplies() -> None:
    # GIVEN two dispatchers on one store (a DLQ redrive beside the normal consumer)
    model = SlotModel(limit=1)
    other = SlotRules(model.store, model, clock=lambda: model.now)
    model.want("A#labels")
    _drain(model)
    stale = model.store.load()
    # WHEN the second commits from a stale read
    other.handle(Done("A#labels", model.jobs["A#labels"].job_id, "SUCCEEDED"))
    model.jobs["A#labels"].running = False
    # THEN a commit on the old version is refused
    from rekpipe_shared.slots import Changes

    with pytest.raises(FenceError):
        model.store.commit(stale, Changes(header=replace(stale.header, limit=5)))
    assert _holders(model) == set()


def test_rules_tick_heartbeats_waiters_and_drops_dead_ones() -> None:
    # GIVEN a full slot and two waiters, one of whose execution ended without a cancel
    model = SlotModel(limit=1)
    model.want("A#labels")
    model.want("B#labels", "exec-B")
    model.want("C#labels")
    _drain(model)
    model.end_execution("exec-B", notify=False)
    # WHEN a tick runs after the heartbeat interval
    model.now += model.settings.heartbeat_interval + 1
    model.tick()
    _drain(model)
    # THEN the dead waiter is gone and the live one was heartbeaten
    assert _waiters(model) == ["C#labels"]
    assert model.store.load().waiters["C#labels"].heartbeat_at == model.now


def test_rules_tick_admits_up_to_limit_plus_headroom() -> None:
    # GIVEN limit 3, one holder and no waiters
    model = SlotModel(limit=3)
    model.want("A#labels")
    _drain(model)
    # WHEN a tick runs
    model.queue.append(Tick("t"))
    _drain(model)
    # THEN it asks for limit + headroom - (holders + waiters) new executions
    assert model.admitted == 3 + model.settings.headroom - 1


def test_rules_admit_only_tick_admits_without_get_or_heartbeat() -> None:
    # GIVEN limit 2 with one running job and one waiter, both due a check and a heartbeat
    model = SlotModel(limit=2)
    model.want("A#labels")
    _drain(model)
    model.now += model.settings.heartbeat_interval + 1
    before = model.calls()
    # WHEN route_task's nudge (an admit-only tick) is applied
    model.queue.append(Tick("admit-1", admit_only=True))
    _drain(model)
    # THEN it asks for limit + headroom - (holders + waiters) executions, and made no Get* or heartbeat
    assert model.admitted == 2 + model.settings.headroom - 1
    after = model.calls()
    assert (after.get("job_status", 0), after.get("heartbeat", 0)) == (before.get("job_status", 0),
                                                                       before.get("heartbeat", 0))


def test_rules_memory_store_starts_at_version_zero() -> None:
    # GIVEN a new store
    store = MemorySlotStore(4)
    # THEN the header is the stored limit at version 0
    assert store.load().header.limit == 4
    assert store.load().header.version == 0


def test_tick_takes_a_changed_job_quota_as_the_stored_limit_and_an_operator_limit_holds_until_it_changes() -> None:
    # GIVEN limit 1 stored and four operations while the quota is unknown, then Service Quotas reporting 3
    model = SlotModel(limit=1)
    for name in ("A#labels", "B#labels", "C#labels", "D#labels"):
        model.want(name)
    _drain(model)
    assert len(_holders(model)) == 1
    model.quota_reading = 3
    # WHEN the tick runs
    model.tick()
    _drain(model)
    # THEN the stored limit is the quota, and two more jobs start at once
    header = model.store.load().header
    assert (header.limit, header.quota_limit) == (3, 3)
    assert len(_holders(model)) == 3
    # WHEN an operator lowers the limit to 2 (rekpipe slots --limit 2) and ticks pass with the same quota
    model.set_limit(2)
    for _ in range(3):
        model.tick()
        _drain(model)
    # THEN the operator's limit holds
    assert model.store.load().header.limit == 2
    # WHEN the account's quota is raised to 4
    model.quota_reading = 4
    model.tick()
    _drain(model)
    # THEN the next tick takes it
    assert (model.store.load().header.limit, model.store.load().header.quota_limit) == (4, 4)
    # AND an unknown quota (None) changes nothing
    model.quota_reading = None
    model.tick()
    _drain(model)
    assert model.store.load().header.limit == 4
    model.settle()


def test_first_message_of_a_cold_dispatcher_applies_the_job_quota_before_it_grants() -> None:
    # GIVEN the deployed default limit (20) stored, and an account whose job quota is 2
    model = SlotModel(limit=20, quota_reading=2, quota=2)
    # WHEN five wants arrive, before any tick
    for name in ("A#labels", "B#labels", "C#labels", "D#labels", "E#labels"):
        model.want(name)
    _drain(model)
    # THEN only two jobs start: the first want read the quota before granting, so no Start* met
    # LimitExceededException and no backoff paused the grants
    assert model.store.load().header.limit == 2
    assert len(_holders(model)) == 2
    assert model.store.load().header.backoff_until == 0.0


# --- cost per message, whatever the history kept -------------------------------------------------
def test_tick_heartbeats_waiters_before_it_makes_any_get_call() -> None:
    """A round of Get* on a busy account can be slow; a waiter's heartbeat must not wait behind it, or its
    RunJob passes HeartbeatSeconds and retries (States.HeartbeatTimeout)."""
    # GIVEN two running holders due a check and a waiter due a heartbeat
    model = SlotModel(limit=2)
    for name in ("A", "B", "C"):
        model.want(f"{name}#labels")
    _drain(model)
    model.now += model.settings.heartbeat_interval + 1
    order: list[str] = []
    for name in ("heartbeat", "job_status"):
        original = getattr(model, name)

        def traced(*args: object, _name: str = name, _original: object = original) -> object:
            order.append(_name)
            return _original(*args)  # type: ignore[operator]

        setattr(model, name, traced)
    # WHEN a tick runs
    model.tick()
    _drain(model)
    # THEN the waiter's heartbeat came first, then each holder's Get* (and its heartbeat)
    assert order == ["heartbeat", "job_status", "heartbeat", "job_status", "heartbeat"]
    assert model.store.load().waiters["C#labels"].heartbeat_at == model.now


def test_a_message_reads_finished_items_and_tombstones_by_key_however_many_are_kept() -> None:
    # GIVEN 300 operations that ran and ended, and 300 executions that ended (kept for days)
    model = SlotModel(limit=5)
    for index in range(300):
        model.want(f"V{index}#labels", f"exec-V{index}")
        _drain(model)
        model.finish_job(f"V{index}#labels")
        model.end_execution(f"exec-V{index}", status="SUCCEEDED")
        _drain(model)
    store = model.store
    assert isinstance(store, MemorySlotStore)
    # WHEN a new operation wants a slot, and a tick runs
    before = store.lookups
    model.want("NEW#labels", "exec-NEW")
    model.tick()
    _drain(model)
    # THEN the want read one tombstone and one finished item, and the tick read none
    assert store.lookups - before == 2
    assert _holders(model) == {"NEW#labels"}
    with pytest.raises(TypeError):
        len(store.load().finished)


def test_finished_items_and_tombstones_are_ignored_once_expired() -> None:
    # GIVEN an operation that ended and whose execution was cancelled
    model = SlotModel(limit=1)
    model.want("A#labels", "exec-A")
    _drain(model)
    model.finish_job("A#labels")
    _drain(model)
    model.end_execution("exec-A")
    _drain(model)
    # WHEN a late want of the same operation arrives within a day: the tombstone holds it off (D4)
    model.executions["exec-A"] = "RUNNING"  # the same execution, as a redelivery would name it
    model.want("A#labels", "exec-A")
    _drain(model)
    assert _holders(model) == set() and len(model.jobs) == 1
    # WHEN it arrives after the tombstone expired: the finished item answers it, no second job
    model.now += model.settings.tombstone_ttl + 1
    token = model.want("A#labels", "exec-A")
    _drain(model)
    assert model.tokens[token].output == {"jobId": model.jobs["A#labels"].job_id, "status": "SUCCEEDED",
                                          "statusMessage": ""}
    assert len(model.jobs) == 1
    # WHEN it arrives after the finished item expired too: it is a new operation (DynamoDB's TTL deletes both)
    model.now += model.settings.finished_ttl
    model.want("A#labels", "exec-A")
    _drain(model)
    assert _holders(model) == {"A#labels"}


def test_superseded_ticks_keep_only_the_last_tick_that_does_as_much() -> None:
    # GIVEN a batch: two full ticks, admit-only nudges, a want and a body that does not parse
    batch = [("t1", encode(Tick("1"))), ("n1", encode(Tick("", admit_only=True))),
             ("w", encode(Want("A#labels", "tok", "exec-A", {}))), ("t2", encode(Tick("2"))),
             ("n2", encode(Tick("", admit_only=True))), ("n3", encode(Tick("", admit_only=True))), ("x", "not json")]
    # WHEN the superseded ticks are picked
    # THEN each tick repeated by a later one that does at least as much goes; the last full tick and the last
    # nudge after it stay, and so does every other message
    assert superseded_ticks(batch) == {"t1", "n1", "n2"}
    assert superseded_ticks([("w", encode(Want("A#labels", "tok", "exec-A", {})))]) == set()
