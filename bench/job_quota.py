"""Issue 12's video half: the account's concurrent stored-video job quota raised mid-run, followed with no
redeploy.

``python -m bench.job_quota`` runs the deployed template on the embedded runtime (IAM enforced, the real
handlers, the simulator). The pipeline is never told the quota: the simulator enforces it
(``max_concurrent_jobs``), the emulator's Service Quotas reports it, and the slot dispatcher's tick reads it
(``quota_refresh_seconds`` = 30) and takes a changed value as its stored limit. A backlog of videos runs
at quota 2; the quota is raised to 6 while the backlog waits. Every half second the bench samples our
running jobs and the stored limit. It writes ``bench/results/job_quota/results.json`` and ``job_quota.png``.

The tick fires every 10 s here instead of every minute (``RuntimeOptions.schedule_seconds``), so the run
fits in a few minutes; on AWS a raise is followed within the refresh interval plus one minute.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "job_quota"
REFRESH_SECONDS = 30
TICK_SECONDS = 10.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    import boto3

    from bench import harness
    from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions
    from rekpipe.samples import mp4_bytes
    from rekpipe.simulator import SimulatorConfig
    from rekpipe_shared.quotas import VIDEO_JOBS
    from rekpipe_shared.settings import PipelineSettings
    from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore
    from rekpipe_shared.tasks import TaskTable, task_id_for

    settings = PipelineSettings(image_operations=("labels",), video_operations=("labels",),
                                quota_refresh_seconds=REFRESH_SECONDS)
    simulator = SimulatorConfig(seed=2, job_duration=(args.job_seconds, args.job_seconds),
                                max_concurrent_jobs=args.quota)
    samples: list[dict[str, float]] = []
    with harness.quiet(), EmbeddedRuntime(RuntimeOptions(settings=settings, simulator=simulator,
                                                         schedule_seconds=TICK_SECONDS)) as runtime:
        sim = runtime.simulator
        assert sim is not None
        store = DynamoDBSlotStore(runtime.outputs["SemaphoreTableName"], default_limit=1)
        table = TaskTable(runtime.outputs["TaskTableName"])
        s3 = boto3.client("s3")
        bucket = runtime.outputs["ContentBucketName"]
        started = time.monotonic()
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                header = store.header()
                samples.append({"t": time.monotonic() - started, "running": sim.running_jobs(),
                                "limit": header["limit"], "quota": sim.config.max_concurrent_jobs})

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        task_ids = []
        for index in range(args.videos):
            key = f"videos/quota/clip-{index:03d}.mp4"
            version = s3.put_object(Bucket=bucket, Key=key, Body=mp4_bytes(500 + index))["VersionId"]
            task_ids.append(task_id_for(bucket, key, version, None))
        time.sleep(max(0.0, args.raise_after - (time.monotonic() - started)))
        raised_at = time.monotonic() - started
        runtime.set_quota(VIDEO_JOBS, args.raise_to)
        deadline = time.monotonic() + args.timeout
        final: dict[str, Any] = {}
        while time.monotonic() < deadline:
            final = {t: (table.get(t) or {}).get("status") for t in task_ids}
            if all(s in ("SUCCEEDED", "FAILED", "PARTIAL") for s in final.values()):
                break
            time.sleep(1)
        stop.set()
        sampler.join()
        refused = sim.stats.errors.get("StartLabelDetection", {}).get("LimitExceededException", 0)
    before = [s for s in samples if s["t"] < raised_at]
    after = [s for s in samples if s["t"] >= raised_at]
    limit_followed = next((s["t"] - raised_at for s in after if s["limit"] == args.raise_to), None)
    running_followed = next((s["t"] - raised_at for s in after if s["running"] > args.quota), None)
    statuses: dict[str, int] = {}
    for status in final.values():
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "videos": args.videos, "job_seconds": args.job_seconds, "quota": args.quota, "raise_to": args.raise_to,
        "raised_at": raised_at, "refresh_seconds": REFRESH_SECONDS, "tick_seconds": TICK_SECONDS,
        "limit_followed_seconds": limit_followed, "running_above_old_quota_seconds": running_followed,
        "peak_running_before": max((s["running"] for s in before), default=0),
        "peak_running_after": max((s["running"] for s in after), default=0),
        "limit_exceeded_refusals": refused, "statuses": statuses, "samples": samples,
        "wall_seconds": samples[-1]["t"] if samples else None,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot([s["t"] for s in samples], [s["running"] for s in samples], drawstyle="steps-post",
            label="our running jobs")
    ax.plot([s["t"] for s in samples], [s["limit"] for s in samples], drawstyle="steps-post", linestyle="--",
            label="stored slot limit")
    ax.plot([s["t"] for s in samples], [s["quota"] for s in samples], drawstyle="steps-post", linestyle=":",
            color="grey", label="account job quota")
    raised = result["raised_at"]
    ax.axvline(raised, color="red", linestyle=":", label="quota raised")
    ax.axvspan(raised, raised + result["refresh_seconds"] + result["tick_seconds"], color="orange", alpha=0.15,
               label="refresh interval + one tick")
    ax.set_xlabel("seconds since the uploads began")
    ax.set_ylabel("jobs")
    ax.set_title(f"Job quota raised {result['quota']} -> {result['raise_to']} mid-run (no redeploy)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.job_quota", description=__doc__)
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--job-seconds", type=float, default=15.0)
    parser.add_argument("--quota", type=int, default=2)
    parser.add_argument("--raise-to", type=int, default=6)
    parser.add_argument("--raise-after", type=float, default=40.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(args)
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    plot(result, args.out / "job_quota.png")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
