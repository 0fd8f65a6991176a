"""What a report shows, as plain data: one entry per source object version, its boxes and its timeline.

Kept apart from reading (S3 or a folder) and from rendering (HTML), so the extraction rules are
unit-tested on stored responses and the renderer is tested on data built by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUS_ORDER = ("SUCCEEDED", "PARTIAL", "FAILED", "IN_PROGRESS", "QUEUED", "PENDING")
"""Statuses in the order the index counts them; anything else is counted after them."""


@dataclass(frozen=True)
class SourceObject:
    """The analysed object as its manifest names it."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    @property
    def identity(self) -> tuple[str, str, str]:
        """One report entry per (bucket, key, version): a newer run of the same version replaces an older one."""
        return (self.bucket, self.key, self.version_id or self.etag or "")


@dataclass(frozen=True)
class ManifestEntry:
    """One ``manifest.json``: the object, its outcome and where each output is."""

    entry_id: str
    source: SourceObject
    media_type: str
    status: str
    operations: tuple[str, ...]
    outputs: dict[str, str]
    errors: dict[str, dict[str, str]]
    written_at: str
    run: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def freshness(self) -> tuple[str, str]:
        """Sort key of runs of one object version: the newest manifest wins."""
        return (self.written_at or "", self.run or "")


@dataclass(frozen=True)
class Box:
    """One rectangle on an image, in BoundingBox ratios of the image's width and height (0..1)."""

    kind: str
    label: str
    confidence: float | None
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Row:
    """One line of a table on an object page (label, moderation label, text line...)."""

    name: str
    confidence: float | None = None
    detail: str = ""


@dataclass
class ImageView:
    """Everything an image page draws."""

    boxes: list[Box] = field(default_factory=list)
    tables: dict[str, list[Row]] = field(default_factory=dict)
    """Section title -> rows, e.g. ``"Labels"``, ``"Moderation labels"``, ``"Text"``."""


@dataclass(frozen=True)
class Track:
    """One row of a video timeline: a name and the time ranges (ms) it was seen in."""

    group: str
    name: str
    confidence: float | None
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CountSeries:
    """A count over time (faces on screen, distinct people), in equal bins across the video."""

    name: str
    bin_ms: int
    counts: tuple[int, ...]
    total: int | None = None


@dataclass
class VideoView:
    """Everything a video page draws."""

    duration_ms: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    tracks: list[Track] = field(default_factory=list)
    counts: list[CountSeries] = field(default_factory=list)
    operations: dict[str, str] = field(default_factory=dict)
    """Output name (Start API) -> SUCCEEDED or FAILED, from the manifest."""


@dataclass(frozen=True)
class IndexEntry:
    """One object's line in the index: what search, filters and the failure list need."""

    entry_id: str
    href: str
    bucket: str
    key: str
    version: str
    media_type: str
    status: str
    labels: tuple[str, ...]
    error: str


__all__ = ["STATUS_ORDER", "Box", "CountSeries", "ImageView", "IndexEntry", "ManifestEntry", "Row",
           "SourceObject", "Track", "VideoView"]
