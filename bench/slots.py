"""Scenario: a video backlog through the slot dispatcher's rules (issue 11), on a simulated clock.

N operations are QUEUED at t = 0 against limit L; the tick (every 60 simulated seconds) admits up to
``limit + headroom - (holders + waiters)`` of them; jobs run a uniform spread of simulated durations.
This measures the dispatcher alone (rules + in-memory store + a model of Step Functions and
Rekognition), at a size the deployed template cannot reach here; ``python -m bench.backlog`` runs
the deployed template itself, at the size that fits in five minutes on this machine.

Figures:
- per operation, the dispatcher's work (messages, commits, AWS calls) against its total wait
  (QUEUED to job start), and the least-squares slope of that work per hour of waiting;
- peak parked waiters and peak admitted (open) operations;
- slot utilisation while a backlog exists;
- hops (dispatcher messages) and real seconds from a completion notice to the next job's start.

Run: ``PYTHONPATH=.:lambdas/shared python -m bench.slots [--operations 2000 --limit 20]``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from rekpipe_shared.slots import Done, JobEnd, MemorySlotStore, SlotRules, SlotSettings, StartResult, Tick, Want

TICK_SECONDS = 60.0


@dataclass(frozen=True)
class SlotBench:
    """The measured figures of one run."""

    operations: int
    limit: int
    simulated_hours: float
    real_seconds: float
    work_per_operation_mean: float
    work_per_operation_max: int
    work_slope_per_hour_of_wait: float
    wait_hours_p50: float
    wait_hours_max: float
    peak_waiters: int
    peak_open_operations: int
    utilisation_with_backlog: float
    notice_to_next_start_hops_p50: float
    notice_to_next_start_hops_p95: float
    notice_to_next_start_real_ms_p50: float
    notice_to_next_start_real_ms_p95: float


class _World:
    """Step Functions and Rekognition as the rules see them, counting the work done for each holder."""

    def __init__(self, durations: tuple[float, float], seed: int) -> None:
        self.rng = random.Random(seed)
        self.durations = durations
        self.now = 0.0
        self.backlog: list[str] = []
        self.admitted: list[str] = []
        self.jobs: dict[str, tuple[str, float]] = {}
        self.ends: list[tuple[float, str]] = []
        self.work: dict[str, int] = defaultdict(int)
        self.started_at: dict[str, float] = {}
        self.open_tokens: set[str] = set()

    def heartbeat(self, token: str) -> bool:
        self.work[token.removeprefix("tok-")] += 1
        return token in self.open_tokens

    def start_job(self, holder: str, request: dict[str, Any]) -> StartResult:
        self.work[holder] += 1
        if holder not in self.jobs:
            end = self.now + self.rng.uniform(*self.durations)
            self.jobs[holder] = (f"job-{holder}", end)
            heapq.heappush(self.ends, (end, holder))
            self.started_at[holder] = self.now
        return StartResult(job_id=self.jobs[holder][0])

    def job_status(self, holder: Any) -> JobEnd | None:
        self.work[holder.holder] += 1
        job_id, end = self.jobs[holder.holder]
        return JobEnd(job_id, "SUCCEEDED") if end <= self.now else None

    def resume(self, token: str, output: dict[str, Any]) -> None:
        self.work[token.removeprefix("tok-")] += 1
        self.open_tokens.discard(token)

    def fail(self, token: str, error: str, cause: str) -> None:
        self.open_tokens.discard(token)

    def admit(self, count: int, *, cap: int | None = None) -> int:
        taken, self.backlog = self.backlog[:count], self.backlog[count:]
        self.admitted.extend(taken)
        return len(taken)


def run(operations: int = 2000, limit: int = 20, durations: tuple[float, float] = (600.0, 6 * 3600.0),
        seed: int = 1) -> SlotBench:
    """Drive the backlog to the end and measure it."""
    world = _World(durations, seed)
    store = MemorySlotStore(limit)
    settings = SlotSettings()
    rules = SlotRules(store, world, clock=lambda: world.now, settings=settings)
    world.backlog = [f"op{i:05d}" for i in range(operations)]
    queued_at = dict.fromkeys(world.backlog, 0.0)
    commits_before: dict[str, int] = {}
    peak_waiters = peak_open = 0
    busy = backlog_time = 0.0
    hops: list[int] = []
    latencies: list[float] = []
    next_tick = 0.0
    started = time.perf_counter()

    def deliver(message: Any, holder: str | None = None) -> None:
        before = store.commits
        rules.handle(message)
        if holder:
            world.work[holder] += 1 + store.commits - before  # the message and its commits
        commits_before[holder or ""] = store.commits

    while len(world.started_at) < operations or world.ends:
        next_end = world.ends[0][0] if world.ends else float("inf")
        step_to = min(next_end, next_tick)
        snap = store.load()
        if world.backlog or snap.waiters:
            backlog_time += step_to - world.now
            busy += len(snap.holders) * (step_to - world.now)
        world.now = step_to
        if next_end <= next_tick:
            _, holder = heapq.heappop(world.ends)
            before_starts = len(world.started_at)
            t0 = time.perf_counter()
            deliver(Done(holder, world.jobs[holder][0], "SUCCEEDED"), holder)
            if len(world.started_at) > before_starts:
                hops.append(1)
                latencies.append((time.perf_counter() - t0) * 1000)
        else:
            deliver(Tick(str(world.now)))
            for holder in world.admitted:  # each admitted execution's RunJob sends its want
                world.open_tokens.add(f"tok-{holder}")
                deliver(Want(holder, f"tok-{holder}", f"exec-{holder}", {"operation": "labels"}), holder)
            world.admitted = []
            next_tick = world.now + TICK_SECONDS
        snap = store.load()
        peak_waiters = max(peak_waiters, len(snap.waiters))
        peak_open = max(peak_open, len(snap.waiters) + len(snap.holders))
    waits = [world.started_at[h] - queued_at[h] for h in queued_at]
    work = [world.work[h] for h in queued_at]
    slope = _slope([w / 3600 for w in waits], work)
    return SlotBench(
        operations=operations, limit=limit, simulated_hours=round(world.now / 3600, 1),
        real_seconds=round(time.perf_counter() - started, 1),
        work_per_operation_mean=round(statistics.fmean(work), 2), work_per_operation_max=max(work),
        work_slope_per_hour_of_wait=round(slope, 4),
        wait_hours_p50=round(statistics.median(waits) / 3600, 1), wait_hours_max=round(max(waits) / 3600, 1),
        peak_waiters=peak_waiters, peak_open_operations=peak_open,
        utilisation_with_backlog=round(busy / (limit * backlog_time), 3) if backlog_time else 0.0,
        notice_to_next_start_hops_p50=_quantile(hops, 0.5), notice_to_next_start_hops_p95=_quantile(hops, 0.95),
        notice_to_next_start_real_ms_p50=round(_quantile(latencies, 0.5), 2),
        notice_to_next_start_real_ms_p95=round(_quantile(latencies, 0.95), 2),
    )


def _slope(xs: list[float], ys: list[int]) -> float:
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _quantile(values: list[float] | list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = run(args.operations, args.limit, seed=args.seed)
    json.dump(asdict(result), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
