"""rekpipe backfill on moto: counts and estimate, the CSV manifest, the Batch Operations request."""

from __future__ import annotations

import csv
import gzip
import io
import json
from urllib.parse import unquote, unquote_plus

import boto3
import pytest
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe.cli.backfill import do_cli
from rekpipe.cli.backfill_plan import iter_bucket
from rekpipe.cli.exceptions import UserException
from rekpipe.cli.stack import Clients, GlobalOptions
from stack.storage import BATCH_REPORT_PREFIX, INVENTORY_PREFIX, MANIFEST_PREFIX

AWKWARD_KEYS = [
    "photos/summer 2019/beach day.jpg",
    "photos/ünïcödé/東京 夜.png",
    "photos/a+b=c.jpg",
    "photos/100% real, with comma.jpeg",
    "photos/[not markup].jpg",
    "photos/UPPER.JPG",
]
VIDEO_BYTES = 3_750_000
"""30 Mbit: 6 seconds, 0.1 minute, at the default 5 Mbit/s."""


@pytest.fixture
def mixed_bucket(pipeline, put_objects):
    """A few hundred objects: images, videos, awkward keys, unsupported types, folders, empty files."""
    sizes = {f"photos/{i:03d}.jpg": 1000 for i in range(240)}
    sizes.update({key: 2000 for key in AWKWARD_KEYS})
    sizes.update({f"photos/empty-{i}.jpg": 0 for i in range(2)})
    sizes.update({f"videos/clip {i}.mp4": VIDEO_BYTES for i in range(3)})
    sizes["videos/Z+1.MOV"] = VIDEO_BYTES
    sizes.update({f"docs/{i}.txt": 10 for i in range(30)})
    sizes.update({f"gifs/{i}.gif": 10 for i in range(10)})
    sizes.update({f"photos/folder{i}/": 0 for i in range(3)})
    put_objects(pipeline.existing_bucket, sizes)
    return sizes


def test_backfill_dry_run_counts_and_estimates_cost(pipeline, mixed_bucket, s3control):
    # GIVEN a bucket of 295 objects: 246 images, 2 empty images, 4 videos, 40 unsupported, 3 folder markers
    clients = Clients(GlobalOptions(), overrides={"s3control": s3control})

    # WHEN a dry run counts it with the default settings (labels + moderation)
    result = do_cli(GlobalOptions(), bucket=pipeline.existing_bucket, dry_run=True, clients=clients)

    # THEN every object is counted once, by what the pipeline will do with it, and priced from the catalogue
    counts = result.summary.to_dict()
    assert counts["listed"] == {"objects": 295, "bytes": 240 * 1000 + 6 * 2000 + 4 * VIDEO_BYTES + 400}
    assert counts["images"]["objects"] == 246
    assert counts["videos"] == {"objects": 4, "bytes": 4 * VIDEO_BYTES}
    assert counts["rejected"] == {"EmptyObject": {"objects": 2, "bytes": 0}}
    assert counts["skipped"]["unsupported type (.txt)"]["objects"] == 30
    assert counts["skipped"]["unsupported type (.gif)"]["objects"] == 10
    assert counts["skipped"]["folder marker"]["objects"] == 3
    assert counts["estimated_video_minutes"] == pytest.approx(0.4)
    assert counts["estimated_cost_usd"]["images"] == pytest.approx(246 * 0.002)
    assert counts["estimated_cost_usd"]["videos"] == pytest.approx(0.4 * 0.20)
    # AND nothing was uploaded or started
    assert result.job_id is None
    assert s3control.requests == []
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=pipeline.inventory_bucket)


def test_backfill_dry_run_counts_duplicates_that_would_reuse_results(pipeline, s3control, tmp_path):
    # GIVEN 7 distinct images and 3 byte-for-byte copies of one of them under other keys
    s3 = boto3.client("s3")
    for i in range(7):
        s3.put_object(Bucket=pipeline.existing_bucket, Key=f"photos/{i}.jpg", Body=f"image {i}".encode() * 50)
    for i in range(3):
        s3.put_object(Bucket=pipeline.existing_bucket, Key=f"copies/{i}.jpg", Body=b"image 0" * 50)
    clients = Clients(GlobalOptions(), overrides={"s3control": s3control})

    # WHEN a dry run counts them, with reuse on (the default) and then off
    on = do_cli(GlobalOptions(), bucket=pipeline.existing_bucket, dry_run=True, clients=clients).summary.to_dict()
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"reuse_results": False}))
    off = do_cli(GlobalOptions(), bucket=pipeline.existing_bucket, dry_run=True, clients=clients,
                 settings_json=settings).summary.to_dict()

    # THEN the 3 copies would reuse results, saving their labels + moderation price; with reuse off none would
    assert on["images"]["objects"] == 10
    assert on["would_reuse"] == {"objects": 3, "bytes": 3 * 350, "saved_usd": pytest.approx(3 * 0.002)}
    assert off["would_reuse"]["objects"] == 0


def test_backfill_dry_run_prints_table_on_stdout_and_progress_on_stderr(pipeline, mixed_bucket):
    # GIVEN the mixed bucket
    # WHEN the dry run is run from the command line
    result = CliRunner().invoke(main, ["backfill", "--bucket", pipeline.existing_bucket, "--dry-run"])

    # THEN the estimate table is on stdout, saying plainly that it is an estimate
    assert result.exit_code == 0, result.output
    assert "Backfill dry run" in result.stdout
    assert "246" in result.stdout and "Skipped: unsupported type (.txt)" in result.stdout
    assert "This is an estimate" in result.stdout and "5 Mbit/s" in result.stdout
    # AND the listing progress is one line rewritten with \r on stderr, never on stdout
    assert "\r" in result.stderr and "Listed 295 objects:" in result.stderr
    assert "\r" not in result.stdout and "Listed" not in result.stdout


def test_backfill_dry_run_uses_settings_json(pipeline, mixed_bucket, tmp_path):
    # GIVEN settings with only labels on images, faces under photos/summer, and no video analysis
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"image_operations": ["labels"], "video_operations": [],
                                    "image_prefix_operations": {"photos/summer": ["faces", "labels"]}}))

    # WHEN the dry run prices the bucket with them
    result = do_cli(GlobalOptions(), bucket=pipeline.existing_bucket, dry_run=True, settings_json=settings)

    # THEN each image is priced with its own operations and videos are skipped
    counts = result.summary.to_dict()
    assert counts["estimated_cost_usd"]["images"] == pytest.approx(245 * 0.001 + 1 * 0.002)
    assert counts["videos"]["objects"] == 0
    assert counts["skipped"]["no video operations are configured"]["objects"] == 4


def test_backfill_bad_settings_json_is_user_error(pipeline, tmp_path):
    # GIVEN a settings file naming an operation that does not exist
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"image_operations": ["lables"]}))

    # WHEN it is used
    with pytest.raises(UserException) as raised:
        do_cli(GlobalOptions(), bucket=pipeline.existing_bucket, dry_run=True, settings_json=settings)

    # THEN the message names the file and the setting
    assert "settings.json" in str(raised.value.message) and "image_operations" in raised.value.message


def test_backfill_creates_manifest_and_job(pipeline, s3control):
    # GIVEN a versioned bucket with awkward keys, an overwritten object, a deleted one and an unsupported one
    s3 = boto3.client("s3")
    bucket = pipeline.existing_bucket
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    latest = {}
    for key in AWKWARD_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"old")
        latest[key] = s3.put_object(Bucket=bucket, Key=key, Body=b"new")["VersionId"]
    s3.put_object(Bucket=bucket, Key="photos/deleted.jpg", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="photos/deleted.jpg")
    s3.put_object(Bucket=bucket, Key="photos/readme.txt", Body=b"x")
    clients = Clients(GlobalOptions(), overrides={"s3control": s3control})

    # WHEN the backfill runs without a prompt
    result = do_cli(GlobalOptions(), bucket=bucket, prefix="photos/", yes=True, priority=42, clients=clients)

    # THEN the manifest in the inventory bucket lists the current version of each supported object, URL-encoded
    assert result.manifest_uri.startswith(f"s3://{pipeline.inventory_bucket}/{MANIFEST_PREFIX}")
    assert result.manifest_uri.endswith(f"-{bucket}.csv")
    manifest_key = result.manifest_uri.split("/", 3)[3]
    body = s3.get_object(Bucket=pipeline.inventory_bucket, Key=manifest_key)["Body"].read()
    lines = body.decode("ascii").splitlines()  # URL-encoding leaves only ASCII
    rows = [line.split(",") for line in lines]
    assert all(len(row) == 3 for row in rows)
    assert all("+" not in row[1] and " " not in row[1] for row in rows)
    assert {unquote_plus(row[1]): row[2] for row in rows} == latest
    assert {unquote(row[1]) for row in rows} == set(latest)
    assert {row[0] for row in rows} == {bucket}
    # AND create_job got a LambdaInvoke job over that manifest, reporting every task to the inventory bucket
    [request] = s3control.requests
    head = s3.head_object(Bucket=pipeline.inventory_bucket, Key=manifest_key)
    assert request["AccountId"] == pipeline.account
    assert request["Operation"] == {"LambdaInvoke": {
        "FunctionArn": pipeline.ingest_batch_arn, "InvocationSchemaVersion": "2.0",
        "UserArguments": {"source": "rekpipe-backfill", "bucket": bucket, "prefix": "photos/"}}}
    assert request["Manifest"] == {
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key", "VersionId"]},
        "Location": {"ObjectArn": f"arn:aws:s3:::{pipeline.inventory_bucket}/{manifest_key}",
                     "ETag": head["ETag"].strip('"'), "ObjectVersionId": head["VersionId"]},
    }
    assert request["Report"] == {"Bucket": f"arn:aws:s3:::{pipeline.inventory_bucket}",
                                 "Format": "Report_CSV_20180820", "Enabled": True, "Prefix": BATCH_REPORT_PREFIX.rstrip("/"),
                                 "ReportScope": "AllTasks"}
    assert request["RoleArn"] == pipeline.batch_role_arn
    assert request["ConfirmationRequired"] is False
    assert request["Priority"] == 42
    assert request["ClientRequestToken"]
    assert result.job_id == "job-0001"


def test_backfill_unversioned_bucket_manifest_has_two_columns(pipeline, put_objects, s3control, capsys):
    # GIVEN an unversioned bucket
    put_objects(pipeline.content_bucket, {"a b.jpg": 5, "c.mp4": 5})
    clients = Clients(GlobalOptions(), overrides={"s3control": s3control})

    # WHEN it is backfilled
    result = do_cli(GlobalOptions(), bucket=pipeline.content_bucket, yes=True, clients=clients)

    # THEN the manifest has Bucket,Key rows only and the job says so
    key = result.manifest_uri.split("/", 3)[3]
    body = boto3.client("s3").get_object(Bucket=pipeline.inventory_bucket, Key=key)["Body"].read().decode()
    assert sorted(body.splitlines()) == [f"{pipeline.content_bucket},a%20b.jpg", f"{pipeline.content_bucket},c.mp4"]
    assert s3control.requests[0]["Manifest"]["Spec"]["Fields"] == ["Bucket", "Key"]
    # AND stdout carries the job id and how to watch it
    out = capsys.readouterr().out
    assert "Created S3 Batch Operations job job-0001 for 2 objects." in out
    assert f"aws s3control describe-job --account-id {pipeline.account} --job-id job-0001 --region us-east-1" in out
    assert "rekpipe --region us-east-1 status" in out


def test_backfill_streams_3000_objects_page_by_page(pipeline, put_objects):
    # GIVEN 3,000 objects, which S3 lists in pages of 1,000
    put_objects(pipeline.content_bucket, {f"p/{i:05d}.jpg": 10 for i in range(3000)})
    s3 = boto3.client("s3")
    pages = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: pages.append(1))

    # WHEN the listing is read one object at a time
    listing = iter_bucket(s3, pipeline.content_bucket, "p/", versioned=False)
    first = next(listing)

    # THEN only the first page has been fetched so far (a generator, not a list of millions)
    assert first.key == "p/00000.jpg"
    assert len(pages) == 1
    # AND reading on fetches the rest, every object once
    assert 1 + sum(1 for _ in listing) == 3000
    assert len(pages) == 3
    # AND the command counts them all through the same listing
    assert do_cli(GlobalOptions(), bucket=pipeline.content_bucket, dry_run=True).summary.images.objects == 3000


def test_backfill_without_yes_asks_and_stops_on_no(pipeline, put_objects):
    # GIVEN a bucket with something to backfill
    put_objects(pipeline.content_bucket, {"a.jpg": 5})

    # WHEN the user answers no at the prompt
    result = CliRunner().invoke(main, ["backfill", "--bucket", pipeline.content_bucket], input="n\n")

    # THEN nothing is uploaded and the command stops
    assert result.exit_code == 1
    assert "Create a Batch Operations job for 1 object " in result.stderr
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=pipeline.inventory_bucket)


def test_backfill_empty_prefix_creates_no_job(pipeline, put_objects, s3control, capsys):
    # GIVEN a prefix holding only unsupported objects
    put_objects(pipeline.content_bucket, {"docs/a.txt": 5})
    clients = Clients(GlobalOptions(), overrides={"s3control": s3control})

    # WHEN it is backfilled
    result = do_cli(GlobalOptions(), bucket=pipeline.content_bucket, prefix="docs/", yes=True, clients=clients)

    # THEN no job is created and the user is told why
    assert result.job_id is None and s3control.requests == []
    assert "Nothing to backfill" in capsys.readouterr().err


def test_backfill_missing_bucket_is_user_error(pipeline):
    # GIVEN a bucket name that does not exist
    # WHEN it is backfilled
    result = CliRunner().invoke(main, ["backfill", "--bucket", "no-such-bucket", "--dry-run"])

    # THEN one line names the bucket and what to check
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Bucket no-such-bucket was not found: check --bucket (and --region/--profile)")
    assert "Traceback" not in result.output


def _put_inventory(pipeline, rows, *, schema="Bucket, Key, Size", file_format="CSV", under=INVENTORY_PREFIX):
    s3 = boto3.client("s3")
    data = io.StringIO()
    csv.writer(data, lineterminator="\n").writerows(rows)
    data_key = f"{under}source/BackfillManifest/data/part-0.csv.gz"
    s3.put_object(Bucket=pipeline.inventory_bucket, Key=data_key, Body=gzip.compress(data.getvalue().encode()))
    manifest = {
        "sourceBucket": pipeline.existing_bucket,
        "destinationBucket": f"arn:aws:s3:::{pipeline.inventory_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": "1714525200000",
        "fileFormat": file_format,
        "fileSchema": schema,
        "files": [{"key": data_key, "size": 1, "MD5checksum": "x"}],
    }
    key = f"{under}source/BackfillManifest/2024-05-01T01-00Z/manifest.json"
    put = s3.put_object(Bucket=pipeline.inventory_bucket, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{pipeline.inventory_bucket}/{key}", put


def test_backfill_inventory_creates_job_from_inventory_manifest(pipeline, s3control):
    # GIVEN an S3 Inventory report (CSV) of the existing bucket
    uri, put = _put_inventory(pipeline, [[pipeline.existing_bucket, "a%20b.jpg", "10"]])
    clients = Clients(GlobalOptions(), overrides={"s3control": s3control})

    # WHEN the backfill uses it
    result = do_cli(GlobalOptions(), bucket=None, inventory=uri, yes=True, clients=clients)

    # THEN the job reads the inventory's manifest.json as an S3 Inventory manifest, nothing is listed
    [request] = s3control.requests
    key = uri.split("/", 3)[3]
    assert request["Manifest"] == {
        "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
        "Location": {"ObjectArn": f"arn:aws:s3:::{pipeline.inventory_bucket}/{key}",
                     "ETag": put["ETag"].strip('"'), "ObjectVersionId": put["VersionId"]},
    }
    assert request["Operation"]["LambdaInvoke"]["UserArguments"]["bucket"] == pipeline.existing_bucket
    assert result.job_id == "job-0001"


def test_backfill_inventory_outside_the_role_grant_is_user_error(pipeline, s3control):
    # GIVEN an S3 Inventory report delivered outside the prefix the Batch Operations role may read
    uri, _ = _put_inventory(pipeline, [[pipeline.existing_bucket, "a.jpg", "10"]], under="elsewhere/")
    clients = Clients(GlobalOptions(), overrides={"s3control": s3control})

    # WHEN the backfill is asked to use it
    with pytest.raises(UserException) as raised:
        do_cli(GlobalOptions(), bucket=None, inventory=uri, yes=True, clients=clients)

    # THEN no job is created, and the message names the readable location
    assert s3control.requests == []
    assert f"s3://{pipeline.inventory_bucket}/{INVENTORY_PREFIX}" in raised.value.message
    assert "would fail to read it" in raised.value.message


def test_backfill_inventory_dry_run_counts_rows(pipeline):
    # GIVEN an all-versions inventory with an encoded key, a noncurrent version, a delete marker and a text file
    rows = [
        [pipeline.existing_bucket, "summer+2019%2Fa%2Bb.jpg", "v2", "true", "false", "100"],
        [pipeline.existing_bucket, "summer+2019%2Fa%2Bb.jpg", "v1", "false", "false", "100"],
        [pipeline.existing_bucket, "gone.jpg", "v3", "true", "true", ""],
        [pipeline.existing_bucket, "notes.txt", "v4", "true", "false", "5"],
    ]
    uri, _ = _put_inventory(pipeline, rows, schema="Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size")

    # WHEN it is counted
    result = do_cli(GlobalOptions(), bucket=None, inventory=uri, dry_run=True)

    # THEN both versions count (Batch Operations would analyse both) and the rest is skipped by reason
    counts = result.summary.to_dict()
    assert counts["images"]["objects"] == 2
    assert counts["noncurrent_versions"] == 1
    assert counts["skipped"]["delete marker"]["objects"] == 1
    assert counts["skipped"]["unsupported type (.txt)"]["objects"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--inventory", "s3://x/manifest.json", "--prefix", "a/"], "--prefix cannot be combined with --inventory"),
    ([], "Nothing to backfill: pass --bucket"),
    (["--inventory", "https://example.com/manifest.json"], "--inventory must be an S3 object URI"),
])
def test_backfill_bad_arguments_are_user_errors(pipeline, args, message):
    # GIVEN arguments that cannot describe a backfill
    # WHEN the command runs
    result = CliRunner().invoke(main, ["backfill", "--dry-run", *args])

    # THEN it exits 1 with one line saying what to pass
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # the echo of resolved values, then the error


def test_backfill_parquet_inventory_is_user_error(pipeline):
    # GIVEN an inventory in Parquet format, which Batch Operations cannot read
    uri, _ = _put_inventory(pipeline, [], file_format="Parquet")

    # WHEN it is used
    result = CliRunner().invoke(main, ["backfill", "--inventory", uri, "--yes"])

    # THEN the error says so and what to do
    assert result.exit_code == 1
    assert "only reads CSV inventory reports" in result.stderr


def test_backfill_local_endpoint_reaches_s3control_host_and_explains_missing_batch_operations(aws_env):
    # GIVEN an endpoint (a local emulator) that answers 404 to S3 Control, recorded as it is sent
    from botocore.awsrequest import AWSResponse

    from rekpipe.cli.backfill import _submit

    endpoint = "http://127.0.0.1:4599"
    clients = Clients(GlobalOptions(endpoint_url=endpoint))
    s3control = clients.client("s3control")
    sent = []

    class _Raw:
        def stream(self, **_):
            yield b""

    def answer(request, **_):
        sent.append(request)
        return AWSResponse(request.url, 404, {}, _Raw())

    s3control.meta.events.register("before-send", answer)
    request = {"AccountId": "123456789012", "Operation": {"LambdaInvoke": {"FunctionArn": "arn:f"}},
               "Report": {"Enabled": False}, "ClientRequestToken": "t", "Priority": 1, "RoleArn": "arn:r",
               "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                            "Location": {"ObjectArn": "arn:aws:s3:::b/k", "ETag": "e"}}}

    # WHEN the job is submitted there
    with pytest.raises(UserException) as raised:
        _submit(clients, request, "s3://inventory/backfill/manifests/m.csv")

    # THEN the request went to the endpoint's own host (not <account>.127.0.0.1), the account in its header
    assert sent[0].url == f"{endpoint}/v20180820/jobs"
    assert sent[0].headers["x-amz-account-id"] == b"123456789012"
    # AND the user learns the emulator lacks Batch Operations, and where the manifest is
    assert raised.value.message.startswith(f"{endpoint} does not implement S3 Batch Operations (CreateJob")
    assert "s3://inventory/backfill/manifests/m.csv" in raised.value.message
