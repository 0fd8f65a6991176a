"""What ``rekpipe local run`` and ``local up`` are asked to do: their defaults and their options as plain data.

The click commands (:mod:`rekpipe.cli.local.command`) only fill these in; the sessions
(:mod:`rekpipe.cli.local.session`, :mod:`rekpipe.cli.local.up`) act on them, and tests and scripts build
them directly, setting the fields no command line offers (``settings``, ``schedule_seconds``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rekpipe.cli.exceptions import UserException

if TYPE_CHECKING:
    import threading

    from rekpipe.simulator import SimulatorConfig
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


@dataclass(frozen=True)
class EmulatorOptions:
    """What ``run`` and ``up`` share: the Rekognition simulator's knobs and the pipeline settings file, as typed.

    Parameters
    ----------
    seed, throttle_rate, failed_job_rate, lost_notice_rate:
        The simulator's seed and fault rates.
    tps_quotas: tuple[str, ...]
        Rekognition TPS quotas as ``OPERATION=TPS`` strings (AWS's Get* quotas unless overridden).
    job_seconds: str | tuple[float, float]
        How long a simulated video job runs: ``"MIN,MAX"`` or a pair.
    settings_json: Path | None
        Pipeline settings (a JSON object, or cdk.json); the defaults otherwise.
    """

    seed: int = DEFAULT_SEED
    throttle_rate: float = 0.0
    failed_job_rate: float = 0.0
    lost_notice_rate: float = 0.0
    tps_quotas: tuple[str, ...] = ()
    job_seconds: str | tuple[float, float] = DEFAULT_JOB_SECONDS
    settings_json: Path | None = None

    def simulator_config(self) -> SimulatorConfig:
        """The simulator's configuration; a bad knob is a one-line :class:`UserException`."""
        from rekpipe.simulator import SimulatorConfig
        from rekpipe.simulator.config import default_tps_quotas

        quotas = {**default_tps_quotas(), **_parse_quotas(self.tps_quotas)}  # AWS's Get* quotas unless overridden
        duration = _parse_job_seconds(self.job_seconds)
        try:
            return SimulatorConfig(seed=self.seed, throttle_rate=self.throttle_rate,
                                   failed_job_rate=self.failed_job_rate, lost_notice_rate=self.lost_notice_rate,
                                   tps_quotas=quotas, job_duration=duration)
        except ValueError as error:
            raise UserException(f"Invalid simulator option: {error}") from None

    def pipeline_settings(self) -> PipelineSettings:
        """The file's (or the default) settings, with short local video waits where the file left the default."""
        from rekpipe.cli.backfill import load_settings
        from rekpipe_shared.settings import PipelineSettings

        loaded = load_settings(self.settings_json)
        defaults = PipelineSettings()
        waits = {name: value for name, value in LOCAL_SETTINGS.items()
                 if getattr(loaded, name) == getattr(defaults, name)}
        return dataclasses.replace(loaded, **waits)


@dataclass(frozen=True)
class LocalRunOptions:
    """One ``rekpipe local run``.

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
    emulator: EmulatorOptions
        The simulator's knobs and the settings file.
    settings: PipelineSettings | None
        (tests) These settings instead of ``emulator.settings_json``'s, used as they are.
    schedule_seconds: float | None
        (tests) Fire the stack's schedules this often instead of at their own rate (the slot tick: 1 minute),
        so a test of lost notices need not wait a minute for the tick's Get*.
    """

    folder: Path | None = None
    images: int | None = None
    videos: int | None = None
    out: Path = DEFAULT_OUT
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    server: bool = False
    report: bool = True
    emulator: EmulatorOptions = field(default_factory=EmulatorOptions)
    settings: PipelineSettings | None = None
    schedule_seconds: float | None = None

    def pipeline_settings(self) -> PipelineSettings:
        return self.settings if self.settings is not None else self.emulator.pipeline_settings()


@dataclass(frozen=True)
class LocalUpOptions:
    """One ``rekpipe local up``.

    Parameters
    ----------
    port: int
        Loopback port (0: any free one).
    emulator: EmulatorOptions
        The simulator's knobs and the settings file.
    cwd: Path | None
        (tests) Where ``.rekpipe/`` is written (the current directory by default).
    stop: threading.Event | None
        (tests) Set to stop serving; Ctrl-C and SIGTERM always stop.
    """

    port: int = DEFAULT_PORT
    emulator: EmulatorOptions = field(default_factory=EmulatorOptions)
    cwd: Path | None = None
    stop: threading.Event | None = None


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


__all__ = ["DEFAULT_IMAGES", "DEFAULT_JOB_SECONDS", "DEFAULT_OUT", "DEFAULT_PORT", "DEFAULT_SEED",
           "DEFAULT_TIMEOUT_SECONDS", "DEFAULT_VIDEOS", "LOCAL_SETTINGS", "EmulatorOptions", "LocalRunOptions",
           "LocalUpOptions"]
