"""The data side of a backfill: streaming listings, manifest rows, and the counts and cost estimate.

Which objects are analysed, with which operations, and which are judged without Rekognition
comes from the shared layer (``rekpipe_shared.media`` and ``operations``), so the estimate and
the manifest agree with what ``ingest_batch`` will do with each row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus

from rekpipe_shared.content_identity import identities_from_head
from rekpipe_shared.media import media_type_for, precheck_failure, skip_reason
from rekpipe_shared.operations import operation, operations_for
from rekpipe_shared.schema import MEDIA_IMAGE

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rekpipe.inventory import InventoryManifest
    from rekpipe_shared.settings import PipelineSettings

_SECONDS_PER_MINUTE = 60


@dataclass(frozen=True)
class ListedObject:
    """One object version from a listing or an inventory row."""

    key: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    is_latest: bool = True
    delete_marker: bool = False


@dataclass(frozen=True)
class BackfillResult:
    """What ``rekpipe backfill`` did: the counts, and the job unless it was a dry run."""

    summary: BackfillSummary
    job_id: str | None = None
    manifest_uri: str | None = None
    request: dict[str, Any] | None = None


def parse_s3_uri(uri: str, *, option: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key), or a message naming the option."""
    from rekpipe.cli.exceptions import UserException

    if not uri.startswith("s3://") or "/" not in uri[5:] or uri.endswith("/"):
        raise UserException(f"{option} must be an S3 object URI like s3://bucket/path/manifest.json, not {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def manifest_row(bucket: str, listed: ListedObject, *, versioned: bool) -> str:
    """One CSV manifest line. Keys are URL-encoded, as Batch Operations requires for CSV manifests.

    ``quote`` leaves no ``+`` and no ``,`` in the key, so the line needs no CSV quoting and
    decodes the same with ``unquote`` and ``unquote_plus`` (what ``ingest_batch`` uses).
    """
    row = f"{bucket},{quote(listed.key, safe='/')}"
    if versioned:
        row += f",{listed.version_id or 'null'}"
    return row + "\n"


# --- listings (generators: one page in memory at a time) -------------------------------------------
def iter_bucket(s3: Any, bucket: str, prefix: str, *, versioned: bool) -> Iterator[ListedObject]:
    """Every current object under ``prefix``, page by page.

    A versioned bucket is listed with ListObjectVersions, keeping only ``IsLatest`` versions, so
    the manifest can pin the version that was current when the backfill was planned. Delete
    markers are a separate list in that response and never appear.
    """
    if versioned:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                if version.get("IsLatest"):
                    yield ListedObject(key=version["Key"], size=int(version.get("Size", 0)),
                                       etag=version.get("ETag"), version_id=version.get("VersionId"))
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield ListedObject(key=item["Key"], size=int(item.get("Size", 0)), etag=item.get("ETag"))


@dataclass(frozen=True)
class InventoryDelivery:
    """One S3 Inventory delivery (its checked ``manifest.json``) and what the job needs from it."""

    manifest: InventoryManifest
    head: dict[str, Any]
    source_bucket: str
    created: str | None

    @property
    def file_count(self) -> int:
        return len(self.manifest.files)

    @property
    def all_versions(self) -> bool:
        """Whether the inventory lists every object version (it has an ``IsLatest`` column)."""
        return "IsLatest" in self.manifest.columns


def read_inventory_manifest(s3: Any, bucket: str, key: str, *, expected_bucket: str | None) -> InventoryDelivery:
    """Read and check an inventory manifest: CSV format (the only one Batch Operations reads)."""
    from datetime import UTC, datetime

    from botocore.exceptions import ClientError

    from rekpipe.cli.exceptions import UserException
    from rekpipe.inventory import InvalidInventoryManifestError, parse_inventory_manifest

    uri = f"s3://{bucket}/{key}"
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket", "404"):
            raise UserException(f"Inventory manifest {uri} was not found: pass the manifest.json of one "
                                "inventory delivery (s3://<destination>/<source>/<config>/<date>/manifest.json)") from None
        raise
    try:
        manifest: InventoryManifest | None = parse_inventory_manifest(response["Body"].read())
    except InvalidInventoryManifestError:
        manifest = None
    source_bucket = manifest.source_bucket if manifest else None
    if manifest is None or source_bucket is None:
        raise UserException(f"{uri} is not an S3 Inventory manifest.json (it needs sourceBucket, fileFormat, "
                            "fileSchema and files)")
    if not manifest.is_csv:
        raise UserException(f"{uri} describes a {manifest.file_format} inventory; Batch Operations only reads "
                            "CSV inventory reports: add a CSV inventory configuration, or use --bucket to list")
    if "Key" not in manifest.columns:
        raise UserException(f"{uri} has no Key column in its fileSchema; it cannot drive a backfill")
    if expected_bucket and expected_bucket != source_bucket:
        raise UserException(f"{uri} is an inventory of bucket {source_bucket}, not {expected_bucket}: "
                            "drop --bucket or pass the right inventory")
    created = manifest.creation_timestamp
    if created and str(created).isdigit():
        created = datetime.fromtimestamp(int(created) / 1000, UTC).isoformat(timespec="seconds")
    head = {"ETag": response["ETag"], "VersionId": response.get("VersionId")}
    return InventoryDelivery(manifest=manifest, head=head, source_bucket=source_bucket, created=created)


def iter_inventory(s3: Any, manifest: InventoryManifest) -> Iterator[ListedObject]:
    """Every row of an inventory's gzipped CSV files, streamed (keys are URL-encoded in the report)."""
    from rekpipe.inventory import iter_inventory_rows

    def open_object(bucket: str, key: str) -> Any:
        return s3.get_object(Bucket=bucket, Key=key)["Body"]

    for row in iter_inventory_rows(manifest, open_object, default_bucket=""):
        yield ListedObject(
            key=unquote_plus(row.key),
            size=int(row.value("Size") or 0),
            etag=row.value("ETag") or None,
            version_id=row.version_id,
            is_latest=row.value("IsLatest").lower() != "false",
            delete_marker=row.value("IsDeleteMarker").lower() == "true",
        )


# --- counts and estimate ---------------------------------------------------------------------------
@dataclass
class Tally:
    """Objects and bytes of one category."""

    objects: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.objects += 1
        self.bytes += size


@dataclass
class BackfillSummary:
    """Counts by what the pipeline will do with each object, and the estimated Rekognition cost.

    Parameters
    ----------
    settings: PipelineSettings
        Decide each object's operations, and so its price.
    video_mbps: float
        Assumed bit rate: a video's minutes are unknown until it is analysed, so they are guessed
        from its size.
    """

    settings: PipelineSettings
    video_mbps: float
    listed: Tally = field(default_factory=Tally)
    images: Tally = field(default_factory=Tally)
    videos: Tally = field(default_factory=Tally)
    rejected: dict[str, Tally] = field(default_factory=dict)
    skipped: dict[str, Tally] = field(default_factory=dict)
    noncurrent: int = 0
    image_cost: float = 0.0
    video_minutes: float = 0.0
    video_cost: float = 0.0
    reusable: Tally = field(default_factory=Tally)
    """Objects whose bytes another listed object already has (same single-part MD5 ETag and size)."""
    reuse_saving: float = 0.0
    _image_prices: dict[tuple[str, ...], float] = field(default_factory=dict, repr=False)
    _seen: set[int] = field(default_factory=set, repr=False)

    def add(self, listed: ListedObject) -> bool:
        """Count one object; True when it belongs in the manifest (``ingest_batch`` will record it)."""
        self.listed.add(listed.size)
        if listed.delete_marker:
            self._skip("delete marker", listed.size)
            return False
        reason = skip_reason(listed.key, listed.size)
        if reason:
            # "unsupported type (.txt); the pipeline analyses ..." -> group by the part before ";"
            self._skip(reason.split(";", 1)[0], listed.size)
            return False
        media_type = media_type_for(listed.key)
        assert media_type is not None  # skip_reason covers unsupported types
        if media_type == MEDIA_IMAGE:
            operations = operations_for(listed.key, self.settings.image_operations,
                                        self.settings.image_prefix_operations)
        else:
            operations = tuple(self.settings.video_operations)
        if not operations:
            self._skip(f"no {media_type} operations are configured", listed.size)
            return False
        if not listed.is_latest:
            self.noncurrent += 1
        failure = precheck_failure(media_type, listed.size)
        if failure:
            self.rejected.setdefault(failure[0], Tally()).add(listed.size)
            return True
        if media_type == MEDIA_IMAGE:
            self.images.add(listed.size)
            price = self._image_price(operations)
            self.image_cost += price
        else:
            self.videos.add(listed.size)
            minutes = listed.size * 8 / (self.video_mbps * 1_000_000) / _SECONDS_PER_MINUTE
            self.video_minutes += minutes
            price = minutes * sum(operation(name).video_price_per_minute for name in operations)
            self.video_cost += price
        if self.settings.reuse_results and self._seen_before(listed, media_type, operations):
            self.reusable.add(listed.size)
            self.reuse_saving += price
        return True

    def _seen_before(self, listed: ListedObject, media_type: str, operations: tuple[str, ...]) -> bool:
        """True when an earlier listed object has the same bytes (and operations), so this one's results
        would be copied, not paid for.

        A listing carries the ETag but no checksum values, so only single-part MD5 ETags are compared
        (``rekpipe_shared.content_identity``): the count is a lower bound, since multipart objects with a
        full-object checksum, and copies of objects analysed before this backfill, are reused too. Each
        object costs one 64-bit hash in memory (tens of MB per million objects).
        """
        identity = identities_from_head({"ETag": listed.etag or "", "ContentLength": listed.size})
        if not identity:
            return False
        digest = hashlib.sha256(f"{identity[0].token}|{media_type}|{','.join(operations)}".encode()).digest()
        fingerprint = int.from_bytes(digest[:8], "big")
        if fingerprint in self._seen:
            return True
        self._seen.add(fingerprint)
        return False

    def _skip(self, reason: str, size: int) -> None:
        self.skipped.setdefault(reason, Tally()).add(size)

    def _image_price(self, operations: tuple[str, ...]) -> float:
        if operations not in self._image_prices:
            self._image_prices[operations] = sum(operation(name).image_price for name in operations)
        return self._image_prices[operations]

    @property
    def included(self) -> int:
        """Objects written to the manifest."""
        return self.images.objects + self.videos.objects + sum(t.objects for t in self.rejected.values())

    @property
    def total_cost(self) -> float:
        return self.image_cost + self.video_cost

    def progress_line(self) -> str:
        from rekpipe.cli.console import plural

        return (f"Listed {plural(self.listed.objects, 'object')}: {plural(self.images.objects, 'image')}, "
                f"{plural(self.videos.objects, 'video')}, {self.listed.objects - self.included:,} skipped")

    def one_line(self) -> str:
        from rekpipe.cli.console import plural

        rejected = sum(t.objects for t in self.rejected.values())
        return (f"{plural(self.included, 'object')} to backfill ({plural(self.images.objects, 'image')}, "
                f"{plural(self.videos.objects, 'video')}, {rejected:,} recorded as failed without analysis), "
                f"{self.listed.objects - self.included:,} skipped; estimated Rekognition cost "
                f"${self.total_cost:,.2f} (videos guessed at {self.video_mbps:g} Mbit/s)"
                + (f"; {plural(self.reusable.objects, 'duplicate')} would reuse results, saving "
                   f"${self.reuse_saving:,.2f}" if self.reusable.objects else ""))

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable counts (for tests and scripts)."""
        return {
            "listed": vars(self.listed).copy(),
            "images": vars(self.images).copy(),
            "videos": vars(self.videos).copy(),
            "rejected": {code: vars(t).copy() for code, t in self.rejected.items()},
            "skipped": {reason: vars(t).copy() for reason, t in self.skipped.items()},
            "noncurrent_versions": self.noncurrent,
            "estimated_cost_usd": {"images": round(self.image_cost, 4), "videos": round(self.video_cost, 4),
                                   "total": round(self.total_cost, 4)},
            "estimated_video_minutes": round(self.video_minutes, 2),
            "assumed_video_mbps": self.video_mbps,
            "would_reuse": {**vars(self.reusable).copy(), "saved_usd": round(self.reuse_saving, 4)},
        }


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{size} B"


def print_estimate(summary: BackfillSummary, source: str) -> None:
    """The dry run's table on stdout, with the assumptions spelled out under it."""
    from rekpipe.cli.console import print_table, stdout_console

    settings = summary.settings
    image_ops = ", ".join(settings.image_operations) or "none"
    if settings.image_prefix_operations:
        image_ops += " (+ prefix rules)"
    rows: list[tuple[str, ...]] = [
        ("Images", f"{summary.images.objects:,}", human_bytes(summary.images.bytes), image_ops,
         f"${summary.image_cost:,.2f}"),
        ("Videos", f"{summary.videos.objects:,}", human_bytes(summary.videos.bytes),
         ", ".join(settings.video_operations) or "none",
         f"~${summary.video_cost:,.2f} (~{summary.video_minutes:,.1f} min)"),
    ]
    for code, tally in sorted(summary.rejected.items()):
        rows.append((f"Failed without analysis: {code}", f"{tally.objects:,}", human_bytes(tally.bytes), "-",
                     "$0.00"))
    for reason, tally in sorted(summary.skipped.items()):
        rows.append((f"Skipped: {reason}", f"{tally.objects:,}", human_bytes(tally.bytes), "-", "-"))
    rows.append(("Total listed", f"{summary.listed.objects:,}", human_bytes(summary.listed.bytes), "",
                 f"~${summary.total_cost:,.2f}"))
    if summary.settings.reuse_results:
        rows.append(("Would reuse results (duplicates)", f"{summary.reusable.objects:,}",
                     human_bytes(summary.reusable.bytes), "copied, not analysed", f"-${summary.reuse_saving:,.2f}"))
        rows.append(("Total to pay", "", "", "", f"~${summary.total_cost - summary.reuse_saving:,.2f}"))
    print_table(f"Backfill dry run: {source}", ("Objects", "Count", "Size", "Operations", "Estimated cost (USD)"),
                rows, right=("Count", "Size", "Estimated cost (USD)"))
    console = stdout_console()
    console.print(
        f"This is an estimate. Video minutes are guessed from size at {summary.video_mbps:g} Mbit/s, since a "
        "video's duration is only known once it is analysed; prices are the us-east-1 list prices (first volume "
        "tier) in the operation catalogue. Duplicates are objects with the same bytes as an earlier one in this "
        "listing (single-part MD5 ETag and size; a lower bound); their results would be copied from the first. "
        "Nothing was uploaded and no job was created.",
        markup=False, highlight=False,
    )
    if summary.noncurrent:
        console.print(f"{summary.noncurrent:,} rows are noncurrent versions: the job would analyse them too.",
                      markup=False)
