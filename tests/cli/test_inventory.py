"""rekpipe.inventory: the one S3 Inventory parser that the backfill plan and the Batch Operations runner share."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest

from rekpipe.inventory import InvalidInventoryManifestError, iter_inventory_rows, parse_inventory_manifest


def _data_file(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return gzip.compress(text.getvalue().encode())


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"files": []}', b'{"fileSchema": 3, "files": []}',
                                 b'{"fileSchema": "Bucket, Key"}'])
def test_inventory_manifest_without_schema_or_files_is_invalid(raw):
    # GIVEN a document that is not an inventory manifest.json
    # WHEN it is parsed
    # THEN it is refused, for each caller to word
    with pytest.raises(InvalidInventoryManifestError):
        parse_inventory_manifest(raw)


def test_inventory_manifest_reads_schema_and_buckets():
    # GIVEN a CSV inventory's manifest.json
    raw = json.dumps({"sourceBucket": "photos", "destinationBucket": "arn:aws:s3:::inventory", "fileFormat": "csv",
                      "fileSchema": "Bucket, Key ,VersionId", "creationTimestamp": "1714525200000",
                      "files": [{"key": "data/part-0.csv.gz"}]})

    # WHEN it is parsed
    manifest = parse_inventory_manifest(raw)

    # THEN the columns are trimmed, the destination is the bucket's name, and the format is CSV whatever its case
    assert manifest.columns == ("Bucket", "Key", "VersionId")
    assert (manifest.source_bucket, manifest.destination_bucket) == ("photos", "inventory")
    assert manifest.is_csv and manifest.file_format == "csv"
    assert manifest.creation_timestamp == "1714525200000"
    assert manifest.files == [{"key": "data/part-0.csv.gz"}]


def test_inventory_manifest_without_buckets_says_none():
    # GIVEN a manifest.json that names neither bucket, in Parquet
    manifest = parse_inventory_manifest(b'{"fileSchema": "Bucket, Key", "files": [], "fileFormat": "Parquet"}')

    # THEN the buckets are unknown, and it is not CSV
    assert manifest.source_bucket is None and manifest.destination_bucket is None
    assert not manifest.is_csv


def test_inventory_rows_stream_every_data_file_by_column_name():
    # GIVEN two data files, one with a short row, versions of S3's "null" and none, in the destination bucket
    files = {("inventory", "d/0.csv.gz"): _data_file([["photos", "a%20b.jpg", "v1"], ["photos", "short"]]),
             ("inventory", "d/1.csv.gz"): _data_file([["photos", "c.jpg", "null"], ["photos", "d.jpg", ""]])}
    manifest = parse_inventory_manifest(json.dumps({
        "destinationBucket": "arn:aws:s3:::inventory", "fileSchema": "Bucket, Key, VersionId",
        "files": [{"key": "d/0.csv.gz"}, {"key": "d/1.csv.gz"}]}))
    opened = []

    def open_object(bucket: str, key: str) -> io.BytesIO:
        opened.append((bucket, key))
        return io.BytesIO(files[(bucket, key)])

    # WHEN its rows are read
    rows = list(iter_inventory_rows(manifest, open_object, default_bucket="elsewhere"))

    # THEN each full row comes, the key still URL-encoded, "null" and empty versions as None
    assert [(row.bucket, row.key, row.version_id) for row in rows] == [
        ("photos", "a%20b.jpg", "v1"), ("photos", "c.jpg", None), ("photos", "d.jpg", None)]
    assert opened == list(files)
    # AND a column the schema lacks reads as empty
    assert rows[0].value("Size") == ""


def test_inventory_rows_default_to_the_given_bucket_without_destination():
    # GIVEN a manifest that names no destinationBucket
    manifest = parse_inventory_manifest(b'{"fileSchema": "Bucket, Key", "files": [{"key": "d/0.csv.gz"}]}')
    opened = []

    def open_object(bucket: str, key: str) -> io.BytesIO:
        opened.append((bucket, key))
        return io.BytesIO(_data_file([["photos", "a.jpg"]]))

    # WHEN its rows are read
    [row] = iter_inventory_rows(manifest, open_object, default_bucket="manifests")

    # THEN the data files are read from the bucket the caller gave
    assert opened == [("manifests", "d/0.csv.gz")] and row.key == "a.jpg" and row.version_id is None
