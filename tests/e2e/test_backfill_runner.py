"""S3 Batch Operations on the embedded runtime: the emulator's runner invoking the real ``ingest_batch``.

The big test backfills 300 objects (images, videos, unsupported files, empty files and keys
that are in the manifest but not in the bucket) and checks the completion report, the task table's
counters and that a re-run adds nothing. The last tests check the runner's retry rules with a fake
function, without the runtime.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from typing import Any

import boto3
import pytest

from rekpipe.cli.backfill_plan import ListedObject, manifest_row
from rekpipe.emulator.batch_operations import (
    FUNCTION_ERROR,
    INVENTORY_MANIFEST_FORMAT,
    BatchJobSpec,
    BatchOperationsRunner,
    BatchOperationsService,
    ManifestLocation,
    ReportSpec,
    read_report,
)
from rekpipe.samples import jpeg_bytes, mp4_bytes, png_bytes
from rekpipe_shared.tasks import TaskTable
from stack.storage import INVENTORY_PREFIX
from tests.support.runtime import E2E_SETTINGS, RuntimeDefaults

IMAGES, VIDEOS, EMPTY, UNSUPPORTED, MISSING = 250, 10, 5, 20, 15
TOTAL = IMAGES + VIDEOS + EMPTY + UNSUPPORTED + MISSING


@pytest.fixture
def runtime_defaults() -> RuntimeDefaults:
    """``make_runtime`` (tests/conftest.py) starts from these: its settings run one operation per object, so the
    downstream analysis does not drown the ingest path being measured.

    Every kind of row is here; the bench (`bench/`) measures ingest at scale, so the suite needs no more.
    """
    return RuntimeDefaults(settings=E2E_SETTINGS, simulator={"seed": 5, "job_duration": (1.0, 2.0)})


def _backfill_source(bucket: str) -> tuple[list[str], dict[str, str]]:
    """Objects put in the (unwatched) backfill bucket; returns the manifest rows and each key's expected code."""
    s3 = boto3.client("s3")
    image, photo, video = jpeg_bytes(1), png_bytes(2), mp4_bytes(3)
    bodies: dict[str, bytes] = {}
    for n in range(IMAGES):
        bodies[f"archive/{n // 100:02d}/photo {n:04d}+{'é' if n % 7 == 0 else ''}.{'png' if n % 5 == 0 else 'jpg'}"] = (
            photo if n % 5 == 0 else image)
    for n in range(VIDEOS):
        bodies[f"archive/videos/clip {n}.mp4"] = video
    for n in range(EMPTY):
        bodies[f"archive/empty/zero {n}.jpg"] = b""
    for n in range(UNSUPPORTED):
        bodies[f"archive/docs/notes %{n}.txt"] = b"not media"
    rows, expected = [], {}
    for key, body in bodies.items():
        version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
        rows.append(manifest_row(bucket, ListedObject(key=key, size=len(body), version_id=version), versioned=True))
        expected[key] = "PermanentFailure" if key.endswith(".txt") else "Succeeded"
    for n in range(MISSING):
        key = f"archive/deleted/gone {n}.jpg"
        rows.append(manifest_row(bucket, ListedObject(key=key, size=1), versioned=True))
        expected[key] = "PermanentFailure"
    return rows, expected


def _report_codes(rows: list[dict[str, str]]) -> dict[str, str]:
    """Key (decoded) -> Succeeded / PermanentFailure / TemporaryFailure, from report rows."""
    from urllib.parse import unquote_plus

    return {unquote_plus(row["Key"]): ("Succeeded" if row["TaskStatus"] == "succeeded" else row["ErrorCode"])
            for row in rows}


@pytest.mark.e2e
def test_batch_runner_backfill_of_300_objects_reports_every_task_and_reruns_add_nothing(make_runtime):
    # GIVEN 300 manifest rows: images, videos, empty files, unsupported files and keys no longer in the bucket
    runtime = make_runtime()
    # The analysis is not this test's subject: its pollers are stopped, so 260 analyses do not starve the
    # ingestion and the stream-kept counts being measured (on two loaded cores they made the wait 100 s)
    for poller in runtime.event_sources:
        if poller.function_name in (runtime.function_name("analyze_image"), runtime.function_name("start_video_workflow")):
            poller.stop()
    outputs = runtime.outputs
    source, reports = outputs["ExistingContentBucketName"], outputs["InventoryBucketName"]
    rows, expected = _backfill_source(source)
    assert len(rows) == TOTAL == 300
    manifest_key, report_prefix = f"{outputs['ManifestPrefix']}three-hundred.csv", outputs["BatchReportPrefix"].rstrip("/")
    boto3.client("s3").put_object(Bucket=reports, Key=manifest_key, Body="".join(rows).encode())
    spec = BatchJobSpec(function_arn=outputs["IngestBatchFunctionArn"],
                        manifest=ManifestLocation(reports, manifest_key, fields=("Bucket", "Key", "VersionId")),
                        report=ReportSpec(reports, report_prefix), user_arguments={"source": "test"},
                        role_arn=outputs["BatchOperationsRoleArn"])
    table = TaskTable(outputs["TaskTableName"])

    # WHEN the runner runs the job through the deployed ingest_batch function
    started = time.monotonic()
    summary = BatchOperationsRunner(concurrency=8).run(spec)
    wall = time.monotonic() - started
    # The counts are kept from the stream by route_task, behind its routing of the backlog: wait for them
    counts_after_job = _counts_when(table, lambda c: sum(c.values()) >= IMAGES + VIDEOS + EMPTY)

    # THEN every task is in the report with the right code
    report = read_report(boto3.client("s3"), reports, summary.report_manifest_key)
    assert summary.status == "Complete"
    assert summary.total == len(report) == 300
    assert _report_codes(report) == expected
    assert summary.by_result_code == {"Succeeded": IMAGES + VIDEOS + EMPTY,
                                      "PermanentFailure": UNSUPPORTED + MISSING}
    assert summary.report_manifest_key == f"{report_prefix}/job-{spec.job_id}/manifest.json"
    # AND one task per supported object: the counters' total, whatever the pipeline has done since
    assert sum(counts_after_job.values()) == IMAGES + VIDEOS + EMPTY
    assert counts_after_job["FAILED"] >= EMPTY  # empty files are recorded FAILED without analysis

    # WHEN the same manifest runs again
    rerun = BatchOperationsRunner(concurrency=8).run(BatchJobSpec(
        function_arn=spec.function_arn, manifest=spec.manifest, report=ReportSpec(reports, report_prefix),
        role_arn=spec.role_arn))

    # THEN it adds no task, and the known objects are answered Succeeded ("Already known")
    assert sum(table.counts().values()) == IMAGES + VIDEOS + EMPTY
    assert rerun.by_result_code == summary.by_result_code
    again = read_report(boto3.client("s3"), reports, rerun.report_manifest_key)
    assert all(row["ResultMessage"].startswith("Already known") for row in again if row["TaskStatus"] == "succeeded")

    counts = table.counts()
    print(f"\n[wall time] batch runner, {TOTAL} manifest rows: {wall:.1f} s "
          f"({summary.invocations} invocations, {summary.retries} retries); re-run {rerun.duration_seconds:.1f} s; "
          f"counts {counts} (analysis stopped)")


def _counts_when(table: TaskTable, condition: Any, timeout: float = 300.0) -> dict[str, int]:
    """The task counts once ``condition(counts)`` holds, or as they are at the deadline."""
    deadline = time.monotonic() + timeout
    counts = table.counts()
    while not condition(counts) and time.monotonic() < deadline:
        time.sleep(0.5)
        counts = table.counts()
    return counts


def _inventory(s3: Any, bucket: str, source: str, keys: list[tuple[str, str]]) -> str:
    """An S3 Inventory delivery (CSV, gzipped, keys URL-encoded) listing ``keys``; returns its manifest URI."""
    from urllib.parse import quote_plus

    text = io.StringIO()
    writer = csv.writer(text)
    for key, version in keys:
        writer.writerow([source, quote_plus(key, safe="/"), version, "true", "false", "10"])
    data_key = f"{INVENTORY_PREFIX}{source}/BackfillManifest/data/part-0.csv.gz"
    s3.put_object(Bucket=bucket, Key=data_key, Body=gzip.compress(text.getvalue().encode()))
    manifest = {"sourceBucket": source, "destinationBucket": f"arn:aws:s3:::{bucket}", "version": "2016-11-30",
                "creationTimestamp": "1714521600000", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size",
                "files": [{"key": data_key, "size": 1, "MD5checksum": "x"}]}
    manifest_key = f"{INVENTORY_PREFIX}{source}/BackfillManifest/2024-05-01T01-00Z/manifest.json"
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
    return f"s3://{bucket}/{manifest_key}"


@pytest.mark.e2e
def test_batch_operations_service_runs_the_job_rekpipe_backfill_creates(make_runtime, capsys):
    # GIVEN the emulator's S3 Control jobs API, and an S3 Inventory of a bucket with awkward keys
    from rekpipe.cli.backfill import do_cli as backfill
    from rekpipe.cli.stack import GlobalOptions

    runtime = make_runtime()
    outputs = runtime.outputs
    source, inventory_bucket = outputs["ExistingContentBucketName"], outputs["InventoryBucketName"]
    s3 = boto3.client("s3")
    keys = ["2019/beach & sun.jpg", "2019/a+b=c.png", "2019/100% real.jpg", "2019/clip one.mp4", "2019/readme.txt"]
    bodies = {".jpg": jpeg_bytes(4), ".png": png_bytes(4), ".mp4": mp4_bytes(4), ".txt": b"text"}
    listed = [(key, s3.put_object(Bucket=source, Key=key, Body=bodies[key[-4:]])["VersionId"]) for key in keys]
    uri = _inventory(s3, inventory_bucket, source, listed)
    listed_later = ["2020/first.jpg", "2020/second clip.mp4"]
    for key in listed_later:
        s3.put_object(Bucket=source, Key=key, Body=bodies[key[-4:]])
    service = BatchOperationsService(BatchOperationsRunner(concurrency=4)).install()
    try:
        # WHEN `rekpipe backfill --inventory` creates its job, exactly as against AWS, under IAM enforcement
        result = backfill(GlobalOptions(), bucket=None, inventory=uri, yes=True)
        summary = service.wait(result.job_id, timeout=60)
        described = boto3.client("s3control").describe_job(AccountId="123456789012", JobId=result.job_id)["Job"]
        # AND `rekpipe backfill --bucket --prefix` lists the bucket into a CSV manifest and runs that too
        listing = backfill(GlobalOptions(), bucket=source, prefix="2020/", yes=True)
        listing_summary = service.wait(listing.job_id, timeout=60)
    finally:
        service.uninstall()
    assert runtime.iam is not None and runtime.iam.all_refusals() == []  # every call stayed inside its grants

    # THEN the job ran over the inventory and described itself like S3 Batch Operations
    assert f"Created S3 Batch Operations job {result.job_id}" in capsys.readouterr().out
    assert described["Status"] == "Complete"
    assert described["ProgressSummary"]["TotalNumberOfTasks"] == 5
    assert described["ProgressSummary"]["NumberOfTasksSucceeded"] == 4
    assert described["Manifest"]["Spec"]["Format"] == INVENTORY_MANIFEST_FORMAT
    codes = _report_codes(read_report(s3, inventory_bucket, summary.report_manifest_key))
    assert codes == {key: ("PermanentFailure" if key.endswith(".txt") else "Succeeded") for key in keys}
    # AND the tasks carry the decoded keys and pinned versions
    table = TaskTable(outputs["TaskTableName"])
    from rekpipe_shared.tasks import task_id_for

    for key, version in listed[:4]:
        task = table.get(task_id_for(source, key, version, None))
        assert task is not None and task["object_key"] == key and task["source"] == "batch"
    # AND the listed job's manifest and report sit where the role's grants and lifecycle rules apply
    assert listing.manifest_uri.startswith(f"s3://{inventory_bucket}/{outputs['ManifestPrefix']}")
    assert listing_summary.status == "Complete" and listing_summary.succeeded == len(listed_later)
    assert listing_summary.report_manifest_key.startswith(outputs["BatchReportPrefix"])
    # AND the pipeline finishes them (waited for, so no execution outlives the runtime), and the stream-kept
    # counts agree once they have caught up
    from tests.support.runtime import wait_for_tasks

    later = [task_id_for(source, key, version, None) for key, version in
             ((k, s3.head_object(Bucket=source, Key=k)["VersionId"]) for k in listed_later)]
    ids = [task_id_for(source, key, version, None) for key, version in listed[:4]] + later
    found = wait_for_tasks(runtime, ids, timeout=90)
    assert {t["status"] for t in found.values()} == {"SUCCEEDED"}
    counts = _counts_when(table, lambda c: c["SUCCEEDED"] >= len(ids), timeout=60)
    assert counts["SUCCEEDED"] == len(ids), counts


# --- the runner's rules, with a fake function ----------------------------------------------------------
class _FakeLambda:
    """Answers invocations with scripted result codes per key: a list consumed one attempt at a time."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.events: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        self.events.append(event)
        task = event["tasks"][0]
        steps = self.script[task["s3Key"]]
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if step == "raise":
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "boom"}')}
        if step == "empty":
            body = {"invocationSchemaVersion": "2.0", "invocationId": event["invocationId"], "results": []}
        else:
            body = {"invocationSchemaVersion": "2.0", "treatMissingKeysAs": "PermanentFailure",
                    "invocationId": event["invocationId"],
                    "results": [{"taskId": task["taskId"], "resultCode": step, "resultString": f"{step} here"}]}
        return {"Payload": io.BytesIO(json.dumps(body).encode())}


def test_batch_runner_retries_temporary_failures_and_function_errors(aws):
    # GIVEN a function that answers TemporaryFailure twice then Succeeded, one that always raises,
    # one that fails permanently and one that forgets its task
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="reports")
    s3.put_object(Bucket="reports", Key="m.csv", Body=b"src,flaky.jpg\nsrc,raises.jpg\nsrc,bad.jpg\nsrc,silent.jpg\n")
    fake = _FakeLambda({"flaky.jpg": ["TemporaryFailure", "TemporaryFailure", "Succeeded"], "raises.jpg": ["raise"],
                        "bad.jpg": ["PermanentFailure"], "silent.jpg": ["empty"]})
    runner = BatchOperationsRunner(concurrency=2, max_attempts=4, backoff_base=0.001, lambda_client=fake)

    # WHEN the job runs
    summary = runner.run(BatchJobSpec(function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
                                      manifest=ManifestLocation("reports", "m.csv"), report=ReportSpec("reports", "r/"),
                                      job_id="job-1", user_arguments={"run": "1"}))

    # THEN temporary failures were retried to success, function errors until the attempts ran out
    attempts: dict[str, int] = {}
    for event in fake.events:
        key = event["tasks"][0]["s3Key"]
        attempts[key] = attempts.get(key, 0) + 1
    assert attempts == {"flaky.jpg": 3, "raises.jpg": 4, "bad.jpg": 1, "silent.jpg": 1}
    rows = {row["Key"]: row for row in read_report(s3, "reports", summary.report_manifest_key)}
    assert rows["flaky.jpg"]["TaskStatus"] == "succeeded" and rows["flaky.jpg"]["ErrorCode"] == ""
    assert rows["raises.jpg"]["ErrorCode"] == FUNCTION_ERROR
    assert rows["raises.jpg"]["ResultMessage"].startswith("Lambda returned function error")
    assert rows["bad.jpg"]["ErrorCode"] == "PermanentFailure" and rows["bad.jpg"]["ResultMessage"] == (
        "PermanentFailure here")
    assert rows["silent.jpg"]["ErrorCode"] == "PermanentFailure"  # treatMissingKeysAs
    assert summary.succeeded == 1 and summary.failed == 3 and summary.retries == 2 + 3
    # AND each event had the schema 2.0 shape, with the job's id and user arguments
    event = fake.events[0]
    assert event["invocationSchemaVersion"] == "2.0" and event["job"] == {"id": "job-1", "userArguments": {"run": "1"}}
    assert set(event["tasks"][0]) == {"taskId", "s3Bucket", "s3Key", "s3VersionId"}
    # AND the report is laid out as AWS lays it out
    manifest = json.loads(s3.get_object(Bucket="reports", Key="r/job-job-1/manifest.json")["Body"].read())
    assert manifest["Format"] == "Report_CSV_20180820"
    assert {result["TaskExecutionStatus"] for result in manifest["Results"]} == {"succeeded", "failed"}
    assert all(result["Key"].startswith("r/job-job-1/results/") for result in manifest["Results"])


def test_batch_runner_unreadable_manifest_fails_the_job(aws):
    # GIVEN a manifest that does not exist
    boto3.client("s3").create_bucket(Bucket="reports")
    runner = BatchOperationsRunner(lambda_client=_FakeLambda({}))

    # WHEN the job runs
    summary = runner.run(BatchJobSpec(function_arn="arn:f", manifest=ManifestLocation("reports", "nope.csv"),
                                      report=ReportSpec("reports", "r")))

    # THEN it fails with the reason, like a job whose manifest AWS cannot read, and nothing ran
    assert summary.status == "Failed" and summary.total == 0
    assert summary.failure_reasons[0]["FailureCode"] == "ManifestError"
    assert "s3://reports/nope.csv" in summary.failure_reasons[0]["FailureReason"]
