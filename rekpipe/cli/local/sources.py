"""What ``rekpipe local run`` uploads: every file of a folder, or generated sample media."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rekpipe.cli.exceptions import UserException
from rekpipe.cli.local.options import DEFAULT_IMAGES, DEFAULT_VIDEOS

_MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class Source:
    """One file to upload under ``key``: read from ``path``, or held in memory (a generated sample)."""

    key: str
    size: int
    path: Path | None = None
    body: bytes | None = None

    def open(self) -> IO[bytes]:
        import io

        return self.path.open("rb") if self.path is not None else io.BytesIO(self.body or b"")


def collect_sources(folder: Path | None, images: int | None, videos: int | None,
                    seed: int) -> tuple[list[Source], str]:
    """The files to upload and a description of where they come from."""
    if folder is None:
        from rekpipe.samples import generate

        images = DEFAULT_IMAGES if images is None else images
        videos = DEFAULT_VIDEOS if videos is None else videos
        if images + videos == 0:
            raise UserException("Nothing to analyse: --images and --videos are both 0; generate at least one sample "
                                "or pass a FOLDER")
        samples = generate(images=images, videos=videos, seed=seed)
        return ([Source(s.key, len(s.body), body=s.body) for s in samples],
                f"{images} generated images and {videos} generated videos (seed {seed})")
    if images is not None or videos is not None:
        raise UserException("--images/--videos generate samples and cannot be combined with FOLDER: drop them, or "
                            "drop FOLDER")
    if not folder.exists():
        raise UserException(f"Folder {folder} does not exist: pass a folder of images and videos, or leave it out to "
                            "analyse generated samples")
    if not folder.is_dir():
        raise UserException(f"{folder} is a file, not a folder: pass the folder that holds it")
    import os

    sources = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            key = path.relative_to(folder).as_posix()
            if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
                raise UserException(f"{path}: the path is longer than S3's {_MAX_KEY_BYTES}-byte key limit; "
                                    "shorten it or move the file")
            try:
                size = path.stat().st_size
            except OSError as error:
                raise UserException(f"Cannot read {path} ({error.strerror}): fix its permissions or remove it") \
                    from None
            sources.append(Source(key, size, path=path))
    if not sources:
        raise UserException(f"Folder {folder} has no files: add images (.jpg, .jpeg, .png) or videos (.mp4, .mov), "
                            "or leave FOLDER out to analyse generated samples")
    return sources, f"folder {folder}"


__all__ = ["Source", "collect_sources"]
