"""Typed pipeline settings: parsed once, validated once, shared by the stack and the functions.

The CDK app reads them from context (``cdk.json`` or ``-c key=value``) and stops synth on a bad
value; the stack hands the same settings to the functions as JSON in ``PIPELINE_SETTINGS``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rekpipe_shared.exceptions import SettingsError
from rekpipe_shared.operations import (
    CATALOGUE,
    IMAGE_OPERATIONS,
    REMOVED_OPERATIONS,
    SAMPLE_PREFIX_OPERATIONS,
    VIDEO_OPERATIONS,
)
from rekpipe_shared.schema import LOG_RETENTION_DAYS, PIPELINE_SETTINGS_ENV

_COLLECTION_ID = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
_PROJECT_VERSION_ARN = re.compile(
    r"^arn:aws(-[\w]+)*:rekognition:[a-z0-9-]+:\d{12}:project/[a-zA-Z0-9_.\-]{1,255}/version/"
    r"[a-zA-Z0-9_.\-]{1,255}/\d{13}$"
)


@dataclass(frozen=True)
class PipelineSettings:
    """Everything a deployment may tune. Defaults suit a new account's default Rekognition quotas.

    Parameters
    ----------
    image_operations: tuple[str, ...]
        Analyses run on every image unless a prefix in ``image_prefix_operations`` says otherwise.
    video_operations: tuple[str, ...]
        Analyses run on every video.
    image_prefix_operations: dict[str, tuple[str, ...]]
        Key prefix -> analyses, longest prefix wins. The string ``"sample"`` selects the original
        sample's folders (``labels/``, ``faces/``, ``text/``, ``moderation/``, ``celebrities/``).
    min_confidence: float
        Minimum confidence (0-100) passed to every API that takes one.
    max_labels: int
        MaxLabels for DetectLabels (1-1000).
    image_batch_size: int
        SQS messages per analyze_image invocation (1-10).
    image_max_concurrency: int
        Maximum concurrent analyze_image invocations (2-1000); with the batch size this sets the
        image call rate, so size it to the account's Rekognition TPS quota.
    image_tps_quota: float
        Caps the TPS of each image API below the account's quota (0, the default: no cap, run at the
        quota). The quota itself is read from Service Quotas at run time (``rekpipe_shared.quotas``);
        a cap above it is logged as a warning.
    quota_refresh_seconds: int
        How long a reading of the account's Rekognition quotas is kept before Service Quotas is asked
        again (30-86400; default 5 minutes): a raised quota takes effect within this, with no redeploy.
    video_slot_limit: int
        Caps the Rekognition stored-video jobs running at once below the account's quota (0, the default:
        no cap, run at the quota, 20 by default). The quota is read from Service Quotas at run time and
        the slot dispatcher's tick takes a changed one as its stored limit (``rekpipe slots --limit N``
        overrides it until the quota or this cap changes again).
    video_max_concurrency: int
        Operations of one video run in parallel by the Map (1-40).
    video_slot_wait_seconds: int
        Longest an admitted operation may wait for its slot (5-86400; default 1 day). With
        ``video_job_wait_seconds`` it sets RunJob's TimeoutSeconds, a backstop behind the slot
        dispatcher's heartbeats: waiting itself costs no transition however long it lasts.
    video_job_wait_seconds: int
        Longest a Rekognition job may run once started (10-86400; default 1 day). A lost notice is
        found by the dispatcher's tick (Get*), not by this timeout.
    video_job_limit_retry_seconds: int
        First pause of the slot grants when Start* meets LimitExceededException (another workload
        holds the account's job quota); doubles per refusal, at most 600 s (1-3600).
    video_slot_heartbeat_seconds: int
        RunJob's HeartbeatSeconds: how long a waiting or running operation trusts a silent slot dispatcher
        before it sends its ``want`` again (it keeps its place and its job). The dispatcher heartbeats every
        token at least every third of it (180-86400; default 15 minutes). A longer value only delays the
        recovery from a lost ``want``; it costs nothing while things work.
    video_get_tps_quota: float
        Caps the TPS of each video Get* API below the account's quota (0, the default: no cap, run at the
        quota: 20 in us-east-1, us-west-2 and eu-west-1, 5 in most other regions unless raised). The quota
        is read from Service Quotas at run time; every function that calls Get* shares it through the
        rate-limit table.
    video_get_retry_seconds: int
        First interval of the state machine's retry when Get* stays throttled or unavailable through a
        function's own retries (1-300; doubles per attempt, 8 attempts, at most 120 s apart, jittered).
    face_collection_id: str | None
        Rekognition collection for ``face_search``.
    custom_labels_project_version_arn: str | None
        Project version for ``custom_labels`` (must be running).
    log_retention_days: int
        CloudWatch Logs retention for every function and the state machine.
    output_retention_days: int
        Days before analysis outputs expire; 0 keeps them.
    stuck_pending_minutes, stuck_queued_minutes, stuck_in_progress_minutes: int
        How long a task may stay PENDING (routing takes seconds), QUEUED (waiting in its queue: raise
        it for a backfill that queues more than a day of images) or IN_PROGRESS (images; a video
        counts only once its execution is no longer running) before it is reported stuck and alarmed
        (1-43200).
    reuse_results: bool
        Reuse the stored result of an identical object (same bytes by S3 checksum, same operation and
        options) instead of calling Rekognition again (default on; ``rekpipe redrive --force`` analyses
        an object again anyway).
    """

    image_operations: tuple[str, ...] = ("labels", "moderation")
    video_operations: tuple[str, ...] = ("labels", "moderation")
    image_prefix_operations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    min_confidence: float = 70.0
    max_labels: int = 50
    image_batch_size: int = 10
    image_max_concurrency: int = 10
    image_tps_quota: float = 0.0
    quota_refresh_seconds: int = 300
    video_slot_limit: int = 0
    video_max_concurrency: int = 8
    video_slot_wait_seconds: int = 86400
    video_job_wait_seconds: int = 86400
    video_job_limit_retry_seconds: int = 30
    video_slot_heartbeat_seconds: int = 900
    video_get_tps_quota: float = 0.0
    video_get_retry_seconds: int = 5
    face_collection_id: str | None = None
    custom_labels_project_version_arn: str | None = None
    log_retention_days: int = 30
    output_retention_days: int = 0
    stuck_pending_minutes: int = 15
    stuck_queued_minutes: int = 1440
    stuck_in_progress_minutes: int = 60
    reuse_results: bool = True

    def __post_init__(self) -> None:
        _check_operations("image_operations", self.image_operations, IMAGE_OPERATIONS, allow_empty=True)
        _check_operations("video_operations", self.video_operations, VIDEO_OPERATIONS, allow_empty=True)
        for prefix, names in self.image_prefix_operations.items():
            if not prefix:
                raise SettingsError("image_prefix_operations", "prefixes must be non-empty")
            _check_operations(f"image_prefix_operations[{prefix!r}]", names, IMAGE_OPERATIONS, allow_empty=False)
        _check_range("min_confidence", self.min_confidence, 0, 100)
        _check_range("max_labels", self.max_labels, 1, 1000)
        _check_range("image_batch_size", self.image_batch_size, 1, 10)
        _check_range("image_max_concurrency", self.image_max_concurrency, 2, 1000)
        _check_range("image_tps_quota", self.image_tps_quota, 0, 10000)
        _check_range("quota_refresh_seconds", self.quota_refresh_seconds, 30, 86400)
        _check_range("video_slot_limit", self.video_slot_limit, 0, 1000)
        _check_range("video_max_concurrency", self.video_max_concurrency, 1, 40)
        _check_range("video_slot_wait_seconds", self.video_slot_wait_seconds, 5, 86400)
        _check_range("video_job_wait_seconds", self.video_job_wait_seconds, 10, 86400)
        _check_range("video_job_limit_retry_seconds", self.video_job_limit_retry_seconds, 1, 3600)
        _check_range("video_slot_heartbeat_seconds", self.video_slot_heartbeat_seconds, 180, 86400)
        _check_range("video_get_tps_quota", self.video_get_tps_quota, 0, 10000)
        _check_range("video_get_retry_seconds", self.video_get_retry_seconds, 1, 300)
        _check_range("output_retention_days", self.output_retention_days, 0, 36500)
        for name in ("stuck_pending_minutes", "stuck_queued_minutes", "stuck_in_progress_minutes"):
            _check_range(name, getattr(self, name), 1, 43200)
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise SettingsError("log_retention_days", f"must be one of {LOG_RETENTION_DAYS}",
                                self.log_retention_days)
        if self.face_collection_id is not None and not _COLLECTION_ID.match(self.face_collection_id):
            raise SettingsError("face_collection_id", "must be 1-255 characters of [a-zA-Z0-9_.-]",
                                self.face_collection_id)
        if self.custom_labels_project_version_arn is not None and not _PROJECT_VERSION_ARN.match(
            self.custom_labels_project_version_arn
        ):
            raise SettingsError("custom_labels_project_version_arn",
                                "must be a Rekognition project version ARN "
                                "(arn:aws:rekognition:<region>:<account>:project/<name>/version/<name>/<ms>)",
                                self.custom_labels_project_version_arn)
        requested = set(self.all_image_operations) | set(self.video_operations)
        if "face_search" in requested and not self.face_collection_id:
            raise SettingsError("face_collection_id", "is required when face_search is requested")
        if "custom_labels" in requested and not self.custom_labels_project_version_arn:
            raise SettingsError("custom_labels_project_version_arn", "is required when custom_labels is requested")

    @property
    def all_image_operations(self) -> tuple[str, ...]:
        """Every image analysis any prefix or the default may run (for IAM and cost)."""
        names = list(self.image_operations)
        for ops in self.image_prefix_operations.values():
            names.extend(op for op in ops if op not in names)
        return tuple(dict.fromkeys(names))

    @property
    def stuck_after_seconds(self) -> dict[str, int]:
        """Non-terminal status -> seconds after which a task in it counts as stuck."""
        return {"PENDING": self.stuck_pending_minutes * 60, "QUEUED": self.stuck_queued_minutes * 60,
                "IN_PROGRESS": self.stuck_in_progress_minutes * 60}

    def to_json(self) -> str:
        """Serialise for ``PIPELINE_SETTINGS``, sorted so the template is stable."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> PipelineSettings:
        """Build from loosely typed input (CDK context strings, JSON), naming any bad setting."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SettingsError(unknown[0], f"is not a setting; known settings: {', '.join(known)}")
        kwargs: dict[str, Any] = {}
        for name, raw in values.items():
            if raw is None:
                continue
            kwargs[name] = _coerce(name, known[name].type, raw)
        return cls(**kwargs)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> PipelineSettings:
        """Read the settings a function was deployed with; defaults when none were given."""
        raw = (environ if environ is not None else os.environ).get(PIPELINE_SETTINGS_ENV)
        return cls.from_mapping(json.loads(raw)) if raw else cls()


def _coerce(name: str, type_name: Any, raw: Any) -> Any:
    """Turn a context value (often a string from ``-c``) into the declared type."""
    type_text = str(type_name)
    try:
        if type_text.startswith("tuple"):
            items = _split(raw)
            return tuple(str(item) for item in items)
        if type_text.startswith("dict"):
            return _prefix_operations(raw)
        if type_text == "bool":
            return _boolean(raw)
        if type_text == "float":
            if isinstance(raw, bool):
                raise TypeError
            return float(raw)
        if type_text == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise TypeError
            return int(raw)
        if type_text.startswith("str"):
            return str(raw) if raw != "" else None
    except (TypeError, ValueError, json.JSONDecodeError):
        raise SettingsError(name, f"must be of type {type_text}", raw) from None
    return raw


def _boolean(raw: Any) -> bool:
    """``true``/``false`` from JSON, or the strings ``-c name=true`` gives."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise TypeError


def _split(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            return list(json.loads(text))
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(raw, list | tuple):
        return list(raw)
    raise TypeError


def _prefix_operations(raw: Any) -> dict[str, tuple[str, ...]]:
    if raw == "sample":
        return dict(SAMPLE_PREFIX_OPERATIONS)
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip() else {}
    if not isinstance(raw, dict):
        raise TypeError
    return {str(prefix): tuple(_split(names)) for prefix, names in raw.items()}


def _check_operations(name: str, values: tuple[str, ...], allowed: tuple[str, ...], *, allow_empty: bool) -> None:
    if not allow_empty and not values:
        raise SettingsError(name, "must name at least one operation")
    for value in values:
        if value in REMOVED_OPERATIONS:
            raise SettingsError(name, f"{value!r} is no longer available: {REMOVED_OPERATIONS[value]}", value)
        if value not in allowed:
            kind = "known" if value not in CATALOGUE else "available for this media type"
            raise SettingsError(name, f"{value!r} is not {kind}; allowed: {', '.join(allowed)}", value)
    if len(set(values)) != len(values):
        raise SettingsError(name, "lists an operation twice", values)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SettingsError(name, f"must be a number from {low} to {high}", value)
