"""The ``rekpipe local`` group and its ``run`` and ``up`` commands: the click surface only.

Each command turns its options into :mod:`rekpipe.cli.local.options` data and hands it to its session
(:func:`rekpipe.cli.local.session.run_local`, :func:`rekpipe.cli.local.up.serve_local`), imported
when the command runs, so ``rekpipe --help`` loads none of the emulator.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rekpipe.cli.local.options import (
    DEFAULT_IMAGES,
    DEFAULT_JOB_SECONDS,
    DEFAULT_OUT,
    DEFAULT_PORT,
    DEFAULT_SEED,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_VIDEOS,
    EmulatorOptions,
    LocalRunOptions,
    LocalUpOptions,
)

if TYPE_CHECKING:
    from collections.abc import Callable


@click.group("local")
def local() -> None:
    """Run the pipeline locally on the embedded emulator (no AWS account needed).

    Everything AWS would run - S3, DynamoDB, SQS, SNS, Step Functions, Lambda - is emulated by moto
    with the stack deployed from this project's CDK app, the real Lambda handlers run in-process,
    and a simulator plays Amazon Rekognition. Analysis content is synthetic.
    """


def _emulator_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The Rekognition simulator's knobs and the settings file, shared by ``run`` and ``up``.

    The command receives them as one :class:`EmulatorOptions`, ``emulator``.
    """
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
    names = [field.name for field in dataclasses.fields(EmulatorOptions)]

    @functools.wraps(command)
    def with_emulator_options(**kwargs: Any) -> Any:
        emulator = EmulatorOptions(**{name: kwargs.pop(name) for name in names})
        return command(emulator=emulator, **kwargs)

    for option in reversed(options):
        with_emulator_options = option(with_emulator_options)
    return with_emulator_options


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
@_emulator_options
def run_cli(folder: Path | None, images: int | None, videos: int | None, out: Path, timeout: float, server: bool,
            report: bool, emulator: EmulatorOptions) -> None:
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
    from rekpipe.cli.local.session import run_local

    run_local(LocalRunOptions(folder=folder, images=images, videos=videos, out=out, timeout=timeout, server=server,
                              report=report, emulator=emulator))


@local.command("up", short_help="Serve the emulator on loopback until Ctrl-C (for the AWS CLI and --local).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Loopback port to serve on (0 picks a free one).")
@_emulator_options
def up_cli(port: int, emulator: EmulatorOptions) -> None:
    """Serve the pipeline's emulator on 127.0.0.1 until Ctrl-C.

    Upload with any AWS client pointed at the endpoint (fake credentials are accepted) and watch
    results with `rekpipe --local status`. `rekpipe --local backfill` works too: the emulator runs
    S3 Batch Operations jobs itself. The endpoint is written to .rekpipe/emulator.json in this folder
    (read by --local) and removed on exit; function logs go to .rekpipe/functions.log.

    Analysis content is SYNTHETIC: the Rekognition simulator invents labels, faces and text and never
    looks at pixels; behaviour (errors, throttling, video jobs, notices) follows the service.
    """
    from rekpipe.cli.local.up import serve_local

    serve_local(LocalUpOptions(port=port, emulator=emulator))


__all__ = ["local", "run_cli", "up_cli"]
