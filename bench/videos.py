"""Scenario 2, video backlog: V videos, two operations each, against a slot limit L.

Slot use comes from the simulator's job events (the jobs Rekognition really ran), transitions from
each execution's history, and the wait for a slot from the execution's start to its jobs' starts.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench import harness


@dataclass(frozen=True)
class VideoRun:
    """One backlog.

    Parameters
    ----------
    videos: int
        Uploaded at once.
    slot_limit: int
        ``video_slot_limit`` (and the simulator's concurrent-job quota, so an overrun would show
        up as LimitExceededException).
    durations: tuple[float, float]
        Uniform (min, max) job duration in simulated seconds.
    scale: float
        Simulated seconds per real second.
    operations: tuple[str, ...]
        ``video_operations``.
    video_seconds: int
        Length written in each sample's MP4 header (what Rekognition would bill).
    slot_wait_seconds: int | None
        ``video_slot_wait_seconds`` (part of RunJob's backstop TimeoutSeconds, in real seconds here); None
        keeps the default (1 day).
    """

    videos: int
    slot_limit: int = 5
    durations: tuple[float, float] = (60.0, 600.0)
    scale: float = 150.0
    operations: tuple[str, ...] = ("labels", "moderation")
    video_seconds: int = 30
    slot_wait_seconds: int | None = None
    seed: int = 1
    timeout: float = 900.0

    @property
    def label(self) -> str:
        return f"videos n={self.videos} L={self.slot_limit} scale={self.scale:g}"


def run_phase(handle: harness.RunHandle, spec: VideoRun) -> dict[str, Any]:
    """Run one backlog on a started runtime and return its figures and raw counts."""
    from rekpipe.samples import mp4_bytes

    sim = handle.runtime.simulator
    assert sim is not None
    harness.set_scale(handle, spec.scale)
    sim.config.job_duration = tuple(spec.durations)
    prefix = f"backlog-{spec.scale:g}-{spec.videos}-{spec.slot_wait_seconds or 0}/"
    bodies = [(f"{prefix}video-{i:04d}.mp4", mp4_bytes(spec.seed * 10_000 + i, duration_ms=spec.video_seconds * 1000))
              for i in range(spec.videos)]
    with harness.phase(handle) as marks:
        real0 = time.monotonic()
        harness.upload_all(handle, bodies)
        upload_seconds = time.monotonic() - real0
        counts = harness.wait_until_terminal(handle, marks.terminal_before + spec.videos, timeout=spec.timeout,
                                             progress=spec.label)
        drained_seconds = time.monotonic() - real0
        sim.wait_until_idle(timeout=10)
    events = sim.job_events[marks.events_before:]
    jobs = {job_id: job for job_id, job in sim.jobs.items() if job.location.name.startswith(prefix)}
    runs = [e for e in harness.executions(handle) if str(e["input"].get("task", {}).get("key", "")).startswith(prefix)]
    figures = _figures(spec, events, jobs, runs, handle)
    return {
        "spec": asdict(spec),
        "task_counts": counts,
        "upload_seconds": upload_seconds,
        "drained_seconds": drained_seconds,
        **figures,
        **marks.usage,
        "objects": spec.videos,
    }


def _figures(spec: VideoRun, events: list[Any], jobs: dict[str, Any], runs: list[dict[str, Any]],
             handle: harness.RunHandle) -> dict[str, Any]:
    from rekpipe.simulator import completion_to_next_start, slot_utilisation

    starts = [e.sim_time for e in events if e.kind == "start"]
    first_start, last_start = (min(starts), max(starts)) if starts else (0.0, 0.0)
    utilisation = slot_utilisation(events, spec.slot_limit, first_start, last_start) if starts else None
    # While a backlog exists every completion should refill its slot: pair only those completions.
    in_backlog = [e for e in events if e.sim_time <= last_start]
    gaps = completion_to_next_start(in_backlog)
    durations = sorted(
        ((job.created_at, job.completed_at - job.created_at) for job in jobs.values() if job.completed_at),
        key=lambda pair: pair[0],
    )
    by_key: dict[str, list[float]] = {}
    for job in jobs.values():
        by_key.setdefault(job.location.name, []).append(job.created_at)
    per_execution = []
    for execution in runs:
        key = execution["input"].get("task", {}).get("key")
        operations = len(execution["input"].get("operations", [])) or 1
        started = handle.sim_of_wall(execution["start"])
        job_starts = by_key.get(key, [])
        waited = max(job_starts) - started if job_starts else None
        per_execution.append({
            "key": key,
            "status": execution["status"],
            "operations": operations,
            "transitions": len(execution["entered"]),
            "transitions_per_operation": len(execution["entered"]) / operations,
            "waited_sim_seconds": waited,
            "states": _state_counts(execution["entered_names"]),
        })
    per_op = [e["transitions_per_operation"] for e in per_execution]
    waited = [e["waited_sim_seconds"] for e in per_execution if e["waited_sim_seconds"] is not None]
    slope = _slope([(e["waited_sim_seconds"], e["transitions_per_operation"]) for e in per_execution
                    if e["waited_sim_seconds"] is not None])
    total_ops = sum(e["operations"] for e in per_execution)
    return {
        "jobs": len(starts),
        "operations": total_ops,
        "executions": len(runs),
        "execution_statuses": dict(_count(e["status"] for e in per_execution)),
        "peak_running": max((e.running for e in events), default=0),
        "backlog_sim_seconds": last_start - first_start,
        "utilisation": utilisation,
        "refill_gaps": len(gaps),
        "refill_p50_sim": harness.percentile(gaps, 50),
        "refill_p95_sim": harness.percentile(gaps, 95),
        "refill_p50_real": _real(harness.percentile(gaps, 50), spec.scale),
        "refill_p95_real": _real(harness.percentile(gaps, 95), spec.scale),
        "transitions_total": sum(e["transitions"] for e in per_execution),
        "transitions_per_operation": sum(e["transitions"] for e in per_execution) / total_ops if total_ops else None,
        "transitions_per_operation_min": min(per_op) if per_op else None,
        "transitions_per_operation_max": max(per_op) if per_op else None,
        "transitions_slope_per_hour_waited": slope * 3600 if slope is not None else None,
        "waited_sim_max": max(waited) if waited else None,
        "waited_sim_median": statistics.median(waited) if waited else None,
        "per_execution": per_execution,
        "job_durations_sim": [round(d, 3) for _, d in durations],
        "job_timeline": [(round(e.sim_time - first_start, 3), e.running) for e in events],
    }


def _state_counts(names: list[str]) -> dict[str, int]:
    return dict(_count(names))


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x; None with fewer than two distinct x."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def _real(value: float | None, scale: float) -> float | None:
    return None if value is None else value / scale
