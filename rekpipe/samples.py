"""Sample media the project generates itself, so `rekpipe local run` and the tests need no downloads.

Images are real JPEG/PNG files (Pillow); videos are small files with a real MP4 ``ftyp``/``moov``
structure, enough for the Rekognition simulator, whose analysis content is synthetic anyway.
"""

from __future__ import annotations

import io
import random
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

NASTY_KEYS = (
    "holiday photos/beach & sun.jpg",
    "写真/café 100%.png",
    "a+b=c/plus+sign.jpeg",
    "deep/nested/folder/with spaces/IMG_0001.JPG",
    "quotes/'single' \"double\".png",
    "emoji/😀 smile.jpg",
    "percent/%20encoded%2F.jpg",
    "unicode/Ünïcödé ñame.png",
)


@dataclass(frozen=True)
class SampleFile:
    """One generated file: where it goes in the bucket and its bytes."""

    key: str
    body: bytes


MIN_SAMPLE_SIDE = 80
"""Rekognition refuses images under 80x80 pixels (limits.html), so samples are at least that big."""


def jpeg_bytes(seed: int, size: tuple[int, int] = (128, 96)) -> bytes:
    """A small, valid JPEG whose pixels depend on the seed (128x96 by default: above Rekognition's minimum)."""
    from PIL import Image

    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(6):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, min(size[0], x + 16),
                                                                                   min(size[1], y + 12)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def png_bytes(seed: int, size: tuple[int, int] = (96, 96)) -> bytes:
    """A small, valid PNG whose pixels depend on the seed (96x96 by default)."""
    from PIL import Image

    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def mp4_bytes(seed: int, duration_ms: int = 30_000) -> bytes:
    """A tiny file with MP4 boxes (ftyp, moov/mvhd, mdat): a stand-in for an H.264 video."""
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, duration_ms) + bytes(80))
    rng = random.Random(seed)
    mdat = box(b"mdat", bytes(rng.randrange(256) for _ in range(256)))
    return ftyp + box(b"moov", mvhd) + mdat


def corrupt_image_bytes() -> bytes:
    """Bytes named .jpg that are not an image: Rekognition answers InvalidImageFormatException."""
    return b"this is not a JPEG, just text with the wrong name\n" * 4


def corrupt_jpeg_bytes(seed: int = 1) -> bytes:
    """A JPEG whose magic bytes and header are valid but whose body is cut short and garbled:
    a decoder fails on it, so Rekognition answers InvalidImageFormatException."""
    good = jpeg_bytes(seed, (256, 192))
    return good[: len(good) // 3] + bytes(range(256)) * 2


def generate(images: int = 20, videos: int = 3, seed: int = 7) -> list[SampleFile]:
    """A mixed set with awkward key names: spaces, plus signs, unicode, percent signs, emoji."""
    files: list[SampleFile] = []
    for index in range(images):
        if index < len(NASTY_KEYS):
            key = NASTY_KEYS[index]
        else:
            key = f"photos/batch {index // 10}/image-{index:04d}.{'png' if index % 3 == 0 else 'jpg'}"
        lower = key.lower()
        body = png_bytes(seed + index) if lower.endswith(".png") else jpeg_bytes(seed + index)
        files.append(SampleFile(key, body))
    for index in range(videos):
        suffix = ".mov" if index % 2 else ".mp4"
        files.append(SampleFile(f"videos/clip {index} (final){suffix}", mp4_bytes(seed + 1000 + index)))
    return files


def write_to(folder: Path, files: list[SampleFile]) -> None:
    """Write the samples under a folder, keeping their keys as relative paths."""
    for sample in files:
        path = folder / sample.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample.body)
