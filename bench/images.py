"""Scenario 1, image burst: N images uploaded at once against a DetectLabels TPS quota.

Measured from the simulator's call log (the quota is enforced there, on its clock), and from the
task table's timestamps for upload -> SUCCEEDED.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from bench import harness

OPERATION = "DetectLabels"
STEADY = (0.10, 0.90)
"""The steady part of a burst: between the 10th and 90th percentile of successful calls."""
GOAL_TPS_RATIO = 0.95
GOAL_THROTTLED = 0.01


@dataclass(frozen=True)
class ImageRun:
    """One burst.

    Parameters
    ----------
    images: int
        Uploaded at once.
    batch_size, max_concurrency: int
        ``image_batch_size`` and ``image_max_concurrency`` settings.
    quota: float
        DetectLabels TPS, in simulated seconds.
    scale: float
        Simulator clock scale (simulated seconds per real second).
    """

    images: int
    batch_size: int = 10
    max_concurrency: int = 10
    quota: float = 5.0
    scale: float = 1.0
    seed: int = 1
    timeout: float = 900.0

    @property
    def label(self) -> str:
        return f"images n={self.images} batch={self.batch_size} conc={self.max_concurrency}"


def run_phase(handle: harness.RunHandle, spec: ImageRun) -> dict[str, Any]:
    """Run one burst on a started runtime and return its figures (and raw counts for the cost scenario)."""
    from rekpipe.samples import jpeg_bytes

    sim = handle.runtime.simulator
    assert sim is not None
    harness.set_scale(handle, spec.scale)
    sim.config.tps_quotas[OPERATION] = spec.quota
    prefix = f"burst-{spec.batch_size}-{spec.max_concurrency}-{spec.images}/"
    bodies = [(f"{prefix}{i // 100:03d}/image-{i:05d}.jpg", jpeg_bytes(spec.seed * 100_000 + i))
              for i in range(spec.images)]
    with harness.phase(handle) as marks:
        real0 = time.monotonic()
        harness.upload_all(handle, bodies)
        upload_seconds = time.monotonic() - real0
        counts = harness.wait_until_terminal(handle, marks.terminal_before + spec.images, timeout=spec.timeout,
                                             progress=spec.label)
        drained_seconds = time.monotonic() - real0
    calls = [r for r in sim.stats.call_log[marks.calls_before:] if r.operation == OPERATION]
    tasks = [t for t in harness.scan_tasks(handle) if str(t.get("object_key", "")).startswith(prefix)]
    return {
        "spec": asdict(spec),
        "task_counts": counts,
        "upload_seconds": upload_seconds,
        "drained_seconds": drained_seconds,
        **_figures(spec, calls, tasks),
        **marks.usage,
        "max_task_item_bytes": max((harness.item_bytes(t) for t in tasks), default=0),
        "objects": spec.images,
    }


def _figures(spec: ImageRun, calls: list[Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r.sim_time for r in calls if r.outcome == "ok"]
    throttled = sum(1 for r in calls if r.outcome != "ok" and "Throttl" in r.outcome)
    steady_tps = None
    window = None
    if len(ok) >= 10:
        lo = ok[int(STEADY[0] * (len(ok) - 1))]
        hi = ok[int(STEADY[1] * (len(ok) - 1))]
        in_window = sum(1 for t in ok if lo <= t <= hi)
        steady_tps = in_window / (hi - lo) if hi > lo else None
        window = hi - lo
    latencies_real = []
    for task in tasks:
        if task.get("status") == "SUCCEEDED" and task.get("created_at") and task.get("updated_at"):
            latencies_real.append(harness.iso_epoch(task["updated_at"]) - harness.iso_epoch(task["created_at"]))
    ratio = steady_tps / spec.quota if steady_tps is not None else None
    throttled_ratio = throttled / len(calls) if calls else None
    return {
        "calls": len(calls),
        "ok_calls": len(ok),
        "throttled_calls": throttled,
        "steady_window_sim_seconds": window,
        "steady_tps": steady_tps,
        "tps_ratio": ratio,
        "throttled_ratio": throttled_ratio,
        "latency_real_p50": harness.percentile(latencies_real, 50),
        "latency_real_p95": harness.percentile(latencies_real, 95),
        "latency_sim_p50": _scaled(harness.percentile(latencies_real, 50), spec.scale),
        "latency_sim_p95": _scaled(harness.percentile(latencies_real, 95), spec.scale),
        "meets_tps_goal": ratio is not None and ratio >= GOAL_TPS_RATIO,
        "meets_throttle_goal": throttled_ratio is not None and throttled_ratio <= GOAL_THROTTLED,
        "call_times": [round(t - ok[0], 3) for t in ok] if ok else [],
        "throttle_times": [round(r.sim_time - ok[0], 3) for r in calls if r.outcome != "ok"] if ok else [],
    }


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale
