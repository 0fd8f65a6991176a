"""``python -m bench``: run the scenarios, print the table, write bench/results/.

Progress goes to stderr on one line; stdout gets only the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import harness
from bench.exceptions import BenchError

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("images", "videos", "cost", "baseline")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; `DEFAULT` fits in 10 minutes on the 2-core machine, `QUICK` is a smoke run."""

    images: int
    quota: float
    grid_images: int
    grid: tuple[tuple[int, int], ...]
    videos: int
    scale: float
    durations: tuple[float, float] = (60.0, 600.0)
    slot_limit: int = 5


DEFAULT = Sizes(images=600, quota=5.0, grid_images=100, grid=((10, 10), (1, 2), (10, 2), (1, 10)), videos=100,
                scale=100.0)
QUICK = Sizes(images=60, quota=5.0, grid_images=30, grid=((10, 10), (1, 2)), videos=10, scale=100.0)


def plans(sizes: Sizes, wanted: set[str]) -> list[list[dict[str, Any]]]:
    """The runtimes to start, each a list of phases; runtimes whose settings agree share one start."""
    head = {"kind": "images", "images": sizes.images, "quota": sizes.quota, "batch_size": 10, "max_concurrency": 10}
    video = {"kind": "videos", "videos": sizes.videos, "slot_limit": sizes.slot_limit,
             "durations": list(sizes.durations), "scale": sizes.scale}
    first: list[dict[str, Any]] = []
    others: list[list[dict[str, Any]]] = []
    if wanted & {"images", "cost"}:
        first.append(head)
    if "images" in wanted:
        for batch, concurrency in sizes.grid:
            # seed 2: the (10, 10) point shares the burst's runtime, whose images it would otherwise copy (reuse)
            point = {"kind": "images", "images": sizes.grid_images, "quota": sizes.quota, "batch_size": batch,
                     "max_concurrency": concurrency, "grid": True, "seed": 2}
            if (batch, concurrency) == (10, 10):
                first.append(point)
            else:
                others.append([point])
    if wanted & {"videos", "cost"}:
        first.append(video)
    if "videos" in wanted:
        # its own bytes: a copy of the first backlog's videos would be served from stored results (reuse), not run
        first.append({**video, "scale": sizes.scale * 2, "check": True, "seed": 2})
    return ([first] if first else []) + others


def run_plan(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run one runtime's phases in a fresh process and read its results back."""
    plain = [{k: v for k, v in p.items() if k not in ("grid", "check")} for p in phases]
    with tempfile.TemporaryDirectory(prefix="rekpipe-bench-") as tmp:
        plan_path, out_path = Path(tmp) / "plan.json", Path(tmp) / "out.json"
        plan_path.write_text(json.dumps({"phases": plain}))
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
               "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
        completed = subprocess.run([sys.executable, "-m", "bench.worker", str(plan_path), str(out_path)],
                                   cwd=harness.ROOT, env=env, stdout=subprocess.DEVNULL, check=False)
        if not out_path.exists():
            raise BenchError(f"benchmark worker exited {completed.returncode} without results for {plain}")
        results = json.loads(out_path.read_text())["phases"]
        if completed.returncode != 0 or len(results) != len(phases):
            raise BenchError(f"benchmark worker exited {completed.returncode} after {len(results)} of "
                             f"{len(phases)} phases")
    for spec, result in zip(phases, results, strict=True):
        result["grid"] = bool(spec.get("grid"))
        result["check"] = bool(spec.get("check"))
    return results


def assemble(sizes: Sizes, wanted: set[str], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Scenario results from the phases that ran."""
    from bench import baseline, cost
    from bench.prices import PRICES, PRICES_DATE, REGION

    scenarios: dict[str, Any] = {}
    images = [r for r in runs if r["kind"] == "images"]
    videos = [r for r in runs if r["kind"] == "videos"]
    headline = next((r for r in images if not r["grid"]), None)
    main_video = next((r for r in videos if not r["check"]), None)
    if "images" in wanted and headline:
        scenarios["images"] = {"headline": headline, "grid": [r for r in images if r["grid"]]}
    if "videos" in wanted and videos:
        scenarios["videos"] = {"runs": videos}
    if "cost" in wanted:
        scenarios["cost"] = {
            "prices_date": PRICES_DATE,
            "region": REGION,
            "prices": {name: {"usd": p.usd, "unit": p.unit} for name, p in PRICES.items()},
            "image": cost.image_cost(headline) if headline else None,
            "video_operation": cost.video_operation_cost(main_video) if main_video else None,
        }
    if "baseline" in wanted:
        if main_video:
            durations = main_video["job_durations_sim"]
            source = f"the {len(durations)} job durations drawn in the video backlog run"
        else:
            durations = baseline.draw_durations(sizes.videos * 2, *sizes.durations, seed=1)
            source = f"{len(durations)} uniform draws in {sizes.durations} (no backlog run in this invocation)"
        model = baseline.measure(durations, baseline.BaselineModel(slot_limit=sizes.slot_limit))
        scenarios["baseline"] = {"model": model, "durations_from": source,
                                 "note": "A discrete-event MODEL of the original sample's scheduler, not a run of it."}
    return scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--scale", type=float, help="simulated seconds per real second for the video backlog "
                        "(the scale check runs at twice this)")
    parser.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all", help="one scenario")
    parser.add_argument("--videos", type=int, help="videos in the backlog (default 100; the goal is 200)")
    parser.add_argument("--images", type=int, help="images in the headline burst")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for results.json and the PNGs")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else DEFAULT
    overrides = {k: v for k, v in (("scale", args.scale), ("videos", args.videos), ("images", args.images)) if v}
    if overrides:
        sizes = Sizes(**{**sizes.__dict__, **overrides})
    wanted = set(SCENARIOS) if args.scenario == "all" else {args.scenario}
    print(f"bench: scenarios {sorted(wanted)}, sizes {sizes}", file=sys.stderr)
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    try:
        for phases in plans(sizes, wanted):
            runs.extend(run_plan(phases))
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    results = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()[0],
                    "note": "wall times are this machine's, shared with other work while it ran"},
        "sizes": sizes.__dict__,
        "scenarios": assemble(sizes, wanted, runs),
        "wall_seconds": time.monotonic() - started,
    }
    from bench import report

    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(results, args.out / "results.json")
    figures = report.plots(results, args.out)
    text = report.table(results)
    (args.out / "table.md").write_text(text + "\n")
    print(text)
    print(f"\nwall time {results['wall_seconds']:.0f} s (this machine); wrote {args.out / 'results.json'}, "
          + ", ".join(p.name for p in figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
