"""Video backlog through the deployed template: ``python -m bench.backlog [--videos N] [--limit L] [--scale S]``.

N videos (one operation each) are uploaded at once against slot limit L, with job durations spread uniformly over
``--durations`` simulated seconds, and every timer on the simulator's clock (``timers_on_simulated_clock``: Step
Functions' heartbeats and timeouts, the slot tick, the dispatcher's clock), so the last videos wait simulated hours.

It reports, from the runtime itself:
- per operation, state transitions and history events against the time it waited (upload to its job's start), and
  the fitted slopes per hour waited;
- the peaks of open (RUNNING) executions and of parked waiters, sampled every half second;
- slot utilisation while a backlog exists (first to last job start) and the completion-to-next-start gap;
- the same backlog through the old design (git ad8885d), computed from that design's measured costs: 8.0
  transitions per operation plus, for every ``video_slot_wait_seconds`` (900 s) parked, one fallback re-check of
  2 transitions (bench/results/recheck) and 7 history events (AcquireSlot entered, scheduled, started, timed out,
  exited; RecheckSlot entered, exited). Every one of its executions started at upload.

Results go to ``bench/results/backlog.json``; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "backlog.json"
OLD_BASE_TRANSITIONS = 8.0
OLD_TRANSITIONS_PER_RECHECK = 2.0
OLD_EVENTS_PER_RECHECK = 7
OLD_RECHECK_SECONDS = 900
HOPS_NOTICE_TO_NEXT_START = 3
"""SNS -> notice queue -> job_completed; job_completed -> slot queue (done); the dispatcher frees the slot and calls
Start* for the head waiter in the same message. No hop depends on a poll interval."""


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys on xs (0 when xs do not vary)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def run(videos: int, limit: int, scale: float, durations: tuple[float, float], budget: float,
        heartbeat: int = 900, tick: float | None = None) -> dict[str, Any]:
    import boto3

    from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions
    from rekpipe.samples import mp4_bytes
    from rekpipe.simulator import SimulatorConfig, completion_to_next_start, slot_utilisation
    from rekpipe_shared.settings import PipelineSettings
    from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore
    from rekpipe_shared.tasks import TaskTable

    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(name, value)
    settings = PipelineSettings(image_operations=("labels",), video_operations=("labels",), video_slot_limit=limit,
                                video_slot_heartbeat_seconds=heartbeat)
    simulator = SimulatorConfig(seed=11, clock_scale=scale, max_concurrent_jobs=limit, job_duration=durations)
    options = RuntimeOptions(settings=settings, simulator=simulator, timers_on_simulated_clock=True,
                             schedule_seconds=tick)
    with EmbeddedRuntime(options) as runtime:
        sim = runtime.simulator
        assert sim is not None
        outputs = runtime.outputs
        s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
        table = TaskTable(outputs["TaskTableName"])
        store = DynamoDBSlotStore(outputs["SemaphoreTableName"], default_limit=limit)
        peaks: dict[str, float] = {"running_executions": 0, "waiters": 0, "holders": 0, "load_average": 0.0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                try:
                    running = sum(len(page["executions"]) for page in sfn.get_paginator("list_executions").paginate(
                        stateMachineArn=outputs["VideoStateMachineArn"], statusFilter="RUNNING"))
                    header = store.header()
                except Exception:  # a sample lost is a sample lost, not a failed bench
                    continue
                peaks["running_executions"] = max(peaks["running_executions"], running)
                peaks["waiters"] = max(peaks["waiters"], int(header["waiters"]))
                peaks["holders"] = max(peaks["holders"], int(header["holders"]))
                peaks["load_average"] = max(peaks["load_average"], os.getloadavg()[0])

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        uploaded: dict[str, float] = {}
        real0 = time.monotonic()
        for index in range(videos):
            key = f"backlog/video-{index:05d}.mp4"
            uploaded[key] = sim.clock.now()
            s3.put_object(Bucket=outputs["ContentBucketName"], Key=key, Body=mp4_bytes(50_000 + index))
        upload_seconds = time.monotonic() - real0
        done = 0
        while time.monotonic() - real0 < budget:
            counts = table.counts()
            done = counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0) + counts.get("PARTIAL", 0)
            print(f"\r{done}/{videos} videos done, {time.monotonic() - real0:.0f} s", end="", file=sys.__stderr__)
            if done >= videos:
                break
            time.sleep(1)
        print(file=sys.__stderr__)
        drained = time.monotonic() - real0
        stop.set()
        sampler.join()
        counts = table.counts()
        failures: dict[str, int] = {}
        for status in ("FAILED", "PARTIAL"):
            for task in table.iter_needing_attention(status):
                errors = task.get("operation_errors") or {}
                reason = task.get("error_code") or next((e.get("code") for e in errors.values()), "unknown")
                failures[str(reason)] = failures.get(str(reason), 0) + 1
        jobs = {job.location.name: job for job in sim.jobs.values()}
        events = list(sim.job_events)
        per_op: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=outputs["VideoStateMachineArn"]):
            for execution in page["executions"]:
                history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
                described = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
                key = described["task"]["key"]
                job = jobs.get(key)
                if job is None or key not in uploaded:
                    continue
                waited = job.created_at - uploaded[key]
                rechecks = int(waited // OLD_RECHECK_SECONDS)
                per_op.append({
                    "key": key, "status": execution["status"], "waited_sim_seconds": round(waited, 1),
                    "transitions": sum(1 for e in history if e["type"].endswith("StateEntered")),
                    "history_events": len(history),
                    "old_transitions": OLD_BASE_TRANSITIONS + OLD_TRANSITIONS_PER_RECHECK * rechecks,
                    "old_history_events_added": OLD_EVENTS_PER_RECHECK * rechecks,
                })
    starts = [e.sim_time for e in events if e.kind == "start"]
    first, last = (min(starts), max(starts)) if starts else (0.0, 0.0)
    gaps = completion_to_next_start([e for e in events if e.sim_time <= last])
    hours = [op["waited_sim_seconds"] / 3600 for op in per_op]
    transitions = [float(op["transitions"]) for op in per_op]
    history = [float(op["history_events"]) for op in per_op]
    old = [op["old_transitions"] for op in per_op]
    figures = {
        "videos": videos, "limit": limit, "scale": scale, "durations_sim_seconds": list(durations),
        "video_slot_heartbeat_seconds": heartbeat, "tick_sim_seconds": tick or 60,
        "completed": done, "task_counts": counts, "failure_reasons": failures, "upload_real_seconds": round(upload_seconds, 1),
        "drained_real_seconds": round(drained, 1),
        "backlog_sim_hours": round((last - first) / 3600, 2),
        "waited_sim_hours_max": round(max(hours), 2) if hours else None,
        "waited_sim_hours_median": round(statistics.median(hours), 2) if hours else None,
        "transitions_per_operation": {"min": min(transitions, default=None), "max": max(transitions, default=None),
                                      "slope_per_hour_waited": round(_slope(hours, transitions), 4)},
        "history_events_per_operation": {"min": min(history, default=None), "max": max(history, default=None),
                                         "slope_per_hour_waited": round(_slope(hours, history), 4)},
        "old_design_transitions_per_operation": {
            "min": min(old, default=None), "max": max(old, default=None),
            "slope_per_hour_waited": round(_slope(hours, old), 4),
            "history_events_added_max": max((op["old_history_events_added"] for op in per_op), default=None),
            "open_executions_peak": videos},
        "peak_running_executions": peaks["running_executions"], "peak_waiters": peaks["waiters"],
        "peak_holders": peaks["holders"], "peak_running_jobs": sim.peak_running_jobs,
        "slot_utilisation_while_backlog": round(slot_utilisation(events, limit, first, last), 4) if starts else None,
        "refill_hops": HOPS_NOTICE_TO_NEXT_START,
        "refill_p50_sim_seconds": _pct(gaps, 50), "refill_p95_sim_seconds": _pct(gaps, 95),
        "refill_p50_real_seconds": (_pct(gaps, 50) or 0) / scale, "refill_p95_real_seconds": (_pct(gaps, 95) or 0) / scale,
        "peak_load_average": round(peaks["load_average"], 2), "cpu_count": os.cpu_count(),
        "per_operation": per_op,
    }
    return figures


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def table(figures: dict[str, Any]) -> str:
    t, h, o = (figures["transitions_per_operation"], figures["history_events_per_operation"],
               figures["old_design_transitions_per_operation"])
    rows = [
        ("videos done / uploaded (limit, clock, heartbeat)", f"{figures['completed']} / {figures['videos']} "
                                                            f"(L={figures['limit']}, x{figures['scale']:g}, "
                                                            f"{figures['video_slot_heartbeat_seconds']} s)"),
        ("real seconds to drain", f"{figures['drained_real_seconds']}"),
        ("longest wait, simulated hours (median)", f"{figures['waited_sim_hours_max']} "
                                                  f"({figures['waited_sim_hours_median']})"),
        ("transitions per operation, min-max (slope per hour waited)", f"{_n(t['min'])}-{_n(t['max'])} "
                                                                        f"({t['slope_per_hour_waited']:g})"),
        ("history events per operation, min-max (slope per hour waited)", f"{_n(h['min'])}-{_n(h['max'])} "
                                                                           f"({h['slope_per_hour_waited']:g})"),
        ("old design: transitions per operation, min-max (slope per hour)", f"{_n(o['min'])}-{_n(o['max'])} "
                                                                             f"({o['slope_per_hour_waited']:g})"),
        ("peak open executions (old design: every video)", f"{figures['peak_running_executions']} "
                                                           f"({o['open_executions_peak']})"),
        ("peak parked waiters / holders / running jobs", f"{figures['peak_waiters']} / {figures['peak_holders']} / "
                                                         f"{figures['peak_running_jobs']}"),
        ("slot utilisation while a backlog exists", _n(figures['slot_utilisation_while_backlog'])),
        ("failed or partial, by reason", ", ".join(f"{k} {v}" for k, v in figures["failure_reasons"].items()) or "none"),
        ("peak 1-minute load average (cores)", f"{figures['peak_load_average']} ({figures['cpu_count']})"),
        ("completion -> next start: hops; p50 / p95 real s", f"{figures['refill_hops']}; "
                                                              f"{figures['refill_p50_real_seconds']:.2f} / "
                                                              f"{figures['refill_p95_real_seconds']:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"| {name.ljust(width)} | {value} |" for name, value in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--scale", type=float, default=100.0)
    parser.add_argument("--durations", type=float, nargs=2, default=(1200.0, 4800.0))
    parser.add_argument("--budget", type=float, default=300.0, help="real seconds before the run stops waiting")
    parser.add_argument("--heartbeat", type=int, default=900,
                        help="video_slot_heartbeat_seconds; a clock past x100 needs it longer (scale x 9 at least)")
    parser.add_argument("--tick", type=float, default=None,
                        help="simulated seconds between slot ticks (the stack's 60 by default); a fast clock with a "
                             "longer heartbeat can tick less often, which leaves the dispatcher to the messages")
    args = parser.parse_args(argv)
    from bench import harness

    with harness.quiet():  # the functions' logs and metrics; the table below is the output
        figures = run(args.videos, args.limit, args.scale, tuple(args.durations), args.budget, args.heartbeat,
                      args.tick)
    figures["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    figures["command"] = "python -m bench.backlog " + " ".join(argv if argv is not None else sys.argv[1:])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1) + "\n")
    print(table(figures))
    margin = args.heartbeat * 2 / 3 - (args.tick or 60)
    if figures["peak_load_average"] > (figures["cpu_count"] or 1):
        print(f"warning: the load average reached {figures['peak_load_average']} on {figures['cpu_count']} cores. At "
              f"x{args.scale:g} the dispatcher's heartbeat margin ({margin:g} simulated s: HeartbeatSeconds less a "
              f"third of it and a tick) is {margin / args.scale:.1f} real "
              "seconds, so a loaded machine times waiters out (States.HeartbeatTimeout): rerun on a quiet machine.",
              file=sys.stderr)


if __name__ == "__main__":
    main()
