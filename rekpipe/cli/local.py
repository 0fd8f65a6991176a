"""``rekpipe local``: run the whole pipeline on this machine with the embedded emulator.

``rekpipe local run`` starts the emulator in this process, uploads a folder (or generated samples),
waits for every object's task to end, prints what happened to each object, copies the analysis
outputs to a folder and writes the HTML report of them there (:mod:`rekpipe.report`). ``rekpipe local up`` serves the emulator on loopback until Ctrl-C, for the AWS
CLI and the other ``rekpipe`` commands with ``--local``; it writes ``.rekpipe/emulator.json``
(``{"endpoint_url", "region", "stack_name"}``), which ``--local`` reads, and removes it on exit.

S3 Batch Operations: moto has no S3 Control jobs API, so ``local up`` installs the emulator's
(:mod:`rekpipe.emulator.batch_operations`) before it starts serving. ``rekpipe --local backfill``
then creates its job with the same ``CreateJob`` call it makes against AWS, and the job runs in the
emulator's process; ``aws s3control describe-job`` and ``list-jobs`` answer too.

Functions' own output (Powertools logs and metrics, which go to stdout in Lambda) is written to a log
file, so stdout keeps only results and stderr only progress and notes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from rekpipe.cli.exceptions import UserException
from rekpipe.cli.stack import EMULATOR_FILE
from rekpipe_shared.schema import TERMINAL_STATUSES

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    from rekpipe.emulator.runtime import EmbeddedRuntime
    from rekpipe.simulator import SimulatorConfig, VideoJob
    from rekpipe_shared.settings import PipelineSettings

DEFAULT_IMAGES = 20
DEFAULT_VIDEOS = 3
DEFAULT_SEED = 7
DEFAULT_OUT = Path("rekpipe-output")
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_JOB_SECONDS = (2.0, 5.0)
"""Simulated duration of a stored-video job: seconds, not the minutes Rekognition takes."""
DEFAULT_PORT = 4566
LOCAL_SETTINGS = {"video_job_wait_seconds": 30, "video_slot_wait_seconds": 60, "video_job_limit_retry_seconds": 2}
"""Waits sized for a run of minutes: a lost job notice is caught by the 30 s job wait, not after an hour."""
RUN_LOG_NAME = "rekpipe-local.log"
REPORT_FOLDER = "report"
UP_LOG_FILE = Path(".rekpipe") / "functions.log"
POLL_SECONDS = 0.5
_SWEEP_SECONDS = 2.0
_TOP_LABELS = 3
_MAX_KEY_BYTES = 1024
SYNTHETIC_NOTE = ("Analysis content is SYNTHETIC: the Rekognition simulator invents labels, faces and text "
                  "(deterministic per seed and file); it never looks at pixels. Behaviour (errors, throttling, "
                  "video jobs, notices) follows the service.")


# --- the group and its commands ------------------------------------------------------------------
@click.group("local")
def local() -> None:
    """Run the pipeline locally on the embedded emulator (no AWS account needed).

    Everything AWS would run - S3, DynamoDB, SQS, SNS, Step Functions, Lambda - is emulated by moto
    with the stack deployed from this project's CDK app, the real Lambda handlers run in-process,
    and a simulator plays Amazon Rekognition. Analysis content is synthetic.
    """


def _simulator_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The Rekognition simulator's knobs, shared by ``run`` and ``up``."""
    options = [
        click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
                     help="Seed of the samples and of every simulated draw (content, faults, durations)."),
        click.option("--throttle-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Fraction of Rekognition calls answered ThrottlingException (fault injection)."),
        click.option("--failed-job-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Fraction of video jobs that end FAILED."),
        click.option("--lost-notice-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Fraction of video job completion notices never published (the job wait's timeout "
                          "recovers them)."),
        click.option("--tps-quota", "tps_quotas", multiple=True, metavar="OPERATION=TPS",
                     help="A Rekognition TPS quota, e.g. DetectLabels=50 (repeatable); unlimited otherwise."),
        click.option("--job-seconds", metavar="MIN,MAX", default=",".join(f"{s:g}" for s in DEFAULT_JOB_SECONDS),
                     show_default=True, help="How long each simulated video job runs, in seconds."),
        click.option("--settings-json", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
                     help="Pipeline settings (a JSON object, or cdk.json), e.g. which operations to run. "
                          "Video waits default to short local values."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@local.command("run", short_help="Analyse a folder (or generated samples) end to end, then exit.")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option("--images", type=click.IntRange(min=0), help=f"Sample images to generate when no FOLDER is given "
                                                             f"[default: {DEFAULT_IMAGES}].")
@click.option("--videos", type=click.IntRange(min=0), help=f"Sample videos to generate when no FOLDER is given "
                                                             f"[default: {DEFAULT_VIDEOS}].")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Folder the output bucket is copied to (keys kept as paths).")
@click.option("--timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT_SECONDS, show_default=True,
              help="Seconds to wait for every object to reach a final status.")
@click.option("--server", is_flag=True, help="Serve moto on loopback for the run (slower; like `local up`).")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write the HTML report of the results to OUT/report/ (see `rekpipe report`).")
@_simulator_options
def run_cli(folder: Path | None, images: int | None, videos: int | None, out: Path, timeout: float, server: bool,
            report: bool, seed: int, throttle_rate: float, failed_job_rate: float, lost_notice_rate: float,
            tps_quotas: tuple[str, ...], job_seconds: str, settings_json: Path | None) -> None:
    """Analyse every file in FOLDER (or generated sample media) on the local emulator, then exit.

    The emulator starts in this process, every file is uploaded to the content bucket (keys are the
    files' paths relative to FOLDER; files the pipeline does not analyse are uploaded too and shown as
    skipped by ingest), the run waits for each object's task to reach SUCCEEDED, PARTIAL or FAILED,
    then prints one row per object, copies the output bucket to --out and writes the HTML report of the
    results to OUT/report/ (see `rekpipe report`), printing the path to open.

    Analysis content is SYNTHETIC: the Rekognition simulator invents labels, faces and text
    (deterministic per seed and file) and never looks at pixels. Errors, throttling, video jobs and
    their notices behave like the service, and can be made to fail with the fault options.

    Exit status: 0 when every object reached a final status (FAILED and PARTIAL included), 1 when an
    object has none within --timeout.

    \b
    Examples:
      rekpipe local run
      rekpipe local run ~/Pictures/holiday --out holiday-results
      rekpipe local run --images 200 --videos 10 --throttle-rate 0.3 --lost-notice-rate 0.1
    """
    do_run_cli(folder, images=images, videos=videos, out=out, timeout=timeout, server=server, report=report, seed=seed,
               throttle_rate=throttle_rate, failed_job_rate=failed_job_rate, lost_notice_rate=lost_notice_rate,
               tps_quotas=tps_quotas, job_seconds=job_seconds, settings_json=settings_json)


@local.command("up", short_help="Serve the emulator on loopback until Ctrl-C (for the AWS CLI and --local).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Loopback port to serve on (0 picks a free one).")
@_simulator_options
def up_cli(port: int, seed: int, throttle_rate: float, failed_job_rate: float, lost_notice_rate: float,
           tps_quotas: tuple[str, ...], job_seconds: str, settings_json: Path | None) -> None:
    """Serve the pipeline's emulator on 127.0.0.1 until Ctrl-C.

    Upload with any AWS client pointed at the endpoint (fake credentials are accepted) and watch
    results with `rekpipe --local status`. `rekpipe --local backfill` works too: the emulator runs
    S3 Batch Operations jobs itself. The endpoint is written to .rekpipe/emulator.json in this folder
    (read by --local) and removed on exit; function logs go to .rekpipe/functions.log.

    Analysis content is SYNTHETIC: the Rekognition simulator invents labels, faces and text and never
    looks at pixels; behaviour (errors, throttling, video jobs, notices) follows the service.
    """
    do_up_cli(port=port, seed=seed, throttle_rate=throttle_rate, failed_job_rate=failed_job_rate,
              lost_notice_rate=lost_notice_rate, tps_quotas=tps_quotas, job_seconds=job_seconds,
              settings_json=settings_json)


# --- results -------------------------------------------------------------------------------------
@dataclass
class ObjectOutcome:
    """One uploaded file and what the pipeline did with it."""

    key: str
    size: int
    media_type: str | None
    task_id: str | None
    status: str
    operations: tuple[str, ...] = ()
    result: str = ""
    task: dict[str, Any] | None = None

    @property
    def analysed(self) -> bool:
        """Ingest writes a task for it (a supported image or video)."""
        return self.task_id is not None


@dataclass
class LocalRunResult:
    """What ``rekpipe local run`` did (returned by :func:`do_run_cli`, for tests and scripts)."""

    objects: list[ObjectOutcome]
    counts: dict[str, int]
    out: Path
    log_path: Path
    copied: int = 0
    lost: list[ObjectOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    simulator_calls: dict[str, Any] = field(default_factory=dict)
    video_jobs: list[VideoJob] = field(default_factory=list)
    lost_notices: list[str] = field(default_factory=list)
    peak_running_jobs: int = 0
    slot_holders: dict[str, Any] = field(default_factory=dict)
    content_bucket: str = ""
    output_bucket: str = ""
    access_refusals: list[str] = field(default_factory=list)
    """Each distinct IAM refusal of the run (caller, action, resource): a grant the stack lacks, or a fault."""
    report: Path | None = None
    """The HTML report's ``index.html``, when one was written."""

    def by_status(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for outcome in self.objects:
            totals[outcome.status] = totals.get(outcome.status, 0) + 1
        return totals


class LocalRunIncompleteError(UserException):
    """Some uploaded objects have no final status (lost, or still running at the timeout)."""

    def __init__(self, result: LocalRunResult, timeout: float) -> None:
        self.result = result
        self.timeout = timeout
        shown = ", ".join(f"{o.key} ({o.status})" for o in result.lost[:5])
        more = f" and {len(result.lost) - 5} more" if len(result.lost) > 5 else ""
        super().__init__(
            f"{len(result.lost)} of {sum(o.analysed for o in result.objects)} objects have no final status after "
            f"{timeout:g} s: {shown}{more}; run again with a longer --timeout, or look at {result.log_path}"
        )


# --- run --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    key: str
    size: int
    path: Path | None = None
    body: bytes | None = None

    def open(self) -> IO[bytes]:
        import io

        return self.path.open("rb") if self.path is not None else io.BytesIO(self.body or b"")


def do_run_cli(
    folder: Path | None,
    *,
    images: int | None = None,
    videos: int | None = None,
    out: Path = DEFAULT_OUT,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    server: bool = False,
    report: bool = True,
    seed: int = DEFAULT_SEED,
    throttle_rate: float = 0.0,
    failed_job_rate: float = 0.0,
    lost_notice_rate: float = 0.0,
    tps_quotas: tuple[str, ...] = (),
    job_seconds: str | tuple[float, float] = DEFAULT_JOB_SECONDS,
    settings_json: Path | None = None,
    settings: PipelineSettings | None = None,
    schedule_seconds: float | None = None,
) -> LocalRunResult:
    """Run the pipeline over a folder or generated samples and report each object.

    Parameters
    ----------
    folder: Path | None
        Files to upload (keys are their relative POSIX paths); None generates samples.
    images, videos: int | None
        How many samples to generate (only without ``folder``).
    out: Path
        Where the output bucket is copied.
    timeout: float
        Seconds to wait for every object's final status.
    server: bool
        Serve moto on loopback instead of in-process.
    report: bool
        Write the HTML report to ``out/report/`` while the emulator still serves the pictures.
    seed, throttle_rate, failed_job_rate, lost_notice_rate, tps_quotas, job_seconds:
        The Rekognition simulator's knobs (``tps_quotas`` as ``OPERATION=TPS`` strings).
    settings_json: Path | None
        Pipeline settings file; ``settings`` (tests) wins over it.
    schedule_seconds: float | None
        (tests) Fire the stack's schedules this often instead of at their own rate (the slot tick: 1 minute),
        so a test of lost notices need not wait a minute for the tick's Get*.

    Returns
    -------
    LocalRunResult
        Every object's outcome, the counts, timings and the simulator's record.

    Raises
    ------
    LocalRunIncompleteError
        When an analysed object has no final status within ``timeout`` (exit 1).
    """
    from rekpipe.cli.console import note, plural

    started = time.monotonic()
    sources, described = _sources(folder, images, videos, seed)
    run_settings = _local_settings(settings_json, settings)
    simulator = _simulator_config(seed=seed, throttle_rate=throttle_rate, failed_job_rate=failed_job_rate,
                                  lost_notice_rate=lost_notice_rate, tps_quotas=tps_quotas, job_seconds=job_seconds)
    if out.exists() and not out.is_dir():
        raise UserException(f"--out {out} is a file: pass a folder for the outputs")
    note(f"Local run of {described}: {plural(len(sources), 'file')} -> {out}")
    note(f"Settings: image operations {', '.join(run_settings.image_operations) or 'none'}; video operations "
         f"{', '.join(run_settings.video_operations) or 'none'}; video job wait {run_settings.video_job_wait_seconds} s")
    note(_describe_simulator(simulator))
    note(SYNTHETIC_NOTE)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / RUN_LOG_NAME
    with log_path.open("w", encoding="utf-8") as log, _function_output_to(log):
        from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions

        runtime = EmbeddedRuntime(RuntimeOptions(settings=run_settings, simulator=simulator, server=server,
                                                 schedule_seconds=schedule_seconds))
        try:
            result = _run(runtime, sources, out=out, log_path=log_path, timeout=timeout, started=started,
                          report=report)
        finally:
            runtime.stop()
    result.timings["wall"] = time.monotonic() - started
    _print_run(result)
    if result.lost:
        raise LocalRunIncompleteError(result, timeout)
    return result


def _run(runtime: EmbeddedRuntime, sources: list[_Source], *, out: Path, log_path: Path, timeout: float,
         started: float, report: bool = True) -> LocalRunResult:
    from rekpipe.cli.console import Progress

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
    from rekpipe_shared.tasks import TaskTable

    table = TaskTable(outputs["TaskTableName"])
    analysis_started = time.monotonic()
    _wait_for_tasks(table, outcomes, deadline=analysis_started + timeout)
    timings["analysis"] = time.monotonic() - analysis_started
    copied = _copy_outputs(output_bucket, out)
    for outcome in outcomes:
        outcome.result = _result_text(outcome, output_bucket, out)
    assert runtime.simulator is not None
    simulator = runtime.simulator
    result = LocalRunResult(
        objects=outcomes, counts=table.counts(), out=out, log_path=log_path, copied=copied,
        lost=[o for o in outcomes if o.analysed and o.status not in TERMINAL_STATUSES], timings=timings,
        simulator_calls=simulator.stats.snapshot(), video_jobs=list(simulator.jobs.values()),
        lost_notices=simulator.lost_notices, peak_running_jobs=simulator.peak_running_jobs,
        slot_holders=_slot_holders(outputs), content_bucket=content_bucket, output_bucket=output_bucket,
        access_refusals=_access_refusals(runtime),
        report=_write_report(output_bucket, out / REPORT_FOLDER) if report else None,
    )
    return result


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


def _sources(folder: Path | None, images: int | None, videos: int | None, seed: int) -> tuple[list[_Source], str]:
    """The files to upload and a description of where they come from."""
    if folder is None:
        from rekpipe.samples import generate

        images = DEFAULT_IMAGES if images is None else images
        videos = DEFAULT_VIDEOS if videos is None else videos
        if images + videos == 0:
            raise UserException("Nothing to analyse: --images and --videos are both 0; generate at least one sample "
                                "or pass a FOLDER")
        samples = generate(images=images, videos=videos, seed=seed)
        return ([_Source(s.key, len(s.body), body=s.body) for s in samples],
                f"{images} generated images and {videos} generated videos (seed {seed})")
    if images is not None or videos is not None:
        raise UserException("--images/--videos generate samples and cannot be combined with FOLDER: drop them, or "
                            "drop FOLDER")
    if not folder.exists():
        raise UserException(f"Folder {folder} does not exist: pass a folder of images and videos, or leave it out to "
                            "analyse generated samples")
    if not folder.is_dir():
        raise UserException(f"{folder} is a file, not a folder: pass the folder that holds it")
    import os

    sources = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            key = path.relative_to(folder).as_posix()
            if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
                raise UserException(f"{path}: the path is longer than S3's {_MAX_KEY_BYTES}-byte key limit; "
                                    "shorten it or move the file")
            try:
                size = path.stat().st_size
            except OSError as error:
                raise UserException(f"Cannot read {path} ({error.strerror}): fix its permissions or remove it") \
                    from None
            sources.append(_Source(key, size, path=path))
    if not sources:
        raise UserException(f"Folder {folder} has no files: add images (.jpg, .jpeg, .png) or videos (.mp4, .mov), "
                            "or leave FOLDER out to analyse generated samples")
    return sources, f"folder {folder}"


def _upload(sources: list[_Source], bucket: str) -> list[ObjectOutcome]:
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


def _result_text(outcome: ObjectOutcome, output_bucket: str, out: Path) -> str:
    """Top labels (from the copied outputs) and, for FAILED/PARTIAL, the error code and message."""
    from rekpipe.cli.status import _failure, _shorten

    if not outcome.analysed or outcome.task is None:
        return outcome.result or ("no task was written: ingest never saw the upload" if outcome.analysed else "")
    parts = []
    labels = _top_labels(outcome.task.get("outputs") or {}, output_bucket, out)
    if labels:
        parts.append(labels)
    if outcome.status in ("FAILED", "PARTIAL"):
        failure = _failure(outcome.task)
        parts.append(f"{failure.error_code}: {failure.error_message}")
    elif outcome.status not in TERMINAL_STATUSES:
        parts.append(f"still {outcome.status}")
    return _shorten("; ".join(parts))


_LABEL_SOURCES = (
    ("DetectLabels", "Labels", "Name", "Confidence"),
    ("StartLabelDetection", "labels", "name", "max_confidence"),
    ("DetectModerationLabels", "ModerationLabels", "Name", "Confidence"),
    ("StartContentModeration", "moderation_labels", "name", "max_confidence"),
)
"""Where each output keeps its labels: (API, list member, name field, confidence field)."""


def _top_labels(outputs: dict[str, str], output_bucket: str, out: Path) -> str:
    import json

    for api, member, name_field, confidence_field in _LABEL_SOURCES:
        uri = outputs.get(api)
        prefix = f"s3://{output_bucket}/"
        if not uri or not uri.startswith(prefix):
            continue
        try:
            document = json.loads((out / uri[len(prefix):]).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        labels = sorted(document.get(member) or [], key=lambda label: -(label.get(confidence_field) or 0))
        shown = [f"{label.get(name_field)} {label.get(confidence_field) or 0:.0f}%" for label in labels[:_TOP_LABELS]]
        if shown:
            return ("moderation: " if "oderation" in api else "") + ", ".join(shown)
    return f"{len(outputs)} outputs" if outputs else ""


def _slot_holders(outputs: dict[str, str]) -> dict[str, Any]:
    """Video slots still held once the run is over (should be none): holder -> its JobId."""
    from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore

    table = outputs.get("SemaphoreTableName")
    if not table:
        return {}
    # The limit only fills a header never written; holders are read, not granted.
    return {name: holder.job_id for name, holder in DynamoDBSlotStore(table, default_limit=1).load().holders.items()}


def _print_run(result: LocalRunResult) -> None:
    """The table of objects, the call counts and the summary, on stdout; notes on stderr."""
    from rekpipe.cli.console import note, plural, print_table, stdout_console

    rows = [(o.key, o.media_type or "-", o.status, ", ".join(o.operations) or "-", o.result)
            for o in sorted(result.objects, key=lambda o: o.key)]
    print_table(f"Objects ({len(rows)})", ("Object key", "Media", "Status", "Operations", "Top labels / error"), rows)
    calls = result.simulator_calls
    call_rows = []
    for operation in sorted(calls.get("calls", {})):
        errors = calls.get("errors", {}).get(operation, {})
        throttled = calls.get("throttled", {}).get(operation, 0)
        other = ", ".join(f"{code} {count}" for code, count in sorted(errors.items())
                          if code not in ("ThrottlingException", "ProvisionedThroughputExceededException"))
        call_rows.append((operation, calls["calls"][operation], calls.get("succeeded", {}).get(operation, 0),
                          throttled, other or "-"))
    if call_rows:
        print_table("Rekognition simulator calls", ("Operation", "Calls", "OK", "Throttled", "Other errors"),
                    call_rows, right=("Calls", "OK", "Throttled"))
    statuses = result.by_status()
    analysed = sum(o.analysed for o in result.objects)
    failed_jobs = sum(job.status == "FAILED" for job in result.video_jobs)
    timings = result.timings
    lines = [
        f"{plural(analysed, 'object')} analysed: {statuses.get('SUCCEEDED', 0)} SUCCEEDED, "
        f"{statuses.get('PARTIAL', 0)} PARTIAL, {statuses.get('FAILED', 0)} FAILED"
        + (f", {len(result.lost)} without a final status" if result.lost else "")
        + f"; {statuses.get('SKIPPED', 0)} skipped by ingest.",
        f"Video jobs: {len(result.video_jobs)} ({failed_jobs} failed, {len(result.lost_notices)} notices lost, "
        f"peak {result.peak_running_jobs} running); video slots still held: {len(result.slot_holders)}.",
        f"Wall time {timings.get('wall', 0):.1f} s (emulator start {timings.get('start', 0):.1f} s, "
        f"upload {timings.get('upload', 0):.1f} s, analysis {timings.get('analysis', 0):.1f} s).",
        f"{plural(result.copied, 'output')} copied to {result.out}; function logs in {result.log_path}. "
        "Analysis content is synthetic.",
    ]
    if result.report is not None:
        lines.append(f"HTML report: open {result.report.resolve().as_uri()}")
    console = stdout_console()
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for refusal in result.access_refusals:
        note(f"IAM refused: {refusal}")
    if result.access_refusals:
        note(f"{plural(len(result.access_refusals), 'distinct call')} refused by the stack's IAM policies, as AWS "
             "would refuse them: add the grant to the role (stack/) if the call is meant to happen")
    problems = statuses.get("FAILED", 0) + statuses.get("PARTIAL", 0)
    if problems:
        note(f"{plural(problems, 'object')} ended FAILED or PARTIAL (expected outcomes: bad files, injected faults); "
             "the table shows each error")


# --- up -----------------------------------------------------------------------------------------------
def do_up_cli(
    *,
    port: int = DEFAULT_PORT,
    seed: int = DEFAULT_SEED,
    throttle_rate: float = 0.0,
    failed_job_rate: float = 0.0,
    lost_notice_rate: float = 0.0,
    tps_quotas: tuple[str, ...] = (),
    job_seconds: str | tuple[float, float] = DEFAULT_JOB_SECONDS,
    settings_json: Path | None = None,
    cwd: Path | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the emulator on 127.0.0.1:``port`` until Ctrl-C (or ``stop`` is set).

    Parameters
    ----------
    port: int
        Loopback port (0: any free one).
    seed, throttle_rate, failed_job_rate, lost_notice_rate, tps_quotas, job_seconds, settings_json:
        As for :func:`do_run_cli`.
    cwd: Path | None
        Where ``.rekpipe/`` is written (the current directory by default).
    stop: threading.Event | None
        Set to stop serving (tests); Ctrl-C always stops.
    """
    import sys
    import threading

    from rekpipe.cli.console import note

    folder = cwd or Path.cwd()
    state_path = folder / EMULATOR_FILE
    _refuse_running_emulator(state_path)
    if port:
        _require_free_port(port)
    run_settings = _local_settings(settings_json, None)
    simulator = _simulator_config(seed=seed, throttle_rate=throttle_rate, failed_job_rate=failed_job_rate,
                                  lost_notice_rate=lost_notice_rate, tps_quotas=tps_quotas, job_seconds=job_seconds)
    note(f"Starting the emulator on 127.0.0.1:{port or '<free port>'} (synthesizing and deploying the stack)...")
    note(_describe_simulator(simulator))
    stop = stop or threading.Event()
    results = sys.stdout
    log_path = folder / UP_LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log, _function_output_to(log), _stop_on_signals(stop):
        from rekpipe.emulator.batch_operations import BatchOperationsService
        from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions, write_state_file

        # Before the server starts: moto fixes a service's routes when it first serves it.
        batch = BatchOperationsService().install()
        runtime = EmbeddedRuntime(RuntimeOptions(settings=run_settings, simulator=simulator, server=True, port=port))
        try:
            runtime.start()
            write_state_file(state_path, runtime)
            _print_up(runtime, results, state_path.relative_to(folder) if cwd is None else state_path,
                      log_path.relative_to(folder) if cwd is None else log_path)
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
            note("Stopping the emulator...")
        finally:
            _remove_state_file(state_path, runtime.endpoint_url)
            batch.uninstall()
            runtime.stop()
    note(f"Emulator stopped; removed {state_path}")


def _print_up(runtime: EmbeddedRuntime, stream: IO[str], state_path: Path, log_path: Path) -> None:
    """What to connect to and how: on the real stdout (function output goes to the log meanwhile)."""
    endpoint, region = runtime.endpoint_url, runtime.options.region
    keys = runtime.operator_credentials() if runtime.iam else {"aws_access_key_id": "rekpipe-local",
                                                                "aws_secret_access_key": "rekpipe-local"}
    key_id, secret = keys["aws_access_key_id"], keys["aws_secret_access_key"]
    outputs = runtime.outputs
    content, output = outputs.get("ContentBucketName", "<content bucket>"), outputs.get("OutputBucketName", "<output>")
    backfill_source = outputs.get("ExistingContentBucketName", content)
    width = max(len(name) for name in outputs) if outputs else 0
    lines = [
        "Rekognition pipeline emulator is running (analysis content is synthetic).",
        f"  Endpoint:     {endpoint}",
        f"  Region:       {region}",
        f"  Credentials:  AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} (the emulator's operator: "
        "every call is authorized against the stack's IAM policies; these keys work only here)",
        f"  Stack:        {runtime.stack.stack_name if runtime.stack else '?'} (state in {state_path})",
        "Resources (stack outputs):",
        *(f"  {name.ljust(width)}  {value}" for name, value in sorted(outputs.items())),
        "Try it:",
        f"  export AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION={region}",
        f"  aws --endpoint-url {endpoint} s3 cp photo.jpg s3://{content}/",
        "  rekpipe --local status",
        f"  aws --endpoint-url {endpoint} s3 ls s3://{output}/ --recursive",
        f"  rekpipe --local outputs s3://{content}/photo.jpg   # where its results are (run prefix, latest.json)",
        f"  rekpipe --local backfill --bucket {backfill_source} --yes   # objects already in S3 (Batch Operations)",
        f"Function logs: {log_path}. Press Ctrl-C to stop.",
    ]
    click.echo("\n".join(lines), file=stream)
    stream.flush()


def _refuse_running_emulator(state_path: Path) -> None:
    """One emulator per folder: a live one is an error, a stale file is replaced."""
    from rekpipe.cli.console import note
    from rekpipe.cli.stack import read_emulator_file

    if not state_path.exists():
        return
    try:
        endpoint = str(read_emulator_file(state_path.parent.parent)["endpoint_url"])
    except UserException:
        note(f"Replacing unreadable {state_path}")
        return
    if _answers(endpoint):
        raise UserException(f"An emulator is already running here at {endpoint} ({state_path}): use it with "
                            "--local, or stop it with Ctrl-C in its terminal first")
    note(f"Replacing {state_path}: the emulator it names ({endpoint}) is not running")


def _answers(endpoint: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1):
            return True
    except OSError:
        return False


def _require_free_port(port: int) -> None:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UserException(f"Port {port} on 127.0.0.1 is in use: pick another with --port (--port 0 picks a free "
                                "one)") from None


def _remove_state_file(state_path: Path, endpoint: str | None) -> None:
    """Remove the state file if it is still ours (another emulator may have replaced it)."""
    import json

    with contextlib.suppress(OSError, ValueError):
        if endpoint is None or json.loads(state_path.read_text(encoding="utf-8")).get("endpoint_url") == endpoint:
            state_path.unlink()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C (SIGINT) stop the emulator (only the main thread may install handlers).

    SIGINT gets a handler of its own: a process started with SIGINT ignored (from a script's ``&``, ``nohup``,
    or a test runner's worker) inherits that, and Python then raises no KeyboardInterrupt, so Ctrl-C did nothing.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


# --- shared helpers -----------------------------------------------------------------------------------
def _local_settings(settings_json: Path | None, settings: PipelineSettings | None) -> PipelineSettings:
    """The file's (or the default) settings, with short local video waits where the file left the default."""
    from rekpipe.cli.backfill import load_settings
    from rekpipe_shared.settings import PipelineSettings

    if settings is not None:
        return settings
    loaded = load_settings(settings_json)
    defaults = PipelineSettings()
    waits = {name: value for name, value in LOCAL_SETTINGS.items() if getattr(loaded, name) == getattr(defaults, name)}
    return dataclasses.replace(loaded, **waits)


def _simulator_config(*, seed: int, throttle_rate: float, failed_job_rate: float, lost_notice_rate: float,
                      tps_quotas: tuple[str, ...], job_seconds: str | tuple[float, float]) -> SimulatorConfig:
    from rekpipe.simulator import SimulatorConfig
    from rekpipe.simulator.config import default_tps_quotas

    quotas = {**default_tps_quotas(), **_parse_quotas(tps_quotas)}  # AWS's Get* quotas unless overridden
    duration = _parse_job_seconds(job_seconds)
    try:
        return SimulatorConfig(seed=seed, throttle_rate=throttle_rate, failed_job_rate=failed_job_rate,
                               lost_notice_rate=lost_notice_rate, tps_quotas=quotas, job_duration=duration)
    except ValueError as error:
        raise UserException(f"Invalid simulator option: {error}") from None


def _parse_quotas(values: tuple[str, ...]) -> dict[str, float]:
    import botocore.session

    known = set(botocore.session.get_session().get_service_model("rekognition").operation_names)
    quotas: dict[str, float] = {}
    for value in values:
        name, _, tps = value.partition("=")
        name = name.strip()
        try:
            rate = float(tps)
        except ValueError:
            rate = -1.0
        if name not in known or rate <= 0:
            hint = "" if name in known else f" ({name!r} is not a Rekognition operation, e.g. DetectLabels)"
            raise UserException(f"--tps-quota takes OPERATION=TPS with TPS > 0, like DetectLabels=50, not "
                                f"{value!r}{hint}")
        quotas[name] = rate
    return quotas


def _parse_job_seconds(value: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(value, tuple):
        return value
    try:
        low, high = (float(part) for part in value.split(","))
    except ValueError:
        raise UserException(f"--job-seconds takes MIN,MAX seconds like 2,5, not {value!r}") from None
    if not 0 <= low <= high:
        raise UserException(f"--job-seconds needs 0 <= MIN <= MAX, not {value!r}")
    return low, high


def _describe_simulator(config: SimulatorConfig) -> str:
    low, high = config.job_duration or (0, 0)
    quotas = ", ".join(f"{op}={tps:g}" for op, tps in sorted(config.tps_quotas.items())) or "none"
    return (f"Rekognition simulator: seed {config.seed}, video jobs {low:g}-{high:g} s, throttle rate "
            f"{config.throttle_rate:g}, failed job rate {config.failed_job_rate:g}, lost notice rate "
            f"{config.lost_notice_rate:g}, TPS quotas {quotas}")




def _point_handler(handler: Any, stream: IO[str]) -> Any:
    """``setStream`` that also works when the handler's current stream is already closed
    (an earlier run's captured stdout): that stream cannot be flushed, only replaced."""
    if getattr(handler.stream, "closed", False):
        previous, handler.stream = handler.stream, stream
        return previous
    return handler.setStream(stream)


@contextlib.contextmanager
def _function_output_to(stream: IO[str]) -> Iterator[None]:
    """Send what the functions print (Powertools logs and metrics go to stdout, as in Lambda), warnings and
    library log records to ``stream``, and silence the moto server's request log; restore everything afterwards.

    Powertools binds a service's log handler to ``sys.stdout`` once per process, so handlers that
    already exist (an earlier run in this process) are pointed at the stream as well.
    """
    import logging
    import sys

    original_stdout = sys.stdout
    moved: dict[logging.StreamHandler[Any], Any] = {}
    for handler in _powertools_handlers():
        moved[handler] = _point_handler(handler, stream)
    catch_all = logging.StreamHandler(stream)
    catch_all.setLevel(logging.WARNING)
    logging.root.addHandler(catch_all)
    logging.captureWarnings(True)
    werkzeug = logging.getLogger("werkzeug")  # the moto server's line per request
    werkzeug_level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        werkzeug.setLevel(werkzeug_level)
        logging.captureWarnings(False)
        logging.root.removeHandler(catch_all)
        for handler in _powertools_handlers():
            if handler.stream is stream:  # created during the run, or moved: never leave it on a closed file
                previous = moved.get(handler)
                _point_handler(handler, previous if previous is not None and not getattr(previous, "closed", False)
                               else original_stdout)


def _powertools_handlers() -> list[Any]:
    import logging

    handlers = []
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and getattr(logger, "powertools_handler", None):
            handlers.extend(h for h in logger.handlers if isinstance(h, logging.StreamHandler))
    return handlers


__all__ = ["LocalRunIncompleteError", "LocalRunResult", "ObjectOutcome", "do_run_cli", "do_up_cli", "local"]
