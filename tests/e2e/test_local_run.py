"""``rekpipe local run`` end to end: the embedded runtime, the real handlers, the Rekognition simulator.

Each test starts the emulator in-process (synth + deploy, ~10-20 s on a 2-core machine), uploads
media with awkward key names and waits for every object's final status. Wall times are printed
(run pytest with ``-s`` to see them).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe.cli.local import EmulatorOptions, LocalRunOptions, run_local
from rekpipe.samples import NASTY_KEYS, corrupt_image_bytes, generate, jpeg_bytes, write_to
from rekpipe_shared.settings import PipelineSettings

pytestmark = pytest.mark.e2e

FAULT_SEED = 7
"""With seed 7 the simulator's pre-drawn job outcomes make 1 of the 6 video jobs (3 videos x 2 operations)
fail at a 10% rate and lose 1 other job's notice at 10%: computed from ``_content.seeded(7, "job", n)`` and
asserted below, so a change of the draws fails loudly instead of silently testing nothing."""


def test_local_run_generated_media_all_succeed_and_outputs_are_copied(aws_env, tmp_path, monkeypatch):
    # GIVEN an empty working folder (the command's defaults: 20 images, 3 videos, ./rekpipe-output)
    monkeypatch.chdir(tmp_path)
    samples = generate(images=20, videos=3, seed=7)

    # WHEN `rekpipe local run` analyses the generated media
    started = time.monotonic()
    result = CliRunner().invoke(main, ["local", "run"])
    wall = time.monotonic() - started
    print(f"\n[wall time] rekpipe local run, 20 images + 3 videos: {wall:.1f} s")

    # THEN it exits 0 and the table lists every key, nasty ones included, as SUCCEEDED
    assert result.exit_code == 0, result.stderr[-3000:]
    assert len(samples) == 23 and set(NASTY_KEYS) <= {s.key for s in samples}
    for sample in samples:
        assert sample.key in result.stdout
    assert result.stdout.count("SUCCEEDED") >= 23
    assert "23 objects analysed: 23 SUCCEEDED, 0 PARTIAL, 0 FAILED; 0 skipped by ingest." in result.stdout
    assert "Wall time" in result.stdout and "DetectLabels" in result.stdout
    # AND every call stayed inside the stack's IAM grants (the runtime enforces them)
    assert "IAM refused" not in result.stderr
    # AND the outputs were copied under ./rekpipe-output with their keys, and parse
    out = tmp_path / "rekpipe-output"
    # (<mode>/<bucket>/<key>/version-<id>/run-001/..., and <mode>/<bucket>/<key>/latest.json)
    def one(pattern: str):
        found = list(out.glob(pattern))
        assert len(found) == 1, (pattern, found)
        return json.loads(found[0].read_text())

    assert "LabelModelVersion" in one("sync/*/holiday photos/beach & sun.jpg/version-*/run-001/DetectLabels.json")
    manifest = one("sync/*/写真/café 100%.png/version-*/run-001/manifest.json")
    assert manifest["status"] == "SUCCEEDED" and manifest["source"]["key"] == "写真/café 100%.png"
    assert manifest["source"]["version_id"] and manifest["run"] == 1
    assert one("sync/*/写真/café 100%.png/latest.json")["manifest"].endswith(
        f"version-{manifest['source']['version_id']}/run-001/manifest.json")
    assert one("async/*/videos/clip 1 (final).mov/version-*/run-001/LabelDetection/summary.json")["labels"]
    assert one("async/*/videos/clip 0 (final).mp4/version-*/run-001/manifest.json")["status"] == "SUCCEEDED"
    # AND the HTML report of the run was written, its path printed, and it is marked synthetic
    report = out / "report" / "index.html"
    assert f"HTML report: open {report.resolve().as_uri()}" in result.stdout
    assert "synthetic-banner" in report.read_text() and json.loads((out / "rekpipe-synthetic.json").read_text())[
        "synthetic"] is True
    # AND stdout holds results only: the functions' logs went to the log file
    assert '"level":' not in result.stdout
    assert '"level":"INFO"' in (out / "rekpipe-local.log").read_text()


def test_local_run_with_faults_ends_consistent_with_the_simulator(aws_env, tmp_path):
    # GIVEN throttling on 30% of calls, 10% failed video jobs and 10% lost notices (seed 7 hits both),
    # and the slot tick every 5 s instead of every minute, so the lost notice is found by Get* quickly
    settings = PipelineSettings(video_job_wait_seconds=10, video_slot_wait_seconds=60,
                                video_job_limit_retry_seconds=2)

    # WHEN the generated media are analysed
    started = time.monotonic()
    faults = EmulatorOptions(seed=FAULT_SEED, throttle_rate=0.3, failed_job_rate=0.1, lost_notice_rate=0.1)
    result = run_local(LocalRunOptions(out=tmp_path / "out", emulator=faults, settings=settings, timeout=120,
                                       schedule_seconds=5))
    wall = time.monotonic() - started
    print(f"\n[wall time] rekpipe local run with faults (throttle 0.3, failed jobs 0.1, lost notices 0.1): "
          f"{wall:.1f} s")

    # THEN the faults really happened
    jobs = result.video_jobs
    failed = {(job.location.name, job.operation) for job in jobs if job.status == "FAILED"}
    assert failed, "no video job failed: the seed no longer hits the 10% rate"
    assert result.lost_notices, "no notice was lost: the seed no longer hits the 10% rate"
    assert sum(result.simulator_calls["throttled"].values()) > 0
    # AND nothing is lost or duplicated: one task per object, one job per (video, operation)
    assert result.lost == []
    assert sum(result.counts.values()) == len(result.objects) == 23
    job_ids = defaultdict(set)
    for job in jobs:
        job_ids[(job.location.name, job.operation)].add(job.job_id)
    videos = [o for o in result.objects if o.media_type == "video"]
    assert len(job_ids) == len(videos) * 2
    assert all(len(ids) == 1 for ids in job_ids.values()), job_ids
    # AND every object's status agrees with the simulator's record of which jobs failed
    for outcome in result.objects:
        assert outcome.task is not None
        if outcome.media_type == "image":
            assert outcome.status == "SUCCEEDED", outcome  # throttling is retried, never a failure
            continue
        failed_here = {operation for key, operation in failed if key == outcome.key}
        expected = "SUCCEEDED" if not failed_here else "FAILED" if len(failed_here) == 2 else "PARTIAL"
        assert outcome.status == expected, outcome
        assert set(outcome.task.get("operation_errors") or {}) == failed_here
    # AND every video slot was given back
    assert result.slot_holders == {}


def test_local_run_folder_shows_skipped_and_failed_files(aws_env, tmp_path):
    # GIVEN a folder with two photos, a corrupt "photo", an empty one and a text file, in subfolders
    folder = tmp_path / "media"
    write_to(folder, generate(images=2, videos=0, seed=3))
    (folder / "broken").mkdir()
    (folder / "broken" / "not really.jpg").write_bytes(corrupt_image_bytes())
    (folder / "broken" / "empty.png").write_bytes(b"")
    (folder / "notes" / "read me.txt").parent.mkdir()
    (folder / "notes" / "read me.txt").write_text("not media")
    (folder / "extra.jpg").write_bytes(jpeg_bytes(5))

    # WHEN the folder is analysed through the command line
    result = CliRunner().invoke(main, ["local", "run", str(folder), "--out", str(tmp_path / "out")])

    # THEN it exits 0 (bad files are expected outcomes) and says what happened to each file
    assert result.exit_code == 0, result.stderr[-3000:]
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 4}
    assert "SKIPPED" in rows["notes/read me.txt"] and "unsupported type (.txt)" in rows["notes/read me.txt"]
    assert "FAILED" in rows["broken/not really.jpg"] and "InvalidImageFormatException" in rows["broken/not really.jpg"]
    assert "FAILED" in rows["broken/empty.png"] and "EmptyObject" in rows["broken/empty.png"]
    assert "SUCCEEDED" in rows["extra.jpg"]
    assert "5 objects analysed: 3 SUCCEEDED, 0 PARTIAL, 2 FAILED; 1 skipped by ingest." in result.stdout
    assert "ended FAILED or PARTIAL" in result.stderr


def test_local_run_timeout_exits_1_and_names_the_unfinished_objects(aws_env, tmp_path):
    # GIVEN a video whose simulated job runs 60 s, and a 2 s timeout
    arguments = ["local", "run", "--images", "1", "--videos", "1", "--job-seconds", "60,60", "--timeout", "2",
                 "--out", str(tmp_path / "out")]

    # WHEN the run gives up waiting
    result = CliRunner().invoke(main, arguments)

    # THEN it exits 1 with one line naming the object and where it stopped, after printing the table
    assert result.exit_code == 1, result.stderr[-3000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: ") and "objects have no final status after 2 s: " in error
    assert "videos/clip 0 (final).mp4 (" in error and "run again with a longer --timeout" in error
    assert "videos/clip 0 (final).mp4" in result.stdout and "without a final status" in result.stdout
