"""Reading images and videos the way Rekognition does: from S3 or inline bytes, with its errors."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .config import MAX_IMAGE_BYTES_INLINE, MAX_IMAGE_BYTES_S3
from .exceptions import RekognitionServiceError

S3_UNREADABLE = "Unable to get object metadata from S3. Check object key, region and/or access permissions."
_ACCESS_DENIED_CODES = {"403", "AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidObjectState"}


def _invalid_parameters() -> RekognitionServiceError:
    return RekognitionServiceError("InvalidParameterException", "Request has invalid parameters")


def _s3_error(exc: Exception) -> RekognitionServiceError:
    """Map an S3 failure onto what Rekognition answers for it."""
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    if code in _ACCESS_DENIED_CODES:
        detail = exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else ""
        # The service says no more than this; the local run names the S3 refusal, so the missing grant shows.
        suffix = f" (S3: {detail})" if detail and detail != "Access Denied" else ""
        return RekognitionServiceError("AccessDeniedException", f"You are not authorized to perform this action{suffix}")
    # Missing bucket, key or version (HEAD answers a bare "404"/"400"), malformed names: all the same error.
    return RekognitionServiceError("InvalidS3ObjectException", S3_UNREADABLE)


@dataclass(frozen=True)
class S3Location:
    """Where a Rekognition ``S3Object`` points."""

    bucket: str
    name: str
    version: str | None = None

    @classmethod
    def from_request(cls, s3_object: dict[str, Any]) -> S3Location:
        """Build from the request's ``S3Object``; missing fields are InvalidParameterException."""
        if not s3_object.get("Bucket") or not s3_object.get("Name"):
            raise _invalid_parameters()
        return cls(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version"))

    def as_video(self) -> dict[str, Any]:
        """The ``Video`` structure echoed by Get* responses."""
        s3_object: dict[str, Any] = {"Bucket": self.bucket, "Name": self.name}
        if self.version:
            s3_object["Version"] = self.version
        return {"S3Object": s3_object}

    def _key_args(self) -> dict[str, str]:
        args = {"Bucket": self.bucket, "Key": self.name}
        if self.version:
            args["VersionId"] = self.version
        return args

    def head(self, s3: Any) -> dict[str, Any]:
        """HEAD the object; S3 failures become Rekognition errors."""
        try:
            return s3.head_object(**self._key_args())
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc) from exc

    def read(self, s3: Any, byte_range: str | None = None) -> bytes:
        """GET the object (or a ``bytes=a-b`` range of it); S3 failures become Rekognition errors."""
        args: dict[str, str] = self._key_args()
        if byte_range:
            args["Range"] = byte_range
        try:
            return s3.get_object(**args)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc) from exc


@dataclass(frozen=True)
class LoadedImage:
    """Image bytes plus the digest that keys the synthetic analysis, and its decoded size."""

    data: bytes
    format: str
    digest: str
    width: int = 0
    height: int = 0


MIN_IMAGE_DIMENSION = 80
MIN_PPE_IMAGE_DIMENSION = 64
"""Rekognition Developer Guide, "Guidelines and quotas in Amazon Rekognition" (limits.html): "The
minimum image dimensions is 80 pixels for both height and width. The minimum image dimension for
DetectProtectiveEquipment is 64 pixels for both height and width." The service answers a smaller
image with InvalidParameterException "Request has invalid parameters" (boto/botocore#1366)."""
INVALID_FORMAT_MESSAGE = "Request has invalid image format"


def decode_image(data: bytes) -> tuple[str, int, int]:
    """Decode the whole image with Pillow: (format, width, height), or InvalidImageFormatException.

    Rekognition accepts PNG and JPEG only (limits.html: "Amazon Rekognition supports the PNG and
    JPEG image formats") and decodes the pixels, so valid magic bytes with a corrupt or truncated
    body are refused just like text named .jpg (API reference of every image operation:
    InvalidImageFormatException, "The provided image format is not supported").
    """
    import io

    from PIL import Image, UnidentifiedImageError

    image_format = sniff_image_format(data)
    if image_format is None:
        raise RekognitionServiceError("InvalidImageFormatException", INVALID_FORMAT_MESSAGE)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if (image.format or "").lower() not in ("jpeg", "png"):
                raise RekognitionServiceError("InvalidImageFormatException", INVALID_FORMAT_MESSAGE)
            image.load()  # decodes every pixel: a corrupt or truncated body fails here
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RekognitionServiceError("InvalidImageFormatException", INVALID_FORMAT_MESSAGE) from exc
    return image_format, width, height


def check_dimensions(image: LoadedImage, minimum: int) -> None:
    """InvalidParameterException below the documented minimum (see `MIN_IMAGE_DIMENSION`)."""
    if image.width < minimum or image.height < minimum:
        raise _invalid_parameters()


def sniff_image_format(data: bytes) -> str | None:
    """``"jpeg"``/``"png"`` from the magic bytes, else None (Rekognition accepts only these two)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] == b"\x89PNG":
        return "png"
    return None


def load_image(image: Any, s3: Any, max_inline: int = MAX_IMAGE_BYTES_INLINE) -> LoadedImage:
    """Resolve a request's ``Image`` (``Bytes`` or ``S3Object``), enforcing size and format limits.

    Parameters
    ----------
    image: Any
        The request's ``Image`` member.
    s3: Any
        boto3 S3 client, used only for ``S3Object`` images.
    max_inline: int
        Limit for ``Bytes`` images (5 MB; DetectProtectiveEquipment allows 4 MB).
    """
    if not isinstance(image, dict) or ("Bytes" in image) == ("S3Object" in image):
        raise _invalid_parameters()
    if "Bytes" in image:
        try:
            data = base64.b64decode(image["Bytes"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise RekognitionServiceError("InvalidImageFormatException", INVALID_FORMAT_MESSAGE) from exc
        if len(data) > max_inline:
            raise RekognitionServiceError("ImageTooLargeException", "Image size is too large.")
    else:
        location = S3Location.from_request(image["S3Object"] or {})
        size = int(location.head(s3).get("ContentLength", 0))
        if size > MAX_IMAGE_BYTES_S3:
            raise RekognitionServiceError("ImageTooLargeException", "Image size is too large.")
        data = location.read(s3) if size else b""
    image_format, width, height = decode_image(data)
    return LoadedImage(data, image_format, hashlib.sha256(data).hexdigest(), width, height)


@dataclass(frozen=True)
class VideoProbe:
    """What a Start* call learns about the video before queueing the job."""

    location: S3Location
    size: int
    playable: bool
    digest: str


def probe_video(video: Any, s3: Any, max_bytes: int) -> VideoProbe:
    """Check a request's ``Video`` exists and is under ``max_bytes``, and sniff its container.

    Only the first 12 bytes are read: an ISO-BMFF (MP4/MOV) file has ``ftyp`` at byte 4. Anything
    else is accepted here and fails later as the job runs, like the service does.
    """
    if not isinstance(video, dict) or not isinstance(video.get("S3Object"), dict):
        raise _invalid_parameters()
    location = S3Location.from_request(video["S3Object"])
    head = location.head(s3)
    size = int(head.get("ContentLength", 0))
    if size > max_bytes:
        raise RekognitionServiceError(
            "VideoTooLargeException",
            f"Video size in bytes: {size} is more than the maximum limit of: {max_bytes} bytes",
        )
    header = location.read(s3, "bytes=0-11") if size else b""
    identity = f"{location.bucket}/{location.name}/{location.version}/{size}/{head.get('ETag', '')}/{header.hex()}"
    return VideoProbe(location, size, header[4:8] == b"ftyp", hashlib.sha256(identity.encode()).hexdigest())
