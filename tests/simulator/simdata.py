"""Test data shared by the simulator tests: object bodies, request builders, client config."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

BUCKET = "media-bucket"
ROLE_ARN = "arn:aws:iam::123456789012:role/rekognition-sns"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)) * 4
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 512
NOT_A_VIDEO = b"This is a text file, not a video." * 10

# No retries: the tests count exactly the calls they make, and throttling must surface at once.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def s3_image(key: str = "photo.jpg", version: str | None = None) -> dict[str, Any]:
    """A request ``Image`` pointing into the test bucket."""
    s3_object: dict[str, Any] = {"Bucket": BUCKET, "Name": key}
    if version:
        s3_object["Version"] = version
    return {"S3Object": s3_object}


def s3_video(key: str = "clip.mp4") -> dict[str, Any]:
    """A request ``Video`` pointing into the test bucket."""
    return {"S3Object": {"Bucket": BUCKET, "Name": key}}
