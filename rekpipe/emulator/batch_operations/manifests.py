"""Reading a job's manifest: a CSV manifest, or an S3 Inventory ``manifest.json`` and its data files.

Each row is a :class:`ManifestTask` with the key exactly as the manifest holds it (URL-encoded), as
AWS passes it on. The inventory's files are parsed by :mod:`rekpipe.inventory`, which the CLI's plan
of a backfill reads too; the errors here fail the job, as AWS fails a job whose manifest it cannot read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rekpipe.emulator.batch_operations.exceptions import ManifestError
from rekpipe.inventory import InvalidInventoryManifestError, iter_inventory_rows, parse_inventory_manifest
from rekpipe_shared.schema import CSV_MANIFEST_FORMAT, INVENTORY_MANIFEST_FORMAT

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True)
class ManifestLocation:
    """Where the manifest is and how to read it.

    Parameters
    ----------
    bucket, key: str
        The manifest object.
    format: str
        ``S3BatchOperations_CSV_20180820`` or ``S3InventoryReport_CSV_20161130``.
    fields: tuple[str, ...]
        CSV manifest columns: ``("Bucket", "Key")`` or ``("Bucket", "Key", "VersionId")``.
    version_id: str | None
        Version of the manifest object to read.
    """

    bucket: str
    key: str
    format: str = CSV_MANIFEST_FORMAT
    fields: tuple[str, ...] = ("Bucket", "Key")
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ManifestTask:
    """One manifest row: the key exactly as the manifest holds it (URL-encoded), as AWS passes it on."""

    bucket: str
    key: str
    version_id: str | None = None


def iter_manifest(s3: Any, manifest: ManifestLocation) -> Iterator[ManifestTask]:
    """Every task of a manifest, streamed from S3 (one row in memory at a time)."""
    if manifest.format == CSV_MANIFEST_FORMAT:
        yield from _iter_csv_manifest(s3, manifest)
    elif manifest.format == INVENTORY_MANIFEST_FORMAT:
        yield from _iter_inventory(s3, manifest)
    else:
        raise ManifestError(manifest.uri, f"unsupported manifest format {manifest.format!r}; use "
                                          f"{CSV_MANIFEST_FORMAT} or {INVENTORY_MANIFEST_FORMAT}")


def _get(s3: Any, bucket: str, key: str, version_id: str | None = None) -> Any:
    from botocore.exceptions import ClientError

    args = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
    try:
        return s3.get_object(**args)["Body"]
    except ClientError as error:
        details = error.response.get("Error", {})
        message = f": {details['Message']}" if details.get("Message") else ""
        raise ManifestError(f"s3://{bucket}/{key}", f"cannot be read ({details.get('Code', '')}{message})") from None


def _iter_csv_manifest(s3: Any, manifest: ManifestLocation) -> Iterator[ManifestTask]:
    fields = tuple(manifest.fields) or ("Bucket", "Key")
    if fields[:2] != ("Bucket", "Key") or len(fields) > 3 or (len(fields) == 3 and fields[2] != "VersionId"):
        raise ManifestError(manifest.uri, f"fields must be Bucket,Key[,VersionId], not {','.join(fields)}")
    body = _get(s3, manifest.bucket, manifest.key, manifest.version_id)
    with io.TextIOWrapper(body, encoding="utf-8-sig", newline="") as text:
        for line_number, row in enumerate(csv.reader(text), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2 or not row[0] or not row[1]:
                raise ManifestError(manifest.uri, f"line {line_number} has no Bucket,Key: {','.join(row)[:200]!r}")
            version = row[2] if len(fields) == 3 and len(row) > 2 and row[2] not in ("", "null") else None
            yield ManifestTask(bucket=row[0], key=row[1], version_id=version)


def _iter_inventory(s3: Any, manifest: ManifestLocation) -> Iterator[ManifestTask]:
    raw = _get(s3, manifest.bucket, manifest.key, manifest.version_id).read()
    try:
        inventory = parse_inventory_manifest(raw)
    except InvalidInventoryManifestError:
        raise ManifestError(manifest.uri, "is not an S3 Inventory manifest.json") from None
    if not inventory.is_csv or "Key" not in inventory.columns or "Bucket" not in inventory.columns:
        raise ManifestError(manifest.uri, "Batch Operations reads CSV inventory reports with Bucket and Key columns")

    def open_object(bucket: str, key: str) -> Any:
        return _get(s3, bucket, key)

    for row in iter_inventory_rows(inventory, open_object, default_bucket=manifest.bucket):
        yield ManifestTask(bucket=row.bucket, key=row.key, version_id=row.version_id)


__all__ = ["ManifestLocation", "ManifestTask", "iter_manifest"]
