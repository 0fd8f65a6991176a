"""Knobs of the Rekognition simulator: quotas, job timing and fault injection."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

THROTTLE_ERRORS = ("ThrottlingException", "ProvisionedThroughputExceededException")

# Service limits that are not quotas (they cannot be raised in a real account).
MAX_IMAGE_BYTES_S3 = 15 * 1024 * 1024
MAX_IMAGE_BYTES_INLINE = 5 * 1024 * 1024
MAX_VIDEO_BYTES = 10 * 1024**3


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a fraction between 0.0 and 1.0, got {value!r}")
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _id_set(name: str, value: Any) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be None or a set of strings, got {value!r}")
    return set(value)


def _check_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"seed must be an int, got {value!r}")
    return value


def _check_clock_scale(value: Any) -> float:
    scale = _non_negative("clock_scale", value)
    if scale == 0:
        raise ValueError("clock_scale must be > 0; pass SimClock(scale=0) as `clock` for a frozen clock")
    return scale


GET_OPERATIONS = (
    "GetLabelDetection", "GetFaceDetection", "GetContentModeration", "GetTextDetection",
    "GetCelebrityRecognition", "GetSegmentDetection", "GetFaceSearch", "GetPersonTracking",
)
DEFAULT_GET_TPS = 20.0
"""AWS General Reference, "Amazon Rekognition endpoints and quotas": each stored-video Get* API has a
default quota of 20 TPS in US East (N. Virginia), US West (Oregon) and Europe (Ireland), 5 in most other
regions. The simulator plays us-east-1 by default."""


def default_tps_quotas() -> dict[str, float]:
    """The quotas a new SimulatorConfig enforces: every Get* API at 20 TPS (image APIs are unlimited
    unless a test or bench sets them)."""
    return dict.fromkeys(GET_OPERATIONS, DEFAULT_GET_TPS)


def _check_rates(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"throttle_rates must be a dict of operation name -> fraction, got {value!r}")
    for op, rate in value.items():
        if not isinstance(op, str):
            raise ValueError(f"throttle_rates keys must be operation names, got {op!r}")
        _rate(f"throttle_rates[{op!r}]", rate)
    return value


def _check_quotas(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"tps_quotas must be a dict of operation name -> TPS, got {value!r}")
    for op, tps in value.items():
        if not isinstance(op, str) or isinstance(tps, bool) or not isinstance(tps, int | float) or not tps > 0:
            raise ValueError(f"tps_quotas[{op!r}] must be a number > 0, got {tps!r}")
    # Keep the caller's dict (not a copy) so in-place edits such as quotas["DetectLabels"] = 5 apply.
    return value


def _check_throttle_error(value: Any) -> str:
    if value not in THROTTLE_ERRORS:
        raise ValueError(f"throttle_error must be one of {THROTTLE_ERRORS}, got {value!r}")
    return value


def _check_job_duration(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"job_duration must be None or a (min, max) pair of simulated seconds, got {value!r}")
    low = _non_negative("job_duration[0]", value[0])
    high = _non_negative("job_duration[1]", value[1])
    if low > high:
        raise ValueError(f"job_duration min {low} is greater than max {high}")
    return (low, high)


_CHECKS: dict[str, Any] = {
    "seed": _check_seed,
    "clock_scale": _check_clock_scale,
    "tps_quotas": _check_quotas,
    "throttle_error": _check_throttle_error,
    "throttle_rate": lambda v: _rate("throttle_rate", v),
    "throttle_rates": _check_rates,
    "max_concurrent_jobs": lambda v: _count("max_concurrent_jobs", v),
    "job_duration": _check_job_duration,
    "failed_job_rate": lambda v: _rate("failed_job_rate", v),
    "lost_notice_rate": lambda v: _rate("lost_notice_rate", v),
    "latency": lambda v: _non_negative("latency", v),
    "video_result_items": lambda v: _count("video_result_items", v),
    "collections": lambda v: _id_set("collections", v),
    "project_versions": lambda v: _id_set("project_versions", v),
    "max_video_bytes": lambda v: _count("max_video_bytes", v),
}


@dataclass
class SimulatorConfig:
    """Behaviour of a `RekognitionSimulator`; every field may be changed while it runs.

    Assignments are validated (``sim.config.failed_job_rate = 2`` raises ValueError), and the
    simulator reads the config on every call, so a test can flip faults mid-run.

    Parameters
    ----------
    seed: int
        Seeds every random draw, so two runs with the same seed and the same calls agree.
    clock_scale: float
        Simulated seconds per real second; job durations and TPS windows are simulated time.
    tps_quotas: dict[str, float]
        Per-operation transactions per (simulated) second, e.g. ``{"DetectLabels": 50}``; calls
        above it get `throttle_error`. Operations not listed are unlimited. Default: every Get* API
        at 20 TPS, as in us-east-1 (`default_tps_quotas`); pass ``{}`` for none.
    throttle_error: str
        ``ThrottlingException`` or ``ProvisionedThroughputExceededException``.
    throttle_rate: float
        Fraction of all calls throttled at random, on top of the quotas (fault injection).
    throttle_rates: dict[str, float]
        Per-operation fraction throttled at random, e.g. ``{"GetLabelDetection": 0.5}`` (on top of
        `throttle_rate` and the quotas); a test sets it for a while and clears it.
    max_concurrent_jobs: int
        Stored-video jobs IN_PROGRESS at once; one more Start* gets LimitExceededException.
    job_duration: tuple[float, float] | None
        Uniform (min, max) simulated seconds per video job; None leaves jobs running until a test
        calls ``sim.complete_job``.
    failed_job_rate: float
        Fraction of video jobs that end FAILED.
    lost_notice_rate: float
        Fraction of job completions whose SNS notice is never published (Get* still reports it).
    latency: float
        Real seconds added to every call.
    video_result_items: int
        Result items each video job produces, so tests can force pagination.
    collections: set[str] | None
        Face collection ids that exist; None means every id exists.
    project_versions: set[str] | None
        Custom Labels ProjectVersionArns that exist; None means every ARN exists.
    max_video_bytes: int
        Stored-video size limit (10 GiB like the service); lower it to test VideoTooLargeException
        without a 10 GiB object.
    """

    seed: int = 0
    clock_scale: float = 1.0
    tps_quotas: dict[str, float] = field(default_factory=default_tps_quotas)
    throttle_error: str = "ThrottlingException"
    throttle_rate: float = 0.0
    throttle_rates: dict[str, float] = field(default_factory=dict)
    max_concurrent_jobs: int = 20
    job_duration: tuple[float, float] | None = (2.0, 2.0)
    failed_job_rate: float = 0.0
    lost_notice_rate: float = 0.0
    latency: float = 0.0
    video_result_items: int = 25
    collections: set[str] | None = None
    project_versions: set[str] | None = None
    max_video_bytes: int = MAX_VIDEO_BYTES

    def __post_init__(self) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name))

    def __setattr__(self, name: str, value: Any) -> None:
        check = _CHECKS.get(name)
        object.__setattr__(self, name, check(value) if check else value)
