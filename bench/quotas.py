"""Issue 12's benchmarks: image bursts at discovered quotas, a quota raised mid-run, cost per image,
and a burst at a raised quota of 200 TPS.

``python -m bench.quotas`` runs them on the embedded runtime (moto, real handlers, the simulator),
one runtime per concurrency, and writes ``bench/results/quotas/results.json``, ``table.md`` and
``quota_raise.png``. The pipeline is never told the quota: each runtime's simulator enforces it,
Service Quotas reports it (:mod:`rekpipe.emulator.service_quotas`) and ``analyze_image`` finds it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import harness
from bench.cost import image_cost
from bench.images import OPERATION, ImageRun, _figures

RESULTS = Path(__file__).resolve().parent / "results" / "quotas"
REFRESH_SECONDS = 30
"""The smallest ``quota_refresh_seconds``: a raised quota is followed within it."""


def _settings(concurrency: int) -> Any:
    from rekpipe_shared.settings import PipelineSettings

    return PipelineSettings(image_operations=("labels",), image_batch_size=10, image_max_concurrency=concurrency,
                            quota_refresh_seconds=REFRESH_SECONDS)


def _simulator(quota: float) -> Any:
    from rekpipe.simulator import SimulatorConfig

    config = SimulatorConfig(seed=1, max_concurrent_jobs=20)
    config.tps_quotas[OPERATION] = quota
    return config


def _burst(handle: harness.RunHandle, *, images: int, quota: float, concurrency: int, prefix: str,
           raise_to: float | None = None, raise_after: float = 0.0, timeout: float = 900.0) -> dict[str, Any]:
    """Upload ``images`` at once and wait for all; optionally raise the quota ``raise_after`` s in."""
    from rekpipe.samples import jpeg_bytes
    from rekpipe_shared.tasks import TaskTable

    sim = handle.runtime.simulator
    assert sim is not None
    bodies = [(f"{prefix}/{i // 100:03d}/image-{i:05d}.jpg", jpeg_bytes(100_000 + i)) for i in range(images)]
    raised_at: list[float] = []

    def raise_quota() -> None:
        handle.runtime.set_quota(OPERATION, raise_to)
        raised_at.append(sim.clock.now())

    timer = threading.Timer(raise_after, raise_quota) if raise_to else None
    source = next(s for s in handle.runtime.event_sources if s.function_name == handle.runtime.function_name(
        "analyze_image"))
    with harness.phase(handle) as marks:
        # A burst: every image is queued before analysis starts, so the rate measured is the pacer's,
        # not the speed of uploading (each upload runs ingest_s3 in-process on this shared machine).
        source.stop()
        harness.upload_all(handle, bodies)
        source._stop.clear()
        source.start()
        started_sim = sim.clock.now()
        if timer:
            timer.start()
        counts = harness.wait_until_terminal(handle, marks.terminal_before + images, timeout=timeout,
                                             progress=f"{prefix} ({images} images)")
    if timer:
        timer.cancel()
    calls = [r for r in sim.stats.call_log[marks.calls_before:] if r.operation == OPERATION]
    tasks = [t for t in harness.scan_tasks(handle) if str(t.get("object_key", "")).startswith(prefix + "/")]
    spec = ImageRun(images=images, max_concurrency=concurrency, quota=quota)
    figures = _figures(spec, calls, tasks)
    statuses: dict[str, int] = {}
    for task in tasks:
        statuses[task["status"]] = statuses.get(task["status"], 0) + 1
    table_counts = TaskTable(handle.runtime.outputs["TaskTableName"],
                             boto3_client=harness.harness_client("dynamodb")).counts()
    return {
        "images": images, "quota": quota, "concurrency": concurrency, "raise_to": raise_to,
        "raised_at_sim": (raised_at[0] - started_sim) if raised_at else None,
        "start_sim": started_sim, "first_call_sim": calls[0].sim_time if calls else None,
        "task_statuses": statuses, "counts_at_end": table_counts, "counts_exact": _exact(statuses, table_counts),
        "transaction_conflicts": _conflicts(marks.usage["lambda"]),
        "lambda_errors": {svc: v["errors"] for svc, v in marks.usage["lambda"].items()},
        **{k: v for k, v in figures.items()},
        "usage": marks.usage, "objects": images, "lambda": marks.usage["lambda"], "requests": marks.usage["requests"],
        "sqs_batches": marks.usage["sqs_batches"], "task_counts": counts,
    }


def _exact(statuses: dict[str, int], counts: dict[str, int]) -> bool:
    return all(counts.get(status, 0) >= n for status, n in statuses.items())


def _conflicts(lambdas: dict[str, Any]) -> int:
    """Invocations that failed on a cancelled transaction (TransactionConflict), over every function."""
    return sum(int(n) for v in lambdas.values() for kind, n in v.get("error_types", {}).items()
               if "Transaction" in kind)


def _rate_series(result: dict[str, Any]) -> list[tuple[int, int]]:
    """Successful calls per simulated second from the first call."""
    per: dict[int, int] = {}
    for t in result["call_times"]:
        per[int(t)] = per.get(int(t), 0) + 1
    return sorted(per.items())


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _rate_series(result)
    offset = (result["first_call_sim"] or 0) - result["start_sim"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot([s + offset for s, _ in series], [n for _, n in series], drawstyle="steps-post", label="DetectLabels calls/s")
    raised = result["raised_at_sim"]
    ax.hlines(result["quota"], 0, raised, colors="grey", linestyles="dashed", label="account quota")
    end = max(s for s, _ in series) + offset if series else raised
    ax.hlines(result["raise_to"], raised, end, colors="grey", linestyles="dashed")
    ax.axvline(raised, color="red", linestyle=":", label="quota raised")
    ax.axvspan(raised, raised + REFRESH_SECONDS, color="orange", alpha=0.15, label=f"refresh interval ({REFRESH_SECONDS} s)")
    ax.set_xlabel("seconds since upload")
    ax.set_ylabel("calls per second")
    ax.set_title(f"Quota raised {result['quota']:g} -> {result['raise_to']:g} TPS mid-run (concurrency "
                 f"{result['concurrency']}, no redeploy)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _follow_seconds(result: dict[str, Any]) -> float | None:
    """Seconds from the raise until a second ran above the old quota by half the step."""
    offset = (result["first_call_sim"] or 0) - result["start_sim"]
    threshold = result["quota"] + 0.5 * (result["raise_to"] - result["quota"])
    for second, count in _rate_series(result):
        t = second + offset
        if t >= result["raised_at_sim"] and count >= threshold:
            return t - result["raised_at_sim"]
    return None


def run(args: argparse.Namespace, save: Any = lambda _: None) -> dict[str, Any]:
    """Every scenario; ``save(results)`` after each, so an interrupted run keeps what it measured."""
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]},
                               "refresh_seconds": REFRESH_SECONDS, "bursts": [], "raise": None, "high": None}
    with harness.quiet():
        for concurrency in args.concurrency:
            with harness.running(_settings(concurrency), _simulator(args.quota)) as handle:
                burst = _burst(handle, images=args.images, quota=args.quota, concurrency=concurrency,
                               prefix=f"burst-c{concurrency}")
                burst["cost"] = image_cost(burst)
                results["bursts"].append(burst)
                save(results)
                if concurrency == 10 and args.raise_images:
                    raised = _burst(handle, images=args.raise_images, quota=args.quota, concurrency=concurrency,
                                    prefix="raise", raise_to=args.raise_to, raise_after=args.raise_after)
                    raised["follow_seconds"] = _follow_seconds(raised)
                    results["raise"] = raised
                    save(results)
        if args.high_images:
            with harness.running(_settings(50), _simulator(args.high_quota)) as handle:
                results["high"] = _burst(handle, images=args.high_images, quota=args.high_quota, concurrency=50,
                                         prefix="high")
    results["machine"]["loadavg_end"] = os.getloadavg()[0]
    return results


def table(results: dict[str, Any]) -> str:
    lines = ["| run | images | quota (TPS) | concurrency | achieved ÷ quota | throttled ÷ calls | counts exact |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for b in [*results["bursts"], *([results["high"]] if results["high"] else [])]:
        lines.append(f"| burst | {b['images']} | {b['quota']:g} | {b['concurrency']} | {_f(b['tps_ratio'])} | "
                     f"{_f(b['throttled_ratio'])} | {b['counts_exact']} |")
    raised = results.get("raise")
    if raised:
        lines.append(f"\nQuota raised {raised['quota']:g} -> {raised['raise_to']:g} TPS at "
                     f"{raised['raised_at_sim']:.1f} s: the rate followed {_f(raised['follow_seconds'], 1)} s later "
                     f"(refresh interval {results['refresh_seconds']} s); throttled ÷ calls {_f(raised['throttled_ratio'])}.")
    high = results.get("high")
    if high:
        lines.append(f"\n{high['quota']:g} TPS burst: TransactionConflict failures {high['transaction_conflicts']}, "
                     f"counts at the end {high['counts_at_end']}, task statuses {high['task_statuses']}.")
    for b in results["bursts"]:
        if b["concurrency"] == 10:
            lines.append("\n| per image (concurrency 10) | quantity | USD |\n| --- | ---: | ---: |")
            for row in b["cost"]["rows"]:
                lines.append(f"| {row['item']} | {row['per_object']:.3f} | {row['usd_per_object']:.8f} |")
            lines.append(f"| Lambda invocations by function | {b['cost']['lambda_by_function']} | |")
            lines.append(f"| **pipeline total** | | {b['cost']['pipeline_usd']:.8f} |")
            lines.append(f"| pipeline ÷ Rekognition | {b['cost']['pipeline_usd'] / b['cost']['rekognition_usd']:.4f} | |")
    return "\n".join(lines)


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quotas", description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--quota", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 2, 50])
    parser.add_argument("--raise-images", type=int, default=400)
    parser.add_argument("--raise-to", type=float, default=15.0)
    parser.add_argument("--raise-after", type=float, default=15.0)
    parser.add_argument("--high-images", type=int, default=600)
    parser.add_argument("--high-quota", type=float, default=200.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()

    def save(results: dict[str, Any]) -> None:
        results["wall_seconds"] = time.monotonic() - began
        slim = json.loads(json.dumps(results, default=str))
        for b in [*slim["bursts"], slim.get("raise"), slim.get("high")]:
            if b:
                b.pop("usage", None)
        (args.out / "results.json").write_text(json.dumps(slim, indent=1))
        (args.out / "table.md").write_text(table(results) + "\n")
        if results.get("raise"):
            _plot(results["raise"], args.out / "quota_raise.png")

    results = run(args, save)
    save(results)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
