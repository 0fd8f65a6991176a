"""Scenario 4, a MODEL of the original AWS sample's video scheduler (not a run of it).

The original starts stored-video jobs from a Lambda function on a 2-minute schedule: each run
starts queued jobs up to the concurrent-job limit, and nothing starts a job when one completes,
so a freed slot stays idle until the next run. This module replays that rule as a discrete-event
model over the job durations our own backlog run drew, and measures it with the same functions
(`slot_utilisation`, `completion_to_next_start`) that measure our pipeline.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import harness

if TYPE_CHECKING:
    from collections.abc import Sequence

SCHEDULE_SECONDS = 120.0
"""The original sample's scheduling period (simulated seconds)."""


@dataclass(frozen=True)
class BaselineModel:
    """The scheduler rule.

    Parameters
    ----------
    slot_limit: int
        Jobs allowed at once.
    period: float
        Seconds between scheduler runs.
    phase: float
        When the first run happens after the backlog appears (0 = at once).
    """

    slot_limit: int = 5
    period: float = SCHEDULE_SECONDS
    phase: float = 0.0


def simulate(durations: Sequence[float], model: BaselineModel) -> list[Any]:
    """Job events (start/complete, running count) of the model over these durations, in queue order."""
    from rekpipe.simulator import JobEvent

    events: list[JobEvent] = []
    running: list[tuple[float, int]] = []  # (completes at, job index)
    queue = list(range(len(durations)))
    queue.reverse()
    tick = model.phase
    while queue or running:
        # Completions before this run free their slots (the sample's completion handler counts them).
        while running and running[0][0] <= tick:
            at, index = heapq.heappop(running)
            events.append(JobEvent(at, "complete", f"job-{index}", "model", "SUCCEEDED", len(running)))
        while queue and len(running) < model.slot_limit:
            index = queue.pop()
            heapq.heappush(running, (tick + durations[index], index))
            events.append(JobEvent(tick, "start", f"job-{index}", "model", "IN_PROGRESS", len(running)))
        if not queue:
            while running:
                at, index = heapq.heappop(running)
                events.append(JobEvent(at, "complete", f"job-{index}", "model", "SUCCEEDED", len(running)))
            break
        tick += model.period
    events.sort(key=lambda e: (e.sim_time, e.kind != "complete"))
    return events


def measure(durations: Sequence[float], model: BaselineModel) -> dict[str, Any]:
    """Utilisation while a backlog exists and completion -> next start, as measured for our pipeline."""
    from rekpipe.simulator import completion_to_next_start, slot_utilisation

    events = simulate(durations, model)
    starts = [e.sim_time for e in events if e.kind == "start"]
    first, last = min(starts), max(starts)
    gaps = completion_to_next_start([e for e in events if e.sim_time <= last])
    return {
        "model": True,
        "slot_limit": model.slot_limit,
        "period": model.period,
        "jobs": len(durations),
        "utilisation": slot_utilisation(events, model.slot_limit, first, last),
        "backlog_sim_seconds": last - first,
        "refill_gaps": len(gaps),
        "refill_p50_sim": harness.percentile(gaps, 50),
        "refill_p95_sim": harness.percentile(gaps, 95),
        "refill_mean_sim": sum(gaps) / len(gaps) if gaps else None,
        "job_timeline": [(round(e.sim_time - first, 3), e.running) for e in events],
    }


def draw_durations(jobs: int, low: float, high: float, seed: int) -> list[float]:
    """Uniform job durations, for when no backlog run supplied its own."""
    rng = random.Random(f"bench-baseline/{seed}")
    return [rng.uniform(low, high) for _ in range(jobs)]
