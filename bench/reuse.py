"""Scenario 5, result reuse (issue 14): a backfill in which 30 % of the objects are duplicates.

``python -m bench.reuse [--images N] [--duplicates 0.3] [--out bench/results]`` runs the same backfill
twice, each on a fresh embedded runtime in a process of its own (``reuse_results`` on, then off):
N images in the existing-content bucket, of which ``duplicates × N`` are byte-for-byte copies of
others under other keys, ingested by an S3 Batch Operations job (the emulator's runner, with the
stack's role) and analysed with labels + moderation. Measured: Rekognition calls per object (the
simulator's call counts), the reuse rate (tasks with reused outputs ÷ objects), and the cost of the
run: Rekognition at the catalogue's prices plus the pipeline's own requests priced by
``bench/prices.py`` (``bench.cost``), against the same run with reuse off.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import harness

RESULTS = Path(__file__).resolve().parent / "results"
OPERATIONS = ("labels", "moderation")
APIS = ("DetectLabels", "DetectModerationLabels")
QUOTA_TPS = 50.0
"""DetectLabels' default quota in us-east-1: the run is about reuse, not about pacing."""


def bodies(images: int, duplicates: float, seed: int) -> list[tuple[str, bytes]]:
    """``images`` objects, ``round(duplicates × images)`` of them copies of a distinct one, shuffled."""
    from rekpipe.samples import jpeg_bytes

    copies = round(duplicates * images)
    distinct = [jpeg_bytes(seed * 100_000 + i) for i in range(images - copies)]
    rng = random.Random(seed)
    chosen = distinct + [rng.choice(distinct) for _ in range(copies)]
    rng.shuffle(chosen)
    return [(f"library/{i // 100:03d}/photo-{i:05d}.jpg", body) for i, body in enumerate(chosen)]


def run_worker(reuse_on: bool, images: int, duplicates: float, seed: int, timeout: float) -> dict[str, Any]:
    """One backfill on one runtime; returns its counts (in the worker process)."""
    from rekpipe.emulator.batch_operations import BatchJobSpec, BatchOperationsRunner, ManifestLocation, ReportSpec
    from rekpipe.simulator import SimulatorConfig
    from rekpipe_shared.operations import CATALOGUE
    from rekpipe_shared.settings import PipelineSettings

    settings = PipelineSettings(image_operations=OPERATIONS, image_tps_quota=QUOTA_TPS, reuse_results=reuse_on)
    simulator = SimulatorConfig(seed=seed, clock_scale=1.0, tps_quotas={api: QUOTA_TPS for api in APIS})
    objects = bodies(images, duplicates, seed)
    distinct = len({body for _, body in objects})
    with harness.quiet(), harness.running(settings, simulator) as handle:
        outputs = handle.runtime.outputs
        s3 = harness.harness_client("s3")
        source = outputs["ExistingContentBucketName"]
        for key, body in objects:
            s3.put_object(Bucket=source, Key=key, Body=body)
        manifest_key = f"{outputs['ManifestPrefix']}reuse-bench.csv"
        s3.put_object(Bucket=outputs["ManifestBucketName"], Key=manifest_key,
                      Body="".join(f"{source},{key}\n" for key, _ in objects).encode())
        with harness.phase(handle) as marks:
            began = time.monotonic()
            BatchOperationsRunner(concurrency=4).run(BatchJobSpec(
                function_arn=outputs["IngestBatchFunctionArn"],
                manifest=ManifestLocation(outputs["ManifestBucketName"], manifest_key),
                report=ReportSpec(outputs["ManifestBucketName"], outputs["BatchReportPrefix"].rstrip("/")),
                role_arn=outputs["BatchOperationsRoleArn"]))
            counts = harness.wait_until_terminal(handle, marks.terminal_before + images, timeout=timeout,
                                                 progress=f"reuse {'on' if reuse_on else 'off'}")
            wall = time.monotonic() - began
        tasks = harness.scan_tasks(handle)
    calls = {api: int(marks.usage["rekognition_calls"].get(api, 0)) for api in APIS}
    reused_tasks = sum(1 for t in tasks if t.get("reused"))
    rekognition_usd = sum(calls[CATALOGUE[name].image_api] * CATALOGUE[name].image_price for name in OPERATIONS)
    return {"reuse_results": reuse_on, "objects": images, "distinct_objects": distinct,
            "duplicates": images - distinct, "task_counts": counts, "wall_seconds": wall,
            "rekognition_calls": calls, "reused_tasks": reused_tasks, "rekognition_usd": rekognition_usd,
            **marks.usage}


def figures(run: dict[str, Any]) -> dict[str, Any]:
    """The scenario's figures for one run, with the pipeline's own cost from ``bench.cost``."""
    from bench import cost

    objects = run["objects"]
    pipeline = cost.per_object(run, objects, "image (labels + moderation)", run["rekognition_usd"] / objects)
    calls = sum(run["rekognition_calls"].values())
    return {
        "reuse_results": run["reuse_results"],
        "objects": objects,
        "duplicates": run["duplicates"],
        "succeeded": run["task_counts"].get("SUCCEEDED", 0),
        "rekognition_calls": run["rekognition_calls"],
        "calls_per_object": calls / objects,
        "calls_per_object_per_operation": calls / objects / len(OPERATIONS),
        "reuse_rate": run["reused_tasks"] / objects,
        "rekognition_usd": run["rekognition_usd"],
        "pipeline_usd": pipeline["pipeline_usd"] * objects,
        "total_usd": run["rekognition_usd"] + pipeline["pipeline_usd"] * objects,
        "per_object": pipeline,
        "wall_seconds": run["wall_seconds"],
        "loadavg_end": run.get("loadavg_end"),
    }


def table(on: dict[str, Any], off: dict[str, Any]) -> str:
    rows = [("Rekognition calls ÷ objects", f"{on['calls_per_object']:.3f}", f"{off['calls_per_object']:.3f}"),
            ("Reuse rate (objects served from the index)", f"{on['reuse_rate']:.1%}", f"{off['reuse_rate']:.1%}"),
            ("Rekognition cost", f"${on['rekognition_usd']:.4f}", f"${off['rekognition_usd']:.4f}"),
            ("Pipeline's own cost (Lambda, DynamoDB, SQS, S3)", f"${on['pipeline_usd']:.4f}",
             f"${off['pipeline_usd']:.4f}"),
            ("Total", f"${on['total_usd']:.4f}", f"${off['total_usd']:.4f}"),
            ("SUCCEEDED", f"{on['succeeded']:,} / {on['objects']:,}", f"{off['succeeded']:,} / {off['objects']:,}"),
            ("Wall time (this machine)", f"{on['wall_seconds']:.0f} s", f"{off['wall_seconds']:.0f} s")]
    lines = ["| | reuse on | reuse off |", "| --- | --- | --- |"]
    lines += [f"| {name} | {a} | {b} |" for name, a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reuse", description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--duplicates", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=("on", "off"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = run_worker(args.worker == "on", args.images, args.duplicates, args.seed, args.timeout)
        args.worker_out.write_text(json.dumps(result, default=str))
        return 0
    runs = {}
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    with tempfile.TemporaryDirectory(prefix="rekpipe-bench-reuse-") as tmp:
        for mode in ("on", "off"):  # a fresh process per runtime: moto's state never leaks between them
            out = Path(tmp) / f"{mode}.json"
            subprocess.run([sys.executable, "-m", "bench.reuse", "--worker", mode, "--worker-out", str(out),
                            "--images", str(args.images), "--duplicates", str(args.duplicates),
                            "--seed", str(args.seed), "--timeout", str(args.timeout)],
                           cwd=harness.ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            runs[mode] = figures(json.loads(out.read_text()))
    result = {"scenario": "reuse", "images": args.images, "duplicates": args.duplicates, "operations": OPERATIONS,
              "on": runs["on"], "off": runs["off"],
              "saved_usd": runs["off"]["total_usd"] - runs["on"]["total_usd"],
              "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()[0]}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reuse.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / "reuse.md").write_text(table(runs["on"], runs["off"]) + "\n")
    print(table(runs["on"], runs["off"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
