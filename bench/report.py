"""Turning results into the table, ``results.json`` and the figures (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def _usd(value: float) -> str:
    return f"${value:.7f}" if value < 0.001 else f"${value:.4f}"


def table(results: dict[str, Any]) -> str:
    """The Markdown table printed at the end and copied into the READMEs."""
    rows: list[tuple[str, str, str]] = []
    scenarios = results["scenarios"]
    images = scenarios.get("images")
    if images:
        head = images["headline"]
        spec = head["spec"]
        rows.append((f"**Image burst** N={spec['images']}, quota Q={spec['quota']:g} TPS, batch {spec['batch_size']}, "
                     f"concurrency {spec['max_concurrency']}", "", ""))
        rows.append(("achieved TPS / Q (steady part)", _fmt(head["tps_ratio"]), "≥ 0.95"))
        rows.append(("throttled / all DetectLabels calls", _fmt(head["throttled_ratio"], 3), "≤ 0.01"))
        rows.append(("upload → SUCCEEDED p50 / p95, simulated s",
                     f"{_fmt(head['latency_sim_p50'], 1)} / {_fmt(head['latency_sim_p95'], 1)}", ""))
        rows.append(("upload → SUCCEEDED p50 / p95, real s (this machine)",
                     f"{_fmt(head['latency_real_p50'], 1)} / {_fmt(head['latency_real_p95'], 1)}", ""))
        for point in images["grid"]:
            s = point["spec"]
            rows.append((f"grid N={s['images']}: batch {s['batch_size']}, concurrency {s['max_concurrency']} — "
                         "TPS/Q, throttled, p95 s",
                         f"{_fmt(point['tps_ratio'])}, {_fmt(point['throttled_ratio'], 3)}, "
                         f"{_fmt(point['latency_sim_p95'], 1)}",
                         "both goals" if point["meets_tps_goal"] and point["meets_throttle_goal"] else
                         ("TPS goal only" if point["meets_tps_goal"] else "neither")))
    videos = scenarios.get("videos")
    if videos:
        for run in videos["runs"]:
            spec = run["spec"]
            rows.append((f"**Video backlog** V={spec['videos']} ({run['operations']} operations), L={spec['slot_limit']}, "
                         f"jobs {spec['durations'][0]:g}–{spec['durations'][1]:g} sim s, clock ×{spec['scale']:g}", "", ""))
            rows.append(("mean slots in use / L while a backlog exists", _fmt(run["utilisation"]), ""))
            rows.append(("completion notice → next job start p50 / p95, simulated s",
                         f"{_fmt(run['refill_p50_sim'], 1)} / {_fmt(run['refill_p95_sim'], 1)}", ""))
            rows.append(("same, real s (this machine)",
                         f"{_fmt(run['refill_p50_real'], 2)} / {_fmt(run['refill_p95_real'], 2)}", ""))
            rows.append(("state transitions per video operation (min–max over executions)",
                         f"{_fmt(run['transitions_per_operation'], 1)} ({_fmt(run['transitions_per_operation_min'], 1)}"
                         f"–{_fmt(run['transitions_per_operation_max'], 1)})", "flat in wait"))
            rows.append(("slope of transitions/operation per hour waited",
                         _fmt(run["transitions_slope_per_hour_waited"], 3), "0"))
            rows.append(("longest wait for a slot, simulated s", _fmt(run["waited_sim_max"], 0), ""))
            rows.append(("backlog drained in, real s (this machine)", _fmt(run["drained_seconds"], 0), ""))
    baseline = scenarios.get("baseline")
    if baseline:
        model = baseline["model"]
        rows.append((f"**Baseline MODEL** (2-minute scheduler, no wake-up), same {model['jobs']} job durations", "", ""))
        rows.append(("mean slots in use / L while a backlog exists", _fmt(model["utilisation"]), ""))
        rows.append(("completion → next job start p50 / p95, simulated s",
                     f"{_fmt(model['refill_p50_sim'], 1)} / {_fmt(model['refill_p95_sim'], 1)}", ""))
    cost = scenarios.get("cost")
    if cost:
        for name in ("image", "video_operation"):
            entry = cost.get(name)
            if not entry:
                continue
            rows.append((f"**Cost per {entry['unit']}** (us-east-1 list prices, {cost['prices_date']})", "", ""))
            for row in entry["rows"]:
                if row["per_object"]:
                    rows.append((row["item"].replace("_", " "), f"{_fmt(row['per_object'], 3)} → {_usd(row['usd_per_object'])}",
                                 ""))
            rows.append(("pipeline total (Rekognition excluded)", _usd(entry["pipeline_usd"]),
                         f"per million: ${entry['per_million_usd']:,.2f}"))
            rows.append(("Rekognition itself", _usd(entry["rekognition_usd"]),
                         f"pipeline share {_fmt(100 * (entry['pipeline_share_of_total'] or 0), 1)} %"))
    out = ["| figure | value | goal / note |", "| --- | --- | --- |"]
    out.extend(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return "\n".join(out)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")


def plots(results: dict[str, Any], folder: Path) -> list[Path]:
    """Write the PNGs this run can draw; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    scenarios = results["scenarios"]
    images = scenarios.get("images")
    if images:
        head = images["headline"]
        fig, ax = plt.subplots(figsize=(8, 4))
        _per_second(ax, head["call_times"], "succeeded", "tab:blue")
        _per_second(ax, head["throttle_times"], "throttled", "tab:red")
        ax.axhline(head["spec"]["quota"], color="black", linestyle="--", linewidth=1, label="quota Q")
        ax.set_xlabel("simulated seconds since the first successful call")
        ax.set_ylabel("DetectLabels calls per second")
        ax.set_title(f"Image burst: N={head['spec']['images']}, Q={head['spec']['quota']:g} TPS "
                     f"(batch {head['spec']['batch_size']}, concurrency {head['spec']['max_concurrency']})")
        ax.legend()
        written.append(_save(fig, folder / "images_burst.png"))
        grid = images["grid"]
        fig, ax = plt.subplots(figsize=(8, 4))
        labels = [f"b{p['spec']['batch_size']}/c{p['spec']['max_concurrency']}" for p in grid]
        xs = range(len(grid))
        ax.bar([x - 0.2 for x in xs], [p["tps_ratio"] or 0 for p in grid], width=0.4, label="achieved TPS / Q")
        ax.bar([x + 0.2 for x in xs], [p["throttled_ratio"] or 0 for p in grid], width=0.4, label="throttled / all calls")
        ax.axhline(0.95, color="tab:blue", linestyle="--", linewidth=1)
        ax.axhline(0.01, color="tab:orange", linestyle="--", linewidth=1)
        ax.set_xticks(list(xs), labels)
        ax.set_xlabel("image_batch_size / image_max_concurrency")
        ax.set_title(f"Image settings grid (N={grid[0]['spec']['images']} each); dashed lines are the goals")
        ax.legend()
        written.append(_save(fig, folder / "images_grid.png"))
    videos = scenarios.get("videos")
    if videos:
        fig, ax = plt.subplots(figsize=(8, 4))
        for run, colour in zip(videos["runs"], ("tab:blue", "tab:green", "tab:purple"), strict=False):
            points = [(e["waited_sim_seconds"] / 60, e["transitions_per_operation"]) for e in run["per_execution"]
                      if e["waited_sim_seconds"] is not None]
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=10, color=colour,
                       label=f"clock ×{run['spec']['scale']:g} ({len(points)} executions)")
        ax.set_xlabel("time the execution waited for its slots (simulated minutes)")
        ax.set_ylabel("state transitions per operation")
        ax.set_ylim(bottom=0)
        ax.set_title("Video backlog: transitions per operation against the wait for a slot")
        ax.legend()
        written.append(_save(fig, folder / "videos_transitions.png"))
        run = videos["runs"][0]
        fig, ax = plt.subplots(figsize=(8, 4))
        _steps(ax, run["job_timeline"], f"this pipeline (emulated, clock ×{run['spec']['scale']:g})", "tab:blue")
        baseline = scenarios.get("baseline")
        if baseline:
            _steps(ax, baseline["model"]["job_timeline"], "original scheduler (MODEL, 2-minute Lambda)", "tab:red")
        ax.axhline(run["spec"]["slot_limit"], color="black", linestyle="--", linewidth=1, label="slot limit L")
        ax.set_xlabel("simulated minutes since the first job start")
        ax.set_ylabel("jobs running")
        ax.set_title("Video backlog: Rekognition jobs running")
        ax.legend(loc="lower left")
        written.append(_save(fig, folder / "videos_slots.png"))
    return written


def _per_second(ax: Any, times: list[float], label: str, colour: str) -> None:
    if not times:
        return
    buckets: dict[int, int] = {}
    for t in times:
        buckets[int(t)] = buckets.get(int(t), 0) + 1
    xs = list(range(0, max(buckets) + 1))
    ax.plot(xs, [buckets.get(x, 0) for x in xs], label=label, color=colour, linewidth=0.8)


def _steps(ax: Any, timeline: list[list[float]], label: str, colour: str) -> None:
    if not timeline:
        return
    ax.step([t / 60 for t, _ in timeline], [r for _, r in timeline], where="post", label=label, color=colour,
            linewidth=0.8)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
