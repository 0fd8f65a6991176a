"""ingest_batch on moto: schemas 1.0 and 2.0, actionable result codes, idempotent like ingest_s3."""

from __future__ import annotations

from urllib.parse import quote_plus

import boto3
import pytest
from botocore.exceptions import ClientError

from rekpipe_shared.tasks import TaskTable, task_id_for
from tests.support.context import FakeLambdaContext
from tests.support.events import load_event
from tests.support.pump import counts_from_stream


def _result(response: dict) -> dict:
    assert response["treatMissingKeysAs"] == "PermanentFailure"
    [result] = response["results"]
    assert result["taskId"] == "dGFza2lkZ29lc2hlcmUK"
    return result


@pytest.mark.parametrize("schema", ["v1", "v2"])
def test_ingest_batch_creates_task_from_encoded_key(resources, load_handler, schema):
    # GIVEN an existing object whose key needs encoding, listed in a Batch Operations manifest
    key = "backfill/2019 summer/ß & ü+1.jpg"
    put = boto3.client("s3").put_object(Bucket=resources.existing_bucket, Key=key, Body=b"\xff\xd8\xff" + bytes(50))
    event = load_event(f"s3_batch_operations_{schema}", bucket=resources.existing_bucket,
                       key=quote_plus(key, safe="/"), version=put["VersionId"])

    # WHEN ingest_batch handles the task
    response = load_handler("ingest_batch").handler(event, FakeLambdaContext())

    # THEN it succeeds and the task carries the decoded key
    result = _result(response)
    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith("Task created")
    assert response["invocationSchemaVersion"] == ("1.0" if schema == "v1" else "2.0")
    task = TaskTable(resources.task_table).get(task_id_for(resources.existing_bucket, key, put["VersionId"], None))
    assert task["object_key"] == key
    assert task["source"] == "batch"
    assert task["status"] == "PENDING"


def test_ingest_batch_rerun_is_idempotent(resources, load_handler):
    # GIVEN a task already ingested from a backfill
    put = boto3.client("s3").put_object(Bucket=resources.existing_bucket, Key="a.png", Body=b"\x89PNG" + bytes(9))
    event = load_event("s3_batch_operations_v2", bucket=resources.existing_bucket, key="a.png",
                       version=put["VersionId"])
    app = load_handler("ingest_batch")
    app.handler(event, FakeLambdaContext())

    # WHEN the backfill is run again
    result = _result(app.handler(event, FakeLambdaContext()))

    # THEN it succeeds without a second task
    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith("Already known")
    assert counts_from_stream(resources.task_stream_arn, resources.task_table)["PENDING"] == 1


def test_ingest_batch_unversioned_entry_uses_current_version(resources, load_handler):
    # GIVEN a CSV manifest row without a version id
    put = boto3.client("s3").put_object(Bucket=resources.existing_bucket, Key="b.jpg", Body=b"\xff\xd8\xff1")
    event = load_event("s3_batch_operations_v1", bucket=resources.existing_bucket, key="b.jpg", version=None)

    # WHEN it is ingested
    result = _result(load_handler("ingest_batch").handler(event, FakeLambdaContext()))

    # THEN the task is the same one an S3 notice for that version would create
    assert result["resultCode"] == "Succeeded"
    assert TaskTable(resources.task_table).get(
        task_id_for(resources.existing_bucket, "b.jpg", put["VersionId"], None)) is not None


def test_ingest_batch_missing_object_is_permanent_failure(resources, load_handler):
    # GIVEN a manifest entry for an object that no longer exists
    event = load_event("s3_batch_operations_v2", bucket=resources.existing_bucket, key="gone.jpg", version=None)

    # WHEN it is handled
    result = _result(load_handler("ingest_batch").handler(event, FakeLambdaContext()))

    # THEN the report says what happened and what to do, and no task is written
    assert result["resultCode"] == "PermanentFailure"
    assert "Object not found" in result["resultString"]
    assert "rebuild" in result["resultString"]
    assert sum(counts_from_stream(resources.task_stream_arn, resources.task_table).values()) == 0


def test_ingest_batch_unsupported_type_is_permanent_failure(resources, load_handler):
    # GIVEN a GIF in the manifest
    boto3.client("s3").put_object(Bucket=resources.existing_bucket, Key="anim.gif", Body=b"GIF89a")
    event = load_event("s3_batch_operations_v2", bucket=resources.existing_bucket, key="anim.gif", version=None)

    # WHEN it is handled
    result = _result(load_handler("ingest_batch").handler(event, FakeLambdaContext()))

    # THEN it is a permanent failure naming the supported types
    assert result["resultCode"] == "PermanentFailure"
    assert ".gif" in result["resultString"]
    assert ".jpg" in result["resultString"]


def test_ingest_batch_zero_byte_object_is_recorded_failed(resources, load_handler):
    # GIVEN an empty video in the manifest
    boto3.client("s3").put_object(Bucket=resources.existing_bucket, Key="empty.mp4", Body=b"")
    event = load_event("s3_batch_operations_v2", bucket=resources.existing_bucket, key="empty.mp4", version=None)

    # WHEN it is handled
    result = _result(load_handler("ingest_batch").handler(event, FakeLambdaContext()))

    # THEN the batch task succeeds (nothing to retry) and the object's task says why it failed
    assert result["resultCode"] == "Succeeded"
    assert "FAILED" in result["resultString"]
    [failed] = TaskTable(resources.task_table).needing_attention("FAILED")
    assert failed["error_code"] == "EmptyObject"


def test_ingest_batch_throttled_table_is_temporary_failure(resources, load_handler, monkeypatch):
    # GIVEN a task table that keeps throttling past botocore's retries
    boto3.client("s3").put_object(Bucket=resources.existing_bucket, Key="c.jpg", Body=b"\xff\xd8\xff1")
    event = load_event("s3_batch_operations_v2", bucket=resources.existing_bucket, key="c.jpg", version=None)
    app = load_handler("ingest_batch")

    def throttled(**_):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                          "PutItem")

    monkeypatch.setattr(app.tasks.client, "put_item", throttled)

    # WHEN the task is handled
    result = _result(app.handler(event, FakeLambdaContext()))

    # THEN Batch Operations is told to retry it
    assert result["resultCode"] == "TemporaryFailure"
    assert "ProvisionedThroughputExceededException" in result["resultString"]
