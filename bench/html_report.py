"""``python -m bench.html_report``: how long ``rekpipe report`` takes, and how big the report is, for N objects.

No analysis runs: the script writes an output-bucket copy of N objects to a folder (real-shaped
responses from the Rekognition simulator's content functions, a manifest per object: 96 % images with
DetectLabels + DetectModerationLabels, 2 % videos with label and moderation summaries, 2 % FAILED),
then builds the report from that folder with ``--images none`` (there are no source pictures) and
measures the wall time of the build and the size of what it wrote. When Debian's ``chromium`` is
installed, it also opens the index headless and reads how long the page took to draw its first
rows (``data-ready-ms``, set by the report's script), unfiltered and with a search.

    python -m bench.html_report                       # 1,000 and 100,000 objects
    python -m bench.html_report --objects 5000        # one size
    python -m bench.html_report --keep /tmp/bench-report

Results go to ``bench/results/html_report.json`` and the table to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SIZES = (1_000, 100_000)
VIDEO_EVERY = 50
FAILED_EVERY = 50


def _write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")


def generate(folder: Path, count: int, bucket: str = "bench-output") -> int:
    """Write ``count`` objects' outputs and manifests under ``folder``; returns the bytes written."""
    from rekpipe.simulator._content import detect_labels, detect_moderation_labels, seeded, video_items, video_metadata
    from rekpipe_shared.video_summary import VideoSummary

    started = time.monotonic()
    for n in range(count):
        key = f"photos/{n // 1000:03d}/image-{n:06d}.jpg"
        task_id = f"{n:040x}"
        rng = seeded("bench-report", n)
        outputs: dict[str, str] = {}
        errors: dict[str, dict[str, str]] = {}
        if n % VIDEO_EVERY == 1:
            key, media, status = key.replace("image-", "clip-").replace(".jpg", ".mp4"), "video", "SUCCEEDED"
            metadata = video_metadata(task_id, 200)
            for operation, start_api, member in (("labels", "StartLabelDetection", "Labels"),
                                                 ("moderation", "StartContentModeration", "ModerationLabels")):
                summary = VideoSummary(operation)
                summary.add_page({member: video_items(start_api, rng, 200, metadata, {}), "VideoMetadata": metadata},
                                 member)
                relative = f"async/{key}-analysis/{start_api.removeprefix('Start')}/summary.json"
                _write(folder / relative, summary.summary())
                outputs[start_api] = f"s3://{bucket}/{relative}"
        elif n % FAILED_EVERY == 2:
            media, status = "image", "FAILED"
            errors = {"DetectLabels": {"code": "InvalidImageFormatException",
                                       "message": "Request has invalid image format"}}
        else:
            media, status = "image", "SUCCEEDED"
            for api, response in (("DetectLabels", detect_labels(rng, {"MinConfidence": 70, "MaxLabels": 50})),
                                  ("DetectModerationLabels", detect_moderation_labels(rng, {"MinConfidence": 70}))):
                relative = f"sync/{key}-analysis/{api}.json"
                _write(folder / relative, response)
                outputs[api] = f"s3://{bucket}/{relative}"
        prefix = f"{'async' if media == 'video' else 'sync'}/{key}-analysis/"
        _write(folder / prefix / "manifest.json", {
            "task_id": task_id, "source": {"bucket": "bench-content", "key": key, "version_id": f"v{n}",
                                           "etag": '"0"', "size": 1000},
            "media_type": media, "status": status, "operations": ["labels", "moderation"], "outputs": outputs,
            "errors": errors, "written_at": "2026-12-01T00:00:00Z"})
        if n % 1000 == 999:
            print(f"\rGenerated {n + 1:,}/{count:,} objects ({time.monotonic() - started:.0f} s)", end="",
                  file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def browser_ready_ms(index: Path, fragment: str = "") -> int | None:
    """Milliseconds from navigation to the first drawn rows in headless Chromium, or None without it."""
    import re
    import shutil as which
    import subprocess

    binary = which.which("chromium")
    if binary is None:
        return None
    done = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                           index.as_uri() + fragment], capture_output=True, text=True, timeout=300, check=False)
    found = re.search(r'data-ready-ms="(\d+)"', done.stdout)
    return int(found.group(1)) if found else None


def measure(count: int, workdir: Path, workers: int) -> dict[str, Any]:
    """Generate ``count`` objects, build their report, and return the figures."""
    from rekpipe.report import FolderSource, ReportOptions, build_report

    copy, out = workdir / f"output-{count}", workdir / f"report-{count}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    input_bytes = generate(copy, count)
    generated = time.monotonic() - started
    result = build_report(FolderSource(copy), ReportOptions(out=out, images="none", workers=workers))
    index_bytes = (out / "data" / "index.js").stat().st_size
    return {"objects": count, "input_bytes": input_bytes, "generate_seconds": round(generated, 1),
            "build_seconds": round(result.seconds, 1), "timings": {k: round(v, 1) for k, v in result.timings.items()},
            "report_bytes": result.bytes_written, "report_files": result.files_written, "index_js_bytes": index_bytes,
            "index_html_bytes": (out / "index.html").stat().st_size, "workers": workers, "counts": result.counts,
            "browser_ready_ms": browser_ready_ms(out / "index.html"),
            "browser_search_ready_ms": browser_ready_ms(out / "index.html", "#q=dog")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.html_report", description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, action="append", help="Objects to generate (repeatable).")
    parser.add_argument("--workers", type=int, default=4, help="Report build threads (default 4 on 2 cores).")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it (default: a temp folder).")
    parser.add_argument("--out", type=Path, default=RESULTS / "html_report.json", help="Where to write the JSON.")
    args = parser.parse_args(argv)
    sizes = args.objects or list(DEFAULT_SIZES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rekpipe-bench-report-") as temp:
        workdir = args.keep or Path(temp)
        workdir.mkdir(parents=True, exist_ok=True)
        for count in sizes:
            rows.append(measure(count, workdir, args.workers))
    document = {"measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "runs": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print("| objects | build time | report size (files) | data/index.js | index drawn (search) | input |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        ready = (f"{row['browser_ready_ms']} ms ({row['browser_search_ready_ms']} ms)"
                 if row["browser_ready_ms"] is not None else "no chromium")
        print(f"| {row['objects']:,} | {row['build_seconds']:.1f} s | {row['report_bytes'] / 1e6:.1f} MB "
              f"({row['report_files']:,}) | {row['index_js_bytes'] / 1e6:.2f} MB | {ready} | "
              f"{row['input_bytes'] / 1e6:.0f} MB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
