"""Where a report reads from: the output bucket (or a prefix of it), or a folder copy of it.

Both sources answer the same questions: which manifests exist, what a URI from a manifest holds,
which pages sit beside a summary, and where the analysed media is. Only manifests are found by
listing (their name is the one fixed part of the layout); every other read follows a URI a manifest
gave, so the report does not depend on how output keys are built.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from rekpipe.report.exceptions import ReportSourceError
from rekpipe.synthetic import SYNTHETIC_MARKER_KEY
from rekpipe_shared.schema import MANIFEST_NAME

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ThreadPoolExecutor

    from rekpipe.report.model import SourceObject

PAGE_PREFIX = "page-"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parts.netloc, parts.path.lstrip("/")


def _sibling_prefix(key: str) -> str:
    """The folder of a summary document: its pages are written beside it."""
    return key.rsplit("/", 1)[0] + "/" if "/" in key else ""


class RateLimiter:
    """Caps requests per second across threads (a token bucket), to stay within S3's per-prefix rates.

    Parameters
    ----------
    per_second: float
        Sustained request rate; S3 supports 5,500 GET and 3,500 PUT per second per prefix, so the
        default used by the report (500) leaves room for the pipeline itself.
    """

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


class ReportSource(Protocol):
    """What the report builder reads."""

    description: str

    def manifests(self, pool: ThreadPoolExecutor, on_found: Callable[[int], None]) -> list[str]:
        """Locations of every ``manifest.json`` (opaque to the caller)."""
        ...

    def read_manifest(self, location: str) -> Any: ...

    def read_json(self, uri: str) -> Any:
        """The JSON document at a URI taken from a manifest."""
        ...

    def pages_beside(self, uri: str) -> list[str]:
        """URIs of the ``page-*.json`` documents in the same folder as ``uri``, in order."""
        ...

    def media_bytes(self, source: SourceObject) -> bytes | None:
        """The analysed object's bytes, or None when this source cannot reach them."""
        ...

    def media_link(self, source: SourceObject, expires: int) -> str | None:
        """A URL a browser can load the object from, or None."""
        ...

    def synthetic_marker(self) -> dict[str, Any] | None:
        """The simulator's marker (:mod:`rekpipe.synthetic`) when this content is synthetic."""
        ...


class S3Source:
    """The output bucket, or a prefix of it, read with one S3 client shared by a bounded thread pool.

    Parameters
    ----------
    s3: Any
        A boto3 S3 client (thread-safe); built by the CLI from the global options.
    bucket, prefix: str
        What to report on; ``prefix`` "" is the whole bucket.
    limiter: RateLimiter
        Shared by every request of the build.
    """

    def __init__(self, s3: Any, bucket: str, prefix: str, limiter: RateLimiter) -> None:
        self.s3, self.bucket, self.prefix, self.limiter = s3, bucket, prefix, limiter
        self.description = f"s3://{bucket}/{prefix}"

    def _call(self, method: str, **kwargs: Any) -> Any:
        self.limiter.wait()
        return getattr(self.s3, method)(**kwargs)

    def manifests(self, pool: ThreadPoolExecutor, on_found: Callable[[int], None]) -> list[str]:
        """List the prefix one level deep with a delimiter, then each sub-prefix in parallel."""
        from botocore.exceptions import ClientError

        try:
            first = self._call("list_objects_v2", Bucket=self.bucket, Prefix=self.prefix, Delimiter="/")
        except ClientError as error:
            raise ReportSourceError(self.description, error) from error
        found = [f"s3://{self.bucket}/{o['Key']}" for o in first.get("Contents", []) if _is_manifest(o["Key"])]
        subprefixes = [p["Prefix"] for p in first.get("CommonPrefixes", [])]
        if first.get("IsTruncated"):  # a huge flat level: list all of it in one go instead
            subprefixes, found = [self.prefix], []
        counter = _Counter(on_found, len(found))
        futures = [pool.submit(self._list_all, prefix, counter) for prefix in subprefixes]
        for future in futures:
            found.extend(future.result())
        return found

    def _list_all(self, prefix: str, counter: _Counter) -> list[str]:
        found, token = [], None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            keys = [f"s3://{self.bucket}/{o['Key']}" for o in page.get("Contents", []) if _is_manifest(o["Key"])]
            found.extend(keys)
            counter.add(len(keys))
            token = page.get("NextContinuationToken")
            if not token:
                return found

    def read_manifest(self, location: str) -> Any:
        return self.read_json(location)

    def read_json(self, uri: str) -> Any:
        bucket, key = split_s3_uri(uri)
        return json.loads(self._call("get_object", Bucket=bucket, Key=key)["Body"].read())

    def pages_beside(self, uri: str) -> list[str]:
        bucket, key = split_s3_uri(uri)
        folder = _sibling_prefix(key)
        pages, token = [], None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": folder + PAGE_PREFIX}
            if token:
                kwargs["ContinuationToken"] = token
            listing = self._call("list_objects_v2", **kwargs)
            pages.extend(f"s3://{bucket}/{o['Key']}" for o in listing.get("Contents", [])
                         if o["Key"].endswith(".json") and "/" not in o["Key"][len(folder):])
            token = listing.get("NextContinuationToken")
            if not token:
                return sorted(pages)

    def media_bytes(self, source: SourceObject) -> bytes | None:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": source.bucket, "Key": source.key}
        if source.version_id:
            kwargs["VersionId"] = source.version_id
        try:
            return bytes(self._call("get_object", **kwargs)["Body"].read())
        except ClientError:
            return None  # gone, or not readable with these credentials: the page says so

    def media_link(self, source: SourceObject, expires: int) -> str | None:
        params: dict[str, Any] = {"Bucket": source.bucket, "Key": source.key}
        if source.version_id:
            params["VersionId"] = source.version_id
        return str(self.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires))

    def synthetic_marker(self) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            document = self.read_json(f"s3://{self.bucket}/{SYNTHETIC_MARKER_KEY}")
        except ClientError:
            return None
        return document if isinstance(document, dict) and document.get("synthetic") else None


class FolderSource:
    """A folder holding a copy of the output bucket (``rekpipe local run --out``), or a subfolder of one.

    ``s3://<bucket>/<key>`` URIs from manifests are looked up as ``<root>/<key>``, where the root is
    the given folder or the nearest parent under which the URI's file exists (the folder may be a
    prefix of the copy).

    Parameters
    ----------
    folder: Path
        The copy, or a folder inside it.
    media: Path | None
        Where the analysed files are (keys as relative paths), e.g. the folder given to
        ``rekpipe local run``; without it, image pages draw boxes on a blank frame.
    """

    def __init__(self, folder: Path, media: Path | None = None) -> None:
        if not folder.is_dir():
            raise ReportSourceError(str(folder), "not a folder")
        self.folder, self.media = folder.resolve(), media.resolve() if media else None
        self.description = str(folder)
        self._roots = [self.folder, *self.folder.parents]
        self._root: Path | None = None

    def manifests(self, pool: ThreadPoolExecutor, on_found: Callable[[int], None]) -> list[str]:
        found = []
        for root, dirs, files in os.walk(self.folder):
            dirs.sort()
            if MANIFEST_NAME in files:
                found.append(str(Path(root) / MANIFEST_NAME))
                on_found(len(found))
        return found

    def read_manifest(self, location: str) -> Any:
        return json.loads(Path(location).read_text(encoding="utf-8"))

    def _path(self, uri: str) -> Path:
        _, key = split_s3_uri(uri)
        if self._root is not None and (self._root / key).exists():
            return self._root / key
        for root in self._roots:
            candidate = root / key
            if candidate.exists():
                self._root = root
                return candidate
        raise FileNotFoundError(f"{uri} is not in {self.folder} or a folder above it")

    def read_json(self, uri: str) -> Any:
        return json.loads(self._path(uri).read_text(encoding="utf-8"))

    def pages_beside(self, uri: str) -> list[str]:
        bucket, key = split_s3_uri(uri)
        folder = self._path(uri).parent
        prefix = _sibling_prefix(key)
        return [f"s3://{bucket}/{prefix}{p.name}" for p in sorted(folder.glob(f"{PAGE_PREFIX}*.json"))]

    def media_bytes(self, source: SourceObject) -> bytes | None:
        if self.media is None:
            return None
        path = (self.media / source.key).resolve()
        if not path.is_relative_to(self.media) or not path.is_file():
            return None
        return path.read_bytes()

    def media_link(self, source: SourceObject, expires: int) -> str | None:
        if self.media is None:
            return None
        path = (self.media / source.key).resolve()
        return path.as_uri() if path.is_relative_to(self.media) and path.is_file() else None

    def synthetic_marker(self) -> dict[str, Any] | None:
        for root in self._roots:
            marker = root / SYNTHETIC_MARKER_KEY
            if marker.is_file():
                try:
                    document = json.loads(marker.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(document, dict) and document.get("synthetic"):
                    return document
        return None


def _is_manifest(key: str) -> bool:
    return key == MANIFEST_NAME or key.endswith("/" + MANIFEST_NAME)


class _Counter:
    """Manifests found so far, across listing threads, reported to the progress line."""

    def __init__(self, on_found: Callable[[int], None], start: int) -> None:
        self._count, self._lock, self._on_found = start, threading.Lock(), on_found

    def add(self, count: int) -> None:
        with self._lock:
            self._count += count
            total = self._count
        self._on_found(total)


__all__ = ["FolderSource", "RateLimiter", "ReportSource", "S3Source", "split_s3_uri"]
