"""One runtime in a process of its own: ``python -m bench.worker PLAN.json OUT.json``.

A plan is a list of phases (image bursts, video backlogs) run one after another on one embedded
runtime, so the deploy-time settings they share are synthesized and deployed once. A fresh process
per runtime keeps moto's global state, the in-process Lambda adapter and the bench's moto
correction from leaking from one runtime into the next.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def settings_for(phases: list[dict[str, Any]]) -> tuple[Any, Any]:
    """The stack settings and simulator config every phase of a plan can run under."""
    from rekpipe.simulator import SimulatorConfig
    from rekpipe_shared.settings import PipelineSettings

    images = [p for p in phases if p["kind"] == "images"]
    videos = [p for p in phases if p["kind"] == "videos"]
    shapes = {(p.get("batch_size", 10), p.get("max_concurrency", 10)) for p in images}
    if len(shapes) > 1:
        raise ValueError(f"image phases of one runtime must share batch size and concurrency, got {shapes}")
    batch, concurrency = shapes.pop() if shapes else (10, 10)
    limit = videos[0].get("slot_limit", 5) if videos else 5
    operations = tuple(videos[0].get("operations", ("labels", "moderation"))) if videos else ("labels", "moderation")
    extra = {"video_slot_wait_seconds": videos[0]["slot_wait_seconds"]} if videos and videos[0].get(
        "slot_wait_seconds") else {}
    # The deployment is told the account's quota, as a user would set image_tps_quota.
    quota = float(images[0].get("quota", 5.0)) if images else 5.0
    settings = PipelineSettings(image_operations=("labels",), image_batch_size=batch,
                                image_max_concurrency=concurrency, image_tps_quota=quota,
                                video_operations=operations,
                                video_slot_limit=limit, **extra)
    first = phases[0]
    simulator = SimulatorConfig(seed=int(first.get("seed", 1)), clock_scale=float(first.get("scale", 1.0)),
                                max_concurrent_jobs=limit, job_duration=(60.0, 600.0))
    return settings, simulator


def main(argv: list[str]) -> int:
    plan_path, out_path = Path(argv[0]), Path(argv[1])
    phases = json.loads(plan_path.read_text())["phases"]
    from bench import harness
    from bench.images import ImageRun
    from bench.images import run_phase as image_phase
    from bench.videos import VideoRun
    from bench.videos import run_phase as video_phase

    results = []
    with harness.quiet():
        settings, simulator = settings_for(phases)
        loadavg_start = os.getloadavg()[0]
        with harness.running(settings, simulator) as handle:
            for spec in phases:
                fields = {k: v for k, v in spec.items() if k != "kind"}
                began = time.monotonic()
                if spec["kind"] == "images":
                    result = image_phase(handle, ImageRun(**fields))
                else:
                    fields["durations"] = tuple(fields.get("durations", (60.0, 600.0)))
                    fields["operations"] = tuple(fields.get("operations", ("labels", "moderation")))
                    result = video_phase(handle, VideoRun(**fields))
                result["kind"] = spec["kind"]
                result["phase_seconds"] = time.monotonic() - began
                result["startup_seconds"] = handle.started_real
                result["loadavg_start"] = loadavg_start
                results.append(result)
                out_path.write_text(json.dumps({"phases": results}, default=str))
    out_path.write_text(json.dumps({"phases": results}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
