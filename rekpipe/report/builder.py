"""Builds a report: find the manifests, read what they point at in parallel, write one folder of static files.

Layout of the folder (open ``index.html``; nothing needs a server)::

    index.html                 counts, search, pagination, the failed and partial objects
    data/index.js              the index as compact JSON, assigned to ``window.REKPIPE_INDEX``
    objects/<id[:2]>/<id>.html one static page per source object version
    media/<id[:2]>/<id>.jpg    downscaled pictures (``--images embed``)
    assets/report.css, .js     shared by every page
    report.json                what was built, from where, and how long it took

Memory stays flat for large buckets: each object's page is rendered and written by the worker
that read its outputs, and only its index line is kept.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rekpipe.report import assets, render
from rekpipe.report.exceptions import NoManifestsError, ReportTargetError
from rekpipe.report.extract import (
    NotAManifestError,
    image_labels,
    image_view,
    newest_per_version,
    parse_manifest,
    video_labels,
    video_view,
)
from rekpipe.report.model import STATUS_ORDER, IndexEntry, ManifestEntry

if TYPE_CHECKING:
    from rekpipe.report.source import ReportSource

IMAGE_MODES = ("embed", "link", "none")
COUNTED_VIDEO_OUTPUTS = frozenset({"StartFaceDetection", "StartFaceSearch", "StartPersonTracking"})
"""Video outputs whose pages are read for counts over time (faces, people); the others need only the summary."""
REPORT_FILE = "report.json"
_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError)
_MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class ReportOptions:
    """How to build.

    Parameters
    ----------
    out: Path
        The report's folder (created; a previous report in it is replaced).
    images: str
        ``embed`` a downscaled copy, ``link`` with a presigned URL (expires after ``link_expiry`` s),
        or ``none``.
    workers: int
        Threads reading S3 (each read is one GET or LIST).
    requests_per_second: float
        Ceiling on S3 requests across threads.
    page_size: int
        Index rows per page.
    max_video_pages: int
        Get* pages read per counted video output (faces, people); the summary covers the rest.
    thumbnail_px: int
        Longest side of an embedded picture.
    """

    out: Path
    images: str = "embed"
    link_expiry: int = 7 * 24 * 3600
    workers: int = 16
    requests_per_second: float = 500.0
    page_size: int = 100
    max_video_pages: int = 20
    thumbnail_px: int = 800


@dataclass
class ReportResult:
    """What was built (returned to the CLI, to ``rekpipe local run`` and to tests)."""

    out: Path
    index: Path
    objects: int
    counts: dict[str, int]
    manifests: int
    superseded: int
    not_manifests: int
    unreadable_outputs: int
    synthetic: bool
    seconds: float
    bytes_written: int
    files_written: int
    timings: dict[str, float] = field(default_factory=dict)


class ReportBuilder:
    """One build of one report: the session object the CLI and ``rekpipe local run`` drive.

    Parameters
    ----------
    source: ReportSource
        Where to read (an :class:`~rekpipe.report.source.S3Source` or a
        :class:`~rekpipe.report.source.FolderSource`).
    options: ReportOptions
        How to build.
    """

    def __init__(self, source: ReportSource, options: ReportOptions) -> None:
        if options.images not in IMAGE_MODES:
            raise ValueError(f"images must be one of {IMAGE_MODES}, not {options.images!r}")
        self.source, self.options = source, options
        self._synthetic: str | None = None
        self._unreadable = 0
        self._lock = threading.Lock()

    def build(self) -> ReportResult:
        """Write the report and return what it holds."""
        from rekpipe.cli.console import Progress

        started = time.monotonic()
        timings: dict[str, float] = {}
        out = self.options.out
        self._prepare(out)
        marker = self.source.synthetic_marker()
        self._synthetic = str(marker.get("reason") or "Produced by the local simulator.") if marker else None
        generated_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        with ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="report") as pool:
            with Progress() as progress:
                locations = self.source.manifests(pool, lambda n: progress.update(f"Listing manifests: {n:,} found"))
                progress.done(f"Found {len(locations):,} manifests in {self.source.description}")
            timings["list"] = time.monotonic() - started
            if not locations:
                raise NoManifestsError(self.source.description)
            entries, not_manifests = self._read_manifests(pool, locations)
            timings["manifests"] = time.monotonic() - started - timings["list"]
            kept, superseded = newest_per_version(entries)
            if not kept:
                raise NoManifestsError(self.source.description)
            index_entries = self._write_pages(pool, kept)
        timings["pages"] = time.monotonic() - started - timings["list"] - timings["manifests"]
        index_entries.sort(key=lambda e: (e.key, e.bucket, e.version))
        counts = _counts(index_entries)
        (out / "data").mkdir(parents=True, exist_ok=True)
        (out / "assets").mkdir(parents=True, exist_ok=True)
        (out / "data" / "index.js").write_text(
            render.index_data(index_entries, counts=counts, synthetic=self._synthetic,
                              source=self.source.description, generated_at=generated_at), encoding="utf-8")
        (out / "index.html").write_text(
            render.index_page(source=self.source.description, generated_at=generated_at, counts=counts,
                              synthetic=self._synthetic, page_size=self.options.page_size), encoding="utf-8")
        (out / "assets" / "report.css").write_text(assets.CSS, encoding="utf-8")
        (out / "assets" / "report.js").write_text(assets.JS, encoding="utf-8")
        seconds = time.monotonic() - started
        files, size = _folder_size(out)
        result = ReportResult(out=out, index=out / "index.html", objects=len(index_entries), counts=counts,
                              manifests=len(locations), superseded=superseded, not_manifests=not_manifests,
                              unreadable_outputs=self._unreadable, synthetic=self._synthetic is not None,
                              seconds=seconds, bytes_written=size, files_written=files + 1, timings=timings)
        summary = {key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(result).items()}
        (out / REPORT_FILE).write_text(json.dumps({"generator": render.GENERATOR, "complete": True,
                                                   "source": self.source.description,
                                                   "generated_at": generated_at, "images": self.options.images,
                                                   **summary}, indent=2), encoding="utf-8")
        return result

    # --- steps -------------------------------------------------------------------------------------
    def _prepare(self, out: Path) -> None:
        """Create the folder, or clear a previous report in it; refuse to clear anything else."""
        if out.exists() and not out.is_dir():
            raise ReportTargetError(str(out))
        if out.is_dir() and any(out.iterdir()):
            if not (out / REPORT_FILE).is_file():
                raise ReportTargetError(str(out))
            for name in ("objects", "media", "data", "assets"):
                shutil.rmtree(out / name, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        # Claim the folder first, so an interrupted build can be replaced by the next one.
        (out / REPORT_FILE).write_text(json.dumps({"generator": render.GENERATOR, "complete": False}),
                                       encoding="utf-8")

    def _read_manifests(self, pool: ThreadPoolExecutor, locations: list[str]) -> tuple[list[ManifestEntry], int]:
        from rekpipe.cli.console import Progress

        entries: list[ManifestEntry] = []
        skipped = 0
        with Progress() as progress:
            futures = [pool.submit(self._read_manifest, location) for location in locations]
            for done, future in enumerate(as_completed(futures), start=1):
                entry = future.result()
                if entry is None:
                    skipped += 1
                else:
                    entries.append(entry)
                progress.update(f"Reading manifests: {done:,}/{len(locations):,}")
            progress.done(f"Read {len(locations):,} manifests ({skipped:,} not the pipeline's)")
        return entries, skipped

    def _read_manifest(self, location: str) -> ManifestEntry | None:
        try:
            return parse_manifest(self.source.read_manifest(location))
        except NotAManifestError:
            return None
        except _read_errors() as error:
            raise RuntimeError(f"cannot read manifest {location}: {error}") from error

    def _write_pages(self, pool: ThreadPoolExecutor, entries: list[ManifestEntry]) -> list[IndexEntry]:
        from rekpipe.cli.console import Progress

        result: list[IndexEntry] = []
        with Progress() as progress:
            futures = [pool.submit(self._object_page, entry) for entry in entries]
            for done, future in enumerate(as_completed(futures), start=1):
                result.append(future.result())
                progress.update(f"Writing object pages: {done:,}/{len(entries):,}")
            progress.done(f"Wrote {len(entries):,} object pages")
        return result

    def _object_page(self, entry: ManifestEntry) -> IndexEntry:
        """Read one object's outputs, write its page (and picture), return its index line."""
        if entry.media_type == "video":
            page, labels = self._video(entry)
        else:
            page, labels = self._image(entry)
        path = self.options.out / render.object_href(entry.entry_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        first_error = next(iter(entry.errors.values()), None)
        error = f"{first_error['code']}: {first_error['message']}"[:_MAX_ERROR_CHARS] if first_error else ""
        return IndexEntry(entry_id=entry.entry_id, href=render.object_href(entry.entry_id),
                          bucket=entry.source.bucket, key=entry.source.key,
                          version=entry.source.version_id or entry.source.etag or "", media_type=entry.media_type,
                          status=entry.status, labels=tuple(labels), error=error)

    def _count_unreadable(self) -> None:
        with self._lock:
            self._unreadable += 1

    def _read_outputs(self, entry: ManifestEntry, notes: list[str]) -> dict[str, Any]:
        documents: dict[str, Any] = {}
        for name, uri in entry.outputs.items():
            if uri.endswith("/"):
                continue  # a folder of pages without a summary (an interrupted collection)
            try:
                documents[name] = self.source.read_json(uri)
            except _read_errors() as error:
                self._count_unreadable()
                notes.append(f"{name}: output {uri} could not be read ({type(error).__name__}).")
        return documents

    def _image(self, entry: ManifestEntry) -> tuple[str, list[str]]:
        notes: list[str] = []
        responses = self._read_outputs(entry, notes)
        view = image_view(responses)
        picture, size, picture_note = self._picture(entry)
        note = " ".join([picture_note, *notes])
        page = render.image_page(entry, view, picture=picture, picture_size=size, picture_note=note,
                                 synthetic=self._synthetic)
        return page, image_labels(responses)

    def _picture(self, entry: ManifestEntry) -> tuple[str | None, tuple[int, int] | None, str]:
        mode = self.options.images
        if mode == "none":
            return None, None, "Picture left out (--images none); boxes are drawn on a blank 4:3 frame."
        if mode == "link":
            link = self.source.media_link(entry.source, self.options.link_expiry)
            if link:
                return link, None, f"Picture loaded from S3 by a presigned URL (valid {self.options.link_expiry:,} s)."
            return None, None, "No link to the picture from this source; boxes are drawn on a blank 4:3 frame."
        body = self.source.media_bytes(entry.source)
        if body is None:
            return None, None, ("The picture could not be read (from its bucket, or from --media for a folder); "
                                "boxes are drawn on a blank 4:3 frame.")
        try:
            jpeg, size = downscale(body, self.options.thumbnail_px)
        except Exception as error:  # Pillow raises many types for a damaged file; any means "not drawable"
            return None, None, f"The picture could not be decoded ({type(error).__name__}); boxes on a blank frame."
        relative = f"media/{entry.entry_id[:2]}/{entry.entry_id}.jpg"
        target = self.options.out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(jpeg)
        return f"../../{relative}", size, f"Downscaled copy ({size[0]}×{size[1]}) of the analysed picture."

    def _video(self, entry: ManifestEntry) -> tuple[str, list[str]]:
        notes: list[str] = []
        summaries = self._read_outputs(entry, notes)
        pages: dict[str, list[dict[str, Any]]] = {}
        for name, uri in entry.outputs.items():
            if name not in COUNTED_VIDEO_OUTPUTS:
                continue
            try:
                page_uris = self.source.pages_beside(uri)
                pages[name] = [self.source.read_json(u) for u in page_uris[:self.options.max_video_pages]]
            except _read_errors() as error:
                self._count_unreadable()
                notes.append(f"{name}: result pages could not be read ({type(error).__name__}).")
                continue
            if len(page_uris) > self.options.max_video_pages:
                notes.append(f"{name}: counts from the first {self.options.max_video_pages} of {len(page_uris)} "
                             "result pages.")
        statuses = {name: "SUCCEEDED" for name in entry.outputs} | {name: "FAILED" for name in entry.errors}
        view = video_view(summaries, statuses, pages)
        page = render.video_page(entry, view, synthetic=self._synthetic, notes=notes)
        return page, video_labels(view)


def downscale(body: bytes, longest: int) -> tuple[bytes, tuple[int, int]]:
    """A JPEG copy whose longest side is at most ``longest`` pixels (EXIF orientation applied)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(body)) as image:
        picture = ImageOps.exif_transpose(image).convert("RGB")
    picture.thumbnail((longest, longest))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=82)
    return out.getvalue(), picture.size


def _read_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "this document is not readable": missing, denied, or not JSON."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (*_READ_ERRORS, ClientError, BotoCoreError)


def _counts(entries: list[IndexEntry]) -> dict[str, int]:
    found: dict[str, int] = {}
    for entry in entries:
        found[entry.status] = found.get(entry.status, 0) + 1
    ordered = {status: found.pop(status) for status in STATUS_ORDER if status in found}
    return ordered | dict(sorted(found.items()))


def _folder_size(folder: Path) -> tuple[int, int]:
    files = size = 0
    for path in folder.rglob("*"):
        if path.is_file():
            files += 1
            size += path.stat().st_size
    return files, size


def build_report(source: ReportSource, options: ReportOptions) -> ReportResult:
    """Build one report (see :class:`ReportBuilder`)."""
    return ReportBuilder(source, options).build()


__all__ = ["IMAGE_MODES", "ReportBuilder", "ReportOptions", "ReportResult", "build_report", "downscale"]
