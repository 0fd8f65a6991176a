"""``rekpipe local run``'s work: start the embedded runtime, run the sources through the pipeline, report.

:func:`run_local` is what the command calls, and what tests and scripts call with their own
:class:`~rekpipe.cli.local.options.LocalRunOptions` (such as a faster schedule). The steps: upload every
source to the content bucket, wait for each object's task to reach a final status, copy the output
bucket to a folder and write the HTML report of it there (:mod:`rekpipe.report`) while the emulator
still serves the pictures. Functions' own output goes to a log file (:mod:`.function_output`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rekpipe.cli.exceptions import UserException
from rekpipe.cli.local.exceptions import LocalRunIncompleteError
from rekpipe.cli.local.function_output import function_output_to
from rekpipe.cli.local.results import LocalRunResult, ObjectOutcome
from rekpipe.cli.local.sources import collect_sources
from rekpipe.cli.local.view import SYNTHETIC_NOTE, describe_simulator, print_run, result_text
from rekpipe_shared.schema import TERMINAL_STATUSES

if TYPE_CHECKING:
    from pathlib import Path

    from rekpipe.cli.local.options import LocalRunOptions
    from rekpipe.cli.local.sources import Source
    from rekpipe.emulator.runtime import EmbeddedRuntime

RUN_LOG_NAME = "rekpipe-local.log"
REPORT_FOLDER = "report"
POLL_SECONDS = 0.5
_SWEEP_SECONDS = 2.0


def run_local(options: LocalRunOptions) -> LocalRunResult:
    """Run the pipeline over a folder or generated samples and report each object.

    Parameters
    ----------
    options: LocalRunOptions
        What to analyse, where the outputs go, the simulator's knobs and the settings.

    Returns
    -------
    LocalRunResult
        Every object's outcome, the counts, timings and the simulator's record.

    Raises
    ------
    LocalRunIncompleteError
        When an analysed object has no final status within ``options.timeout`` (exit 1).
    """
    from rekpipe.cli.console import note, plural

    started = time.monotonic()
    out = options.out
    sources, described = collect_sources(options.folder, options.images, options.videos, options.emulator.seed)
    run_settings = options.pipeline_settings()
    simulator = options.emulator.simulator_config()
    if out.exists() and not out.is_dir():
        raise UserException(f"--out {out} is a file: pass a folder for the outputs")
    note(f"Local run of {described}: {plural(len(sources), 'file')} -> {out}")
    note(f"Settings: image operations {', '.join(run_settings.image_operations) or 'none'}; video operations "
         f"{', '.join(run_settings.video_operations) or 'none'}; video job wait {run_settings.video_job_wait_seconds} s")
    note(describe_simulator(simulator))
    note(SYNTHETIC_NOTE)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / RUN_LOG_NAME
    with log_path.open("w", encoding="utf-8") as log, function_output_to(log):
        from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions

        runtime = EmbeddedRuntime(RuntimeOptions(settings=run_settings, simulator=simulator, server=options.server,
                                                 schedule_seconds=options.schedule_seconds))
        try:
            result = _run(runtime, sources, out=out, log_path=log_path, timeout=options.timeout, started=started,
                          report=options.report)
        finally:
            runtime.stop()
    result.timings["wall"] = time.monotonic() - started
    print_run(result)
    if result.lost:
        raise LocalRunIncompleteError(result, options.timeout)
    return result


def _run(runtime: EmbeddedRuntime, sources: list[Source], *, out: Path, log_path: Path, timeout: float,
         started: float, report: bool = True) -> LocalRunResult:
    from rekpipe.cli.console import Progress
    from rekpipe_shared.tasks import TaskTable

    timings: dict[str, float] = {}
    with Progress() as progress:
        progress.update("Starting the emulator (synthesizing and deploying the stack)...", force=True)
        runtime.start()
        timings["start"] = time.monotonic() - started
        progress.done(f"Emulator ready in {timings['start']:.1f} s")
    outputs = runtime.outputs
    content_bucket, output_bucket = outputs["ContentBucketName"], outputs["OutputBucketName"]
    upload_started = time.monotonic()
    outcomes = _upload(sources, content_bucket)
    timings["upload"] = time.monotonic() - upload_started
    table = TaskTable(outputs["TaskTableName"])
    analysis_started = time.monotonic()
    _wait_for_tasks(table, outcomes, deadline=analysis_started + timeout)
    timings["analysis"] = time.monotonic() - analysis_started
    copied = _copy_outputs(output_bucket, out)
    for outcome in outcomes:
        outcome.result = result_text(outcome, output_bucket, out)
    assert runtime.simulator is not None
    simulator = runtime.simulator
    return LocalRunResult(
        objects=outcomes, counts=table.counts(), out=out, log_path=log_path, copied=copied,
        lost=[o for o in outcomes if o.analysed and o.status not in TERMINAL_STATUSES], timings=timings,
        simulator_calls=simulator.stats.snapshot(), video_jobs=list(simulator.jobs.values()),
        lost_notices=simulator.lost_notices, peak_running_jobs=simulator.peak_running_jobs,
        slot_holders=_held_slots(outputs), content_bucket=content_bucket, output_bucket=output_bucket,
        access_refusals=_access_refusals(runtime),
        report=_write_report(output_bucket, out / REPORT_FOLDER) if report else None,
    )


def _held_slots(outputs: dict[str, str]) -> dict[str, Any]:
    """Video slots still held once the run is over (should be none): holder -> its JobId."""
    from rekpipe.cli.slots import read_holders

    table = outputs.get("SemaphoreTableName")
    return {name: holder.job_id for name, holder in read_holders(table).items()} if table else {}


def _access_refusals(runtime: EmbeddedRuntime) -> list[str]:
    """Distinct refusals of the run, calls and service deliveries, in the order they first happened."""
    if runtime.iam is None:
        return []
    seen: dict[str, None] = {}
    for refusal in runtime.iam.all_refusals():
        seen.setdefault(refusal.message, None)
    for delivery in runtime.iam.delivery_refusals:
        seen.setdefault(delivery.message, None)
    return list(seen)


def _write_report(output_bucket: str, folder: Path) -> Path | None:
    """The HTML report of the run (`rekpipe report`), built while the emulator still serves the pictures.

    A report that cannot be written (no object finished, --out/report holds other files) is a note,
    never the run's error: the run's own outcome is what the exit status reports.
    """
    import boto3

    from rekpipe.cli.console import note
    from rekpipe.report import RateLimiter, ReportError, ReportOptions, S3Source, build_report

    source = S3Source(boto3.client("s3"), output_bucket, "", RateLimiter(1000))
    try:
        return build_report(source, ReportOptions(out=folder, workers=4)).index
    except ReportError as error:
        note(f"No HTML report: {error.format_message()}")
        return None


def _upload(sources: list[Source], bucket: str) -> list[ObjectOutcome]:
    """Put every file in the content bucket (S3 notifies ingest); one outcome per file, PENDING or SKIPPED."""
    import boto3

    from rekpipe.cli.console import Progress
    from rekpipe_shared.media import media_type_for, skip_reason
    from rekpipe_shared.tasks import task_id_for

    s3 = boto3.client("s3")
    outcomes = []
    with Progress() as progress:
        for index, source in enumerate(sources, start=1):
            progress.update(f"Uploading {index}/{len(sources)}: {source.key}")
            try:
                with source.open() as body:
                    response = s3.put_object(Bucket=bucket, Key=source.key, Body=body)
            except OSError as error:
                raise UserException(f"Cannot read {source.path} ({error.strerror}): fix its permissions or remove "
                                    "it") from None
            reason = skip_reason(source.key, source.size)
            if reason:
                outcomes.append(ObjectOutcome(source.key, source.size, None, None, "SKIPPED",
                                              result=f"skipped by ingest: {reason}"))
                continue
            task_id = task_id_for(bucket, source.key, response.get("VersionId"), response.get("ETag"))
            outcomes.append(ObjectOutcome(source.key, source.size, media_type_for(source.key), task_id, "UPLOADED"))
        progress.done(f"Uploaded {len(sources)} files to s3://{bucket}")
    return outcomes


def _wait_for_tasks(table: Any, outcomes: list[ObjectOutcome], *, deadline: float) -> None:
    """Poll the status counters, and the items of unfinished tasks, until all are final or the deadline passes.

    The counters (16 reads) drive the progress line; task items are read only when the counters say
    more tasks finished than are known to have, and at the end, so a large run does not read every
    item on every poll.
    """
    from rekpipe.cli.console import Progress
    from rekpipe_shared.schema import ALL_STATUSES

    terminal = TERMINAL_STATUSES
    pending = {o.task_id: o for o in outcomes if o.analysed}
    expected = len(pending)
    known_final = 0
    last_sweep = 0.0
    started = time.monotonic()
    with Progress(per_second=4) as progress:
        while True:
            counts = table.counts()
            final = sum(counts[status] for status in terminal)
            now = time.monotonic()
            progress.update(f"Analysing {expected} objects ({now - started:.0f} s): "
                            + ", ".join(f"{counts[s]} {s.lower().replace('_', ' ')}" for s in ALL_STATUSES if counts[s]))
            out_of_time = now >= deadline
            if (final > known_final and (now - last_sweep >= _SWEEP_SECONDS or final >= expected)) or out_of_time:
                last_sweep = now
                for task_id, outcome in list(pending.items()):
                    item = table.get(task_id)
                    outcome.task = item
                    outcome.status = str(item["status"]) if item else "NO TASK"
                    outcome.operations = tuple(item.get("operations") or ()) if item else ()
                    if outcome.status in terminal:
                        del pending[task_id]
                        known_final += 1
            if not pending or out_of_time:
                break
            time.sleep(POLL_SECONDS)
        progress.done(f"{expected - len(pending)} of {expected} objects reached a final status in "
                      f"{time.monotonic() - started:.1f} s")


def _copy_outputs(bucket: str, out: Path) -> int:
    """Copy every object of the output bucket under ``out``, keeping keys as relative paths."""
    import boto3

    from rekpipe.cli.console import Progress, note

    s3 = boto3.client("s3")
    root = out.resolve()
    copied = 0
    with Progress() as progress:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                key = item["Key"]
                target = (out / key).resolve()
                if key.endswith("/") or not target.is_relative_to(root) or target == root:
                    note(f"Not copied: output key {key!r} is not a file path under {out}")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                copied += 1
                progress.update(f"Copied {copied} outputs to {out}")
        progress.done(f"Copied {copied} outputs from s3://{bucket} to {out}")
    return copied


__all__ = ["REPORT_FOLDER", "RUN_LOG_NAME", "run_local"]
