"""The Rekognition operation catalogue: the one place that knows each analysis.

For every analysis it records the synchronous image API, or the Start/Get pair for stored video,
how the request is built, how video results page, and which errors are permanent. The stack
derives IAM actions from it, the handlers derive requests from it, and the CLI derives prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from rekpipe_shared.settings import PipelineSettings

VIDEO_MAX_RESULTS = 1000
"""The largest page Rekognition's Get* APIs return."""

RETRYABLE_ERRORS = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"})
THROTTLING_ERRORS = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})
OBJECT_ERRORS = frozenset(
    {
        "InvalidImageFormatException",
        "ImageTooLargeException",
        "VideoTooLargeException",
        "InvalidS3ObjectException",
        "AccessDeniedException",
    }
)
"""Errors about the object itself: every other operation on it would fail the same way."""
PERMANENT_ERRORS = OBJECT_ERRORS | frozenset({"InvalidParameterException", "ResourceNotFoundException"})
NO_FACES_MESSAGE_MARKER = "no faces"
"""SearchFacesByImage answers a face-less image with InvalidParameterException "There are no faces in
the image. Should be at least 1." (API reference: "If no faces are detected in the input image,
SearchFacesByImage returns an InvalidParameterException error"); the message is what tells it from a
real bad parameter, such as an image below the minimum dimensions."""
JOB_LIMIT_ERROR = "LimitExceededException"
"""The account's concurrent stored-video job quota is used up (possibly by another workload)."""


@dataclass(frozen=True)
class Operation:
    """One Rekognition analysis and everything the pipeline needs to know about it.

    Parameters
    ----------
    name: str
        The setting's name for it (``labels``, ``faces``, ...).
    image_api: str | None
        The synchronous image API, or None when it has no image form.
    video_start_api, video_get_api: str | None
        The stored-video Start*/Get* pair, or None when it has no video form.
    video_result_key: str | None
        The list in a Get* response that holds the results, which is what pages.
    requires: str | None
        ``collection`` or ``project_version`` when a setting must be given to use it.
    image_price, video_price_per_minute: float
        us-east-1 list prices in USD: per image (first tier), and per minute of stored video.
    """

    name: str
    image_api: str | None
    video_start_api: str | None
    video_get_api: str | None
    video_result_key: str | None
    requires: str | None = None
    image_price: float = 0.001
    video_price_per_minute: float = 0.10

    def result_for_error(self, code: str, message: str) -> dict[str, Any] | None:
        """The result an image error stands for, or None when it is an error.

        Only one: SearchFacesByImage on an image with no face is a search with no matches, so it is
        recorded as SUCCEEDED with an empty ``FaceMatches`` (never re-run or billed again by redrive).
        """
        if (self.image_api == "SearchFacesByImage" and code == "InvalidParameterException"
                and NO_FACES_MESSAGE_MARKER in message.lower()):
            return {"FaceMatches": [], "SearchedFaceBoundingBox": None, "SearchedFaceConfidence": None,
                    "NoFaceInImage": True, "RekognitionMessage": message}
        return None

    def image_request(self, bucket: str, key: str, version_id: str | None, settings: PipelineSettings) -> dict[str, Any]:
        """Build the synchronous request for an image stored in S3."""
        if not self.image_api:
            raise ValueError(f"operation {self.name!r} has no image API")
        s3_object: dict[str, str] = {"Bucket": bucket, "Name": key}
        if version_id:
            s3_object["Version"] = version_id
        request: dict[str, Any] = {"Image": {"S3Object": s3_object}}
        request.update(_IMAGE_OPTIONS[self.name](settings))
        return request

    def video_start_request(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        *,
        settings: PipelineSettings,
        job_tag: str,
        client_request_token: str,
        topic_arn: str,
        role_arn: str,
    ) -> dict[str, Any]:
        """Build the Start* request: notified through the stack's topic, idempotent by token."""
        if not self.video_start_api:
            raise ValueError(f"operation {self.name!r} has no video API")
        s3_object: dict[str, str] = {"Bucket": bucket, "Name": key}
        if version_id:
            s3_object["Version"] = version_id
        request: dict[str, Any] = {
            "Video": {"S3Object": s3_object},
            "ClientRequestToken": client_request_token,
            "JobTag": job_tag,
            "NotificationChannel": {"SNSTopicArn": topic_arn, "RoleArn": role_arn},
        }
        request.update(_VIDEO_OPTIONS[self.name](settings))
        return request

    def video_get_request(self, job_id: str, next_token: str | None = None) -> dict[str, Any]:
        """Build one page's Get* request (largest page, resumable by token)."""
        request: dict[str, Any] = {"JobId": job_id, "MaxResults": VIDEO_MAX_RESULTS}
        if next_token:
            request["NextToken"] = next_token
        if self.name == "labels":
            request["SortBy"] = "TIMESTAMP"
        return request


def _no_options(_: PipelineSettings) -> dict[str, Any]:
    return {}


_IMAGE_OPTIONS = {
    "labels": lambda s: {"MaxLabels": s.max_labels, "MinConfidence": s.min_confidence},
    "faces": lambda s: {"Attributes": ["ALL"]},
    "moderation": lambda s: {"MinConfidence": s.min_confidence},
    "text": lambda s: {"Filters": {"WordFilter": {"MinConfidence": s.min_confidence}}},
    "celebrities": _no_options,
    "ppe": lambda s: {
        "SummarizationAttributes": {
            "MinConfidence": s.min_confidence,
            "RequiredEquipmentTypes": ["FACE_COVER", "HAND_COVER", "HEAD_COVER"],
        }
    },
    "face_search": lambda s: {
        "CollectionId": s.face_collection_id,
        "FaceMatchThreshold": s.min_confidence,
        "MaxFaces": 10,
    },
    "custom_labels": lambda s: {
        "ProjectVersionArn": s.custom_labels_project_version_arn,
        "MinConfidence": s.min_confidence,
    },
}

_VIDEO_OPTIONS = {
    "labels": lambda s: {"MinConfidence": s.min_confidence},
    "faces": lambda s: {"FaceAttributes": "ALL"},
    "moderation": lambda s: {"MinConfidence": s.min_confidence},
    "text": lambda s: {"Filters": {"WordFilter": {"MinConfidence": s.min_confidence}}},
    "celebrities": _no_options,
    "segments": lambda s: {
        "SegmentTypes": ["SHOT", "TECHNICAL_CUE"],
        "Filters": {
            "TechnicalCueFilter": {"MinSegmentConfidence": max(s.min_confidence, 50.0)},
            "ShotFilter": {"MinSegmentConfidence": max(s.min_confidence, 50.0)},
        },
    },
    "face_search": lambda s: {"CollectionId": s.face_collection_id, "FaceMatchThreshold": s.min_confidence},
}

CATALOGUE: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("labels", "DetectLabels", "StartLabelDetection", "GetLabelDetection", "Labels"),
        Operation("faces", "DetectFaces", "StartFaceDetection", "GetFaceDetection", "Faces"),
        Operation("moderation", "DetectModerationLabels", "StartContentModeration", "GetContentModeration",
                  "ModerationLabels"),
        Operation("text", "DetectText", "StartTextDetection", "GetTextDetection", "TextDetections"),
        Operation("celebrities", "RecognizeCelebrities", "StartCelebrityRecognition", "GetCelebrityRecognition",
                  "Celebrities"),
        Operation("ppe", "DetectProtectiveEquipment", None, None, None),
        Operation("segments", None, "StartSegmentDetection", "GetSegmentDetection", "Segments",
                  video_price_per_minute=0.05),
        Operation("face_search", "SearchFacesByImage", "StartFaceSearch", "GetFaceSearch", "Persons",
                  requires="collection"),
        Operation("custom_labels", "DetectCustomLabels", None, None, None, requires="project_version",
                  image_price=0.004),
    )
}
"""Every analysis the pipeline can run, by setting name."""

REMOVED_OPERATIONS: dict[str, str] = {
    "person_tracking": (
        "AWS discontinued Rekognition People Pathing (StartPersonTracking/GetPersonTracking) on 2025-10-31, so "
        "every call would fail (Rekognition Developer Guide, 'People pathing'); use 'labels' "
        "(StartLabelDetection returns Person labels with a bounding box per timestamp) or 'faces' "
        "(StartFaceDetection) instead"
    ),
}
"""Operations the service no longer offers, and what to use instead (named by the settings' error)."""

IMAGE_OPERATIONS = tuple(name for name, op in CATALOGUE.items() if op.image_api)
VIDEO_OPERATIONS = tuple(name for name, op in CATALOGUE.items() if op.video_start_api)

SAMPLE_PREFIX_OPERATIONS: dict[str, tuple[str, ...]] = {
    "labels/": ("labels",),
    "faces/": ("faces",),
    "text/": ("text",),
    "moderation/": ("moderation",),
    "celebrities/": ("celebrities",),
}
"""The folder convention of the original AWS sample, available as the preset ``"sample"``."""


def operation(name: str) -> Operation:
    """Look up an analysis by setting name, with an error that lists the valid ones."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"unknown operation {name!r}; known: {', '.join(CATALOGUE)}") from None


def operations_for(
    key: str, default: Iterable[str], prefix_operations: Mapping[str, Iterable[str]]
) -> tuple[str, ...]:
    """Choose the analyses for an object: the longest matching prefix wins, else the default."""
    matches = [prefix for prefix in prefix_operations if key.startswith(prefix)]
    if matches:
        return tuple(prefix_operations[max(matches, key=len)])
    return tuple(default)


def iam_actions(names: Iterable[str], *, images: bool, videos: bool) -> list[str]:
    """The sorted Rekognition actions needed to run these analyses on these media types."""
    actions: set[str] = set()
    for name in names:
        op = operation(name)
        if images and op.image_api:
            actions.add(f"rekognition:{op.image_api}")
        if videos and op.video_start_api and op.video_get_api:
            actions.update({f"rekognition:{op.video_start_api}", f"rekognition:{op.video_get_api}"})
    return sorted(actions)
