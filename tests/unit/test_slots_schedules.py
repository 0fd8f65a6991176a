"""The slot rules under every interleaving of a few holders, and thousands of seeded random schedules
with a crash, a transient failure and a redelivery injected, asserting safety after every delivery and
liveness once the system settles (the model in tests/support/slot_model.py)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

from tests.support.slot_model import SlotModel

if TYPE_CHECKING:
    from collections.abc import Iterator

_HOLDERS = ("A#labels", "B#faces", "C#text")


def _enabled(model: SlotModel, sent: set[str], names: tuple[str, ...], ticks: int) -> list[str]:
    events = [f"want:{name}" for name in names if name not in sent]
    if model.queue:
        events.append("deliver")
    events += [f"finish:{job.holder}" for job in model.jobs.values() if job.running]
    if ticks:
        events.append("tick")
    return events


def _replay(limit: int, names: tuple[str, ...], prefix: list[str], *, crash_at: int | None = None) -> SlotModel:
    model = SlotModel(limit=limit, crash_at=crash_at)
    for event in prefix:
        _do(model, event)
    return model


def _do(model: SlotModel, event: str) -> None:
    kind, _, name = event.partition(":")
    if kind == "want":
        model.want(name, f"exec-{name}")
    elif kind == "deliver":
        model.deliver()
    elif kind == "finish":
        model.finish_job(name)
    elif kind == "tick":
        model.tick()


def _interleavings(limit: int, names: tuple[str, ...], ticks: int = 1) -> Iterator[list[str]]:
    """Every order of sends, deliveries, job ends and one tick (replayed, since the model is deterministic)."""
    stack: list[list[str]] = [[]]
    while stack:
        prefix = stack.pop()
        model = _replay(limit, names, prefix)
        sent = {e.partition(":")[2] for e in prefix if e.startswith("want:")}
        left = ticks - sum(1 for e in prefix if e == "tick")
        events = _enabled(model, sent, names, left)
        if not events:
            yield prefix
            continue
        for event in events:
            stack.append([*prefix, event])


@pytest.mark.parametrize(("limit", "count"), [(1, 2), (1, 3), (2, 3)])
def test_schedules_every_interleaving_is_safe_and_live(limit: int, count: int) -> None:
    # GIVEN every interleaving of `count` holders at `limit`
    names = _HOLDERS[:count]
    leaves = 0
    for schedule in _interleavings(limit, names, ticks=1 if count < 3 else 0):
        # WHEN it runs (safety is checked at every delivery) and then settles
        model = _replay(limit, names, schedule)
        model.settle()
        # THEN every operation ran exactly one job and heard its end
        assert sorted(model.jobs) == sorted(names)
        assert all(model.result_of(name)["status"] == "SUCCEEDED" for name in names)
        leaves += 1
    assert leaves > 10


def _fault_free_steps(limit: int, schedule: list[str]) -> int:
    model = _replay(limit, _HOLDERS, schedule)
    return model.steps


@pytest.mark.parametrize("limit", [1, 2])
def test_schedules_a_crash_at_every_step_of_a_schedule(limit: int) -> None:
    # GIVEN one busy schedule: three holders, one duplicate want, every job ending while others wait
    schedule = [
        "want:A#labels", "want:B#faces", "deliver", "deliver", "want:C#text", "finish:A#labels",
        "deliver", "deliver", "tick", "deliver", "finish:B#faces", "deliver",
    ]  # fmt: skip
    total = _fault_free_steps(limit, schedule)
    assert total > 10
    for step in range(1, total + 1):
        # WHEN the dispatcher dies at that step (the message is redelivered at the next delivery)
        model = _replay(limit, _HOLDERS, schedule, crash_at=step)
        model.settle()
        # THEN each operation still ran exactly one job and heard its end
        assert sorted(model.jobs) == sorted(_HOLDERS), step
        assert all(model.result_of(name)["status"] == "SUCCEEDED" for name in _HOLDERS), step


def _random_schedule(rng: random.Random, model: SlotModel, names: list[str]) -> None:
    executions = {name: f"exec-{name.split('#')[0]}" for name in names}
    sent: dict[str, str] = {}
    for _ in range(rng.randint(10, 40)):
        roll = rng.random()
        unsent = [n for n in names if n not in sent]
        if unsent and roll < 0.3:
            name = rng.choice(unsent)
            sent[name] = model.want(name, executions[name])
        elif roll < 0.55:
            model.deliver(duplicate=rng.random() < 0.15)
        elif roll < 0.7:
            running = [j.holder for j in model.jobs.values() if j.running]
            if running:
                model.finish_job(rng.choice(running), notice=rng.choice(["once", "once", "twice", "lost"]))
        elif roll < 0.75:
            model.tick()
            model.now += rng.choice([1, 30, 400])
        elif roll < 0.8 and sent:
            model.kill_token(sent[rng.choice(list(sent))])  # an iteration fails (its Catch moves on)
        elif roll < 0.83 and sent:
            model.end_execution(executions[rng.choice(list(sent))], notify=rng.random() < 0.7)
        elif roll < 0.86:
            current = model.store.load().header.limit
            model.set_limit(current + rng.choice([1, -1 if current > 1 else 1]))  # 0 would pause on purpose
        elif roll < 0.9 and sent:
            name = rng.choice(list(sent))  # RunJob retried: a new token for the same holder
            if model.executions.get(executions[name]) == "RUNNING":
                sent[name] = model.want(name, executions[name])
        elif roll < 0.93:
            model.crash_at = model.steps + rng.randint(1, 6)
        elif roll < 0.96:
            model.transient_at.add(model.steps + rng.randint(1, 6))
        else:
            model.other_jobs = rng.choice([0, 0, 1])


@pytest.mark.parametrize("seed_block", range(4))
def test_schedules_random_faults_keep_safety_and_liveness(seed_block: int) -> None:
    # GIVEN 750 seeded schedules per block (3,000 in all) of 2-6 holders over 1-3 executions
    for seed in range(seed_block * 750, (seed_block + 1) * 750):
        rng = random.Random(seed)
        names = [f"{rng.choice('EFG')}{i}#op" for i in range(rng.randint(2, 6))]
        model = SlotModel(limit=rng.randint(1, 3), quota=rng.choice([None, 3]))
        # WHEN it runs with crashes, redeliveries, lost/duplicate notices, aborts and limit changes
        _random_schedule(rng, model, names)
        # THEN safety held at every delivery (checked inside), and once settled no free slot has a live
        # waiter and every live operation heard its end
        model.settle()
        model.check_liveness()
        for job in model.jobs.values():
            assert not job.running, seed
        assert len(model.jobs) <= len(names), seed  # one job per holder, never a second
