"""Stored-video job records and the per-API facts (result key, sort orders) the Get* calls need."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _content
from .exceptions import RekognitionServiceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._media import S3Location

IN_PROGRESS = "IN_PROGRESS"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
RESULT_RETENTION = 7 * 24 * 3600.0  # results and ClientRequestTokens live 7 days
TOKEN_LIFETIME = 24 * 3600.0  # pagination tokens live 24 hours
MAX_RESULTS = 1000


def _by_timestamp(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item["Timestamp"],)


@dataclass(frozen=True)
class VideoApi:
    """How one Start*/Get* pair shapes its results.

    Parameters
    ----------
    start, get: str
        Operation names.
    items_key: str
        Response member holding the result items.
    model_version_key: str | None
        Response member for the model version, with `model_version` as its value.
    sort_keys: dict
        ``SortBy`` value -> item sort key; the first one is the default.
    aggregates: bool
        Whether the Get* accepts ``AggregateBy`` (and returns ``GetRequestMetadata``).
    """

    start: str
    get: str
    items_key: str
    model_version_key: str | None = None
    model_version: str = ""
    sort_keys: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = field(default_factory=dict)
    aggregates: bool = False


VIDEO_APIS: dict[str, VideoApi] = {
    api.start: api
    for api in (
        VideoApi(
            "StartLabelDetection",
            "GetLabelDetection",
            "Labels",
            "LabelModelVersion",
            _content.LABEL_MODEL_VERSION,
            {"TIMESTAMP": _by_timestamp, "NAME": lambda i: (i["Label"]["Name"], i["Timestamp"])},
            True,
        ),
        VideoApi("StartFaceDetection", "GetFaceDetection", "Faces"),
        VideoApi(
            "StartContentModeration",
            "GetContentModeration",
            "ModerationLabels",
            "ModerationModelVersion",
            _content.MODERATION_MODEL_VERSION,
            {"TIMESTAMP": _by_timestamp, "NAME": lambda i: (i["ModerationLabel"]["Name"], i["Timestamp"])},
            True,
        ),
        VideoApi(
            "StartTextDetection", "GetTextDetection", "TextDetections", "TextModelVersion", _content.TEXT_MODEL_VERSION
        ),
        VideoApi(
            "StartCelebrityRecognition",
            "GetCelebrityRecognition",
            "Celebrities",
            None,
            "",
            {"TIMESTAMP": _by_timestamp, "ID": lambda i: (i["Celebrity"]["Id"], i["Timestamp"])},
        ),
        VideoApi(
            "StartPersonTracking",
            "GetPersonTracking",
            "Persons",
            None,
            "",
            {"TIMESTAMP": _by_timestamp, "INDEX": lambda i: (i["Person"]["Index"], i["Timestamp"])},
        ),
        VideoApi("StartSegmentDetection", "GetSegmentDetection", "Segments"),
        VideoApi(
            "StartFaceSearch",
            "GetFaceSearch",
            "Persons",
            None,
            "",
            {"TIMESTAMP": _by_timestamp, "INDEX": lambda i: (i["Person"]["Index"], i["Timestamp"])},
        ),
    )
}
GET_TO_START = {api.get: api.start for api in VIDEO_APIS.values()}


@dataclass
class VideoJob:
    """A stored-video job as the simulator tracks it (times are simulated epoch seconds).

    Parameters
    ----------
    job_id: str
        64 hex characters, like the service's.
    operation: str
        The Start* operation (also the notice's ``API``).
    location: S3Location
        The video.
    params: dict
        The Start* request as received.
    created_at: float
        When Start* accepted it.
    duration: float | None
        Simulated seconds it runs; None waits for ``complete_job``.
    playable: bool
        Whether the object looked like MP4/MOV; if not the job ends FAILED.
    video_digest: str
        Identity of the video (keys the synthetic results, so re-analysis agrees).
    item_count: int
        Result items it will produce (``video_result_items`` at start).
    fail_draw, lost_draw: float
        Pre-drawn uniforms compared with the *current* failure/lost-notice rates at completion,
        so flipping a rate mid-run affects jobs already running, deterministically.
    """

    job_id: str
    operation: str
    location: S3Location
    params: dict[str, Any]
    created_at: float
    duration: float | None
    playable: bool
    video_digest: str
    item_count: int
    fail_draw: float
    lost_draw: float
    status: str = IN_PROGRESS
    status_message: str | None = None
    completed_at: float | None = None
    notice_status: str | None = None
    notice_lost: bool = False
    notices_published: int = 0
    _items: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def job_tag(self) -> str | None:
        """The caller's ``JobTag``."""
        return self.params.get("JobTag")

    @property
    def client_request_token(self) -> str | None:
        """The caller's ``ClientRequestToken``."""
        return self.params.get("ClientRequestToken")

    @property
    def notification_channel(self) -> dict[str, str] | None:
        """``{"SNSTopicArn", "RoleArn"}`` or None."""
        return self.params.get("NotificationChannel")

    @property
    def due_at(self) -> float | None:
        """When the scheduler completes it; None for manual completion."""
        return None if self.duration is None else self.created_at + self.duration

    @property
    def api(self) -> VideoApi:
        """Facts about its Start*/Get* pair."""
        return VIDEO_APIS[self.operation]

    def metadata(self) -> dict[str, Any]:
        """``VideoMetadata`` of its video."""
        return _content.video_metadata(self.video_digest, self.item_count)

    def items(self, seed: int) -> list[dict[str, Any]]:
        """Result items sorted by time; generated once, then cached."""
        if self._items is None:
            rng = _content.seeded(seed, self.operation, self.video_digest, self.item_count, _params_key(self.params))
            self._items = _content.video_items(self.operation, rng, self.item_count, self.metadata(), self.params)
        return self._items

    def notice(self, timestamp_ms: int) -> dict[str, Any]:
        """The completion notice Rekognition publishes to the job's SNS topic."""
        message: dict[str, Any] = {
            "JobId": self.job_id,
            "Status": self.notice_status or self.status,
            "API": self.operation,
        }
        if self.job_tag is not None:
            message["JobTag"] = self.job_tag
        message["Timestamp"] = timestamp_ms
        message["Video"] = {"S3ObjectName": self.location.name, "S3Bucket": self.location.bucket}
        return message


def _params_key(params: dict[str, Any]) -> str:
    """The Start* options that change results (not tags, tokens or channels)."""
    keys = ("FaceAttributes", "SegmentTypes", "CollectionId", "FaceMatchThreshold", "MinConfidence", "Filters")
    return repr([(key, params.get(key)) for key in keys])


def fingerprint(params: dict[str, Any]) -> str:
    """Digest of a Start* request minus its ClientRequestToken, to spot token reuse with new parameters."""
    body = repr(sorted((k, repr(v)) for k, v in params.items() if k != "ClientRequestToken"))
    return hashlib.sha256(body.encode()).hexdigest()


class PaginationTokens:
    """Opaque, signed NextTokens bound to one job, expiring after 24 simulated hours."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def _sign(self, job_id: str, offset: int, issued: int) -> str:
        return hmac.new(self._secret, f"{job_id}|{offset}|{issued}".encode(), hashlib.sha256).hexdigest()[:24]

    def encode(self, job_id: str, offset: int, now: float) -> str:
        """A token resuming ``job_id``'s results at ``offset``."""
        issued = int(now)
        raw = f"{offset}:{issued}:{self._sign(job_id, offset, issued)}"
        return base64.urlsafe_b64encode(raw.encode()).decode()

    def decode(self, job_id: str, token: str, now: float) -> int:
        """The offset in ``token``; InvalidPaginationTokenException if forged, foreign or expired."""
        try:
            offset_text, issued_text, signature = base64.urlsafe_b64decode(token.encode()).decode().split(":")
            offset, issued = int(offset_text), int(issued_text)
        except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
            raise _invalid_token() from exc
        if not hmac.compare_digest(signature, self._sign(job_id, offset, issued)) or offset < 0:
            raise _invalid_token()
        if now - issued > TOKEN_LIFETIME:
            raise _invalid_token()
        return offset


def _invalid_token() -> RekognitionServiceError:
    return RekognitionServiceError("InvalidPaginationTokenException", "Invalid Token")


def arrange(
    api: VideoApi, items: list[dict[str, Any]], sort_by: str | None, aggregate_by: str | None
) -> list[dict[str, Any]]:
    """Apply ``SortBy``/``AggregateBy`` (minimal SEGMENTS: each item gets a start/end/duration)."""
    if sort_by and sort_by in api.sort_keys and sort_by != next(iter(api.sort_keys)):
        items = sorted(items, key=api.sort_keys[sort_by])
    if api.aggregates and aggregate_by == "SEGMENTS":
        items = [
            {
                **item,
                "StartTimestampMillis": item["Timestamp"],
                "EndTimestampMillis": item["Timestamp"] + 1000,
                "DurationMillis": 1000,
            }
            for item in items
        ]
    return items
