"""Test data shared by the simulator tests: object bodies, request builders, client config."""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.config import Config

from rekpipe.samples import jpeg_bytes, png_bytes
from rekpipe.simulator._content import face_count

BUCKET = "media-bucket"
ROLE_ARN = "arn:aws:iam::123456789012:role/rekognition-sns"


def _jpeg_with_faces(faces: bool, seed: int = 0) -> bytes:
    """The first generated 120x90 JPEG in which a simulator with ``seed`` sees faces (or none)."""
    for image_seed in range(1, 200):
        body = jpeg_bytes(image_seed, (120, 90))
        if (face_count(seed, hashlib.sha256(body).hexdigest()) > 0) == faces:
            return body
    raise AssertionError("no generated JPEG matched")


# Real images (the simulator decodes them), above Rekognition's 80-pixel minimum.
JPEG = _jpeg_with_faces(True)
FACELESS_JPEG = _jpeg_with_faces(False)
PNG = png_bytes(2, (96, 96))
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
