"""Which objects the pipeline analyses, and which it can judge without calling Rekognition."""

from __future__ import annotations

import posixpath

from rekpipe_shared.schema import (
    IMAGE_EXTENSIONS,
    MAX_IMAGE_BYTES_S3,
    MAX_VIDEO_BYTES,
    MEDIA_IMAGE,
    MEDIA_VIDEO,
    VIDEO_EXTENSIONS,
)

SUPPORTED_EXTENSIONS = tuple(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))


def media_type_for(key: str) -> str | None:
    """``image``, ``video`` or None, from the key's extension (case-insensitive)."""
    extension = posixpath.splitext(key)[1].lower()
    if extension in IMAGE_EXTENSIONS:
        return MEDIA_IMAGE
    if extension in VIDEO_EXTENSIONS:
        return MEDIA_VIDEO
    return None


def skip_reason(key: str, size: int | None = None) -> str | None:
    """Why an object is not analysed at all, or None when it is."""
    if key.endswith("/"):
        return "folder marker"
    if media_type_for(key) is None:
        extension = posixpath.splitext(key)[1].lower() or "no extension"
        return f"unsupported type ({extension}); the pipeline analyses {' '.join(SUPPORTED_EXTENSIONS)}"
    return None


def precheck_failure(media_type: str, size: int) -> tuple[str, str] | None:
    """An error Rekognition would certainly return, found for free: (error code, message)."""
    if size == 0:
        return "EmptyObject", "the object is empty (0 bytes); upload the file again"
    if media_type == MEDIA_IMAGE and size > MAX_IMAGE_BYTES_S3:
        return ("ImageTooLargeException",
                f"the image is {size} bytes; Rekognition accepts at most {MAX_IMAGE_BYTES_S3} bytes from S3")
    if media_type == MEDIA_VIDEO and size > MAX_VIDEO_BYTES:
        return ("VideoTooLargeException",
                f"the video is {size} bytes; Rekognition accepts at most {MAX_VIDEO_BYTES} bytes")
    return None
