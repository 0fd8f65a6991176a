"""rekpipe outputs on moto: the output location of an S3 object, from its version and its task's run."""

from __future__ import annotations

import hashlib
import json

import boto3
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe_shared.tasks import NewTask, TaskTable

KEY = "archive/2019/beach day+é.png"


def _analysed(pipeline, key: str, version_id: str | None, etag: str, *, runs: int) -> NewTask:
    """A task that SUCCEEDED on its ``runs``-th run, with its manifest URI as analyze_image records it."""
    task = NewTask(bucket=pipeline.content_bucket, key=key, version_id=version_id, etag=etag, size=10,
                   media_type="image", operations=("labels",), source="s3")
    tasks = TaskTable(pipeline.task_table)
    tasks.create(task)
    for run in range(1, runs + 1):
        tasks.mark_queued(task.task_id)
        tasks.claim(task.task_id, lease_seconds=60)
        status = "SUCCEEDED" if run == runs else "FAILED"
        tasks.finish(task.task_id, status, manifest_uri=f"s3://{pipeline.output_bucket}/run-{run}/manifest.json")
        if run < runs:
            tasks.requeue(task.task_id)
    return task


def test_outputs_prints_the_current_versions_run_prefix(pipeline):
    # GIVEN a versioned object analysed twice (a re-run), and an older version of it
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=pipeline.content_bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=pipeline.content_bucket, Key=KEY, Body=b"old")["VersionId"]
    put = s3.put_object(Bucket=pipeline.content_bucket, Key=KEY, Body=b"new")
    _analysed(pipeline, KEY, put["VersionId"], put["ETag"].strip('"'), runs=2)

    # WHEN its output location is asked for, as lines and as JSON, and for the older version
    lines = CliRunner().invoke(main, ["outputs", f"s3://{pipeline.content_bucket}/{KEY}"])
    as_json = CliRunner().invoke(main, ["outputs", f"s3://{pipeline.content_bucket}/{KEY}", "--json"])
    older = CliRunner().invoke(main, ["outputs", f"s3://{pipeline.content_bucket}/{KEY}?versionId={old}", "--json"])

    # THEN the current version's run-002 prefix, manifest and the key's latest.json are printed
    assert lines.exit_code == 0, lines.output
    root = f"s3://{pipeline.output_bucket}/sync/{pipeline.content_bucket}/{KEY}/"
    prefix = f"{root}version-{put['VersionId']}/run-002/"
    assert f"Results:  {prefix}" in lines.stdout
    assert f"Latest:   {root}latest.json" in lines.stdout
    assert "SUCCEEDED (run 2)" in lines.stdout
    location = json.loads(as_json.stdout)
    assert location["results_prefix"] == prefix and location["run"] == 2 and location["status"] == "SUCCEEDED"
    assert location["source"] == f"s3://{pipeline.content_bucket}/{KEY}?versionId={put['VersionId']}"
    assert location["manifest"] == f"s3://{pipeline.output_bucket}/run-2/manifest.json"
    # AND an older version that was never analysed gets the prefix its first run would write to
    assert older.exit_code == 0, older.output
    unanalysed = json.loads(older.stdout)
    assert unanalysed["status"] is None and unanalysed["results_prefix"] == f"{root}version-{old}/run-001/"


def test_outputs_unversioned_and_long_keys(pipeline):
    # GIVEN an unversioned bucket's object, and a key too long for the readable layout
    s3 = boto3.client("s3")
    long_key = "x/" + "ü" * 500 + ".jpg"
    etags = {key: s3.put_object(Bucket=pipeline.existing_bucket, Key=key, Body=b"img")["ETag"].strip('"')
             for key in ("plain.jpg", long_key)}

    # WHEN each is looked up
    plain = json.loads(CliRunner().invoke(main, ["outputs", f"s3://{pipeline.existing_bucket}/plain.jpg",
                                                 "--json"]).stdout)
    long_ = json.loads(CliRunner().invoke(main, ["outputs", f"s3://{pipeline.existing_bucket}/{long_key}",
                                                 "--json"]).stdout)

    # THEN the ETag names the version, and the long key falls back to _long-keys/<bucket>/<sha256>
    assert plain["results_prefix"] == (f"s3://{pipeline.output_bucket}/sync/{pipeline.existing_bucket}/plain.jpg/"
                                       f"etag-{etags['plain.jpg']}/run-001/")
    digest = hashlib.sha256(long_key.encode()).hexdigest()
    assert long_["long_key"] is True
    assert long_["results_prefix"] == (f"s3://{pipeline.output_bucket}/sync/_long-keys/{pipeline.existing_bucket}/"
                                       f"{digest}/etag-{etags[long_key]}/run-001/")


def test_outputs_bad_uri_and_missing_object_are_user_errors(pipeline):
    # GIVEN / WHEN a malformed URI, a missing object, and a file type the pipeline does not analyse
    bad = CliRunner().invoke(main, ["outputs", "my-bucket/key.jpg"])
    missing = CliRunner().invoke(main, ["outputs", f"s3://{pipeline.content_bucket}/nope.jpg"])
    text = CliRunner().invoke(main, ["outputs", f"s3://{pipeline.content_bucket}/notes.txt"])

    # THEN each exits 1 with one line saying what to do
    assert bad.exit_code == 1 and "write it as s3://bucket/key" in bad.stderr
    assert missing.exit_code == 1 and "--version-id" in missing.stderr
    assert text.exit_code == 1 and "not an image or video" in text.stderr
