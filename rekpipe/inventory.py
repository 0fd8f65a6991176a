"""S3 Inventory reports: one parser of a delivery's ``manifest.json`` and its gzipped CSV data files.

Both readers of an inventory use it: the CLI's plan of a backfill (``rekpipe backfill --inventory``,
which counts and checks the inventory before it creates the job) and the emulator's Batch
Operations runner (which runs a job over it, as AWS does). Each caller words its own errors, since
one talks to the operator and the other fails a job as AWS would; this module only says what the
files hold. It imports neither the CLI nor the emulator, and no AWS SDK: the caller opens the objects.

Format: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html>.
The columns of the data files are named, in order, by the manifest's ``fileSchema``; keys in CSV
reports are URL-encoded.

Example
-------
>>> manifest = parse_inventory_manifest(s3.get_object(Bucket=b, Key=k)["Body"].read())  # doctest: +SKIP
>>> for row in iter_inventory_rows(manifest, open_object, default_bucket=b):  # doctest: +SKIP
...     row.bucket, row.key, row.version_id
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

NO_VERSION = "null"
"""What S3 writes for the version of an object put while versioning was off."""


class InvalidInventoryManifestError(ValueError):
    """The document is not an S3 Inventory ``manifest.json`` (not JSON, or no ``fileSchema`` or ``files``)."""


@dataclass(frozen=True)
class InventoryManifest:
    """The parts of one inventory delivery's ``manifest.json`` that a backfill reads.

    Parameters
    ----------
    document: dict[str, Any]
        The whole parsed ``manifest.json``.
    columns: tuple[str, ...]
        The data files' columns, from ``fileSchema`` (``Bucket, Key, VersionId, ...``).
    files: list[Any]
        The data files, as listed (each a dict with its ``key``).
    """

    document: dict[str, Any]
    columns: tuple[str, ...]
    files: list[Any]

    @property
    def file_format(self) -> Any:
        """``fileFormat`` as written (``CSV``, ``ORC`` or ``Parquet``), or None."""
        return self.document.get("fileFormat")

    @property
    def is_csv(self) -> bool:
        """Whether the data files are CSV, the only format Batch Operations reads."""
        return str(self.document.get("fileFormat", "")).upper() == "CSV"

    @property
    def source_bucket(self) -> str | None:
        """The inventoried bucket (``sourceBucket``), or None when the manifest does not say."""
        return str(self.document["sourceBucket"]) if "sourceBucket" in self.document else None

    @property
    def destination_bucket(self) -> str | None:
        """The bucket the data files are in (name, from the ``destinationBucket`` ARN), or None."""
        destination = self.document.get("destinationBucket")
        return None if destination is None else str(destination).rsplit(":", 1)[-1]

    @property
    def creation_timestamp(self) -> Any:
        """``creationTimestamp`` as written (milliseconds since the epoch, as a string), or None."""
        return self.document.get("creationTimestamp")


def parse_inventory_manifest(raw: bytes | str) -> InventoryManifest:
    """The manifest from the bytes of a ``manifest.json``, or :class:`InvalidInventoryManifestError`."""
    try:
        document = json.loads(raw)
        columns = tuple(column.strip() for column in document["fileSchema"].split(","))
        files = document["files"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidInventoryManifestError("not an S3 Inventory manifest.json") from None
    return InventoryManifest(document=document, columns=columns, files=files)


class InventoryRow:
    """One row of a data file, read by column name; a column the schema lacks reads as ``""``."""

    __slots__ = ("_column", "_row")

    def __init__(self, row: list[str], column: dict[str, int]) -> None:
        self._row = row
        self._column = column

    def value(self, name: str) -> str:
        """The cell of column ``name``, or ``""`` when the inventory has no such column."""
        return self._row[self._column[name]] if name in self._column else ""

    @property
    def bucket(self) -> str:
        return self.value("Bucket")

    @property
    def key(self) -> str:
        """The key as the report holds it: URL-encoded (as Batch Operations passes it on)."""
        return self.value("Key")

    @property
    def version_id(self) -> str | None:
        """The version, or None for no column, an empty cell or S3's ``null`` version."""
        version = self.value("VersionId")
        return version if version and version != NO_VERSION else None


def iter_inventory_rows(manifest: InventoryManifest, open_object: Callable[[str, str], IO[bytes]], *,
                        default_bucket: str) -> Iterator[InventoryRow]:
    """Every row of the manifest's gzipped CSV data files, streamed (one row in memory at a time).

    Parameters
    ----------
    manifest: InventoryManifest
        The delivery's parsed ``manifest.json``.
    open_object: Callable[[str, str], IO[bytes]]
        ``(bucket, key) -> body`` of a data file; its errors are the caller's to word.
    default_bucket: str
        Where the data files are when the manifest names no ``destinationBucket``.

    Rows with fewer cells than the schema has columns are skipped.
    """
    column = {name: index for index, name in enumerate(manifest.columns)}
    bucket = manifest.destination_bucket
    if bucket is None:
        bucket = default_bucket
    for data_file in manifest.files:
        body = open_object(bucket, data_file["key"])
        with gzip.GzipFile(fileobj=body) as unzipped, io.TextIOWrapper(unzipped, encoding="utf-8", newline="") as text:
            for row in csv.reader(text):
                if len(row) >= len(manifest.columns):
                    yield InventoryRow(row, column)


__all__ = [
    "InvalidInventoryManifestError",
    "InventoryManifest",
    "InventoryRow",
    "iter_inventory_rows",
    "parse_inventory_manifest",
]
