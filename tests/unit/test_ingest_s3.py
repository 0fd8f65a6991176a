"""ingest_s3 on moto: every record, decoded keys, one task per version, duplicates are no-ops."""

from __future__ import annotations

import boto3
import pytest

from rekpipe_shared.tasks import TaskTable, task_id_for
from tests.support.context import FakeLambdaContext
from tests.support.events import load_event
from tests.support.pump import counts_from_stream, s3_event

KEYS = ["holiday photos/beach & sun.jpg", "写真/café 100%.PNG", "videos/clip 1.mp4"]


@pytest.fixture
def uploaded(resources):
    """Three objects in the content bucket, with the event S3 would send for them."""
    s3 = boto3.client("s3")
    values = {"content_bucket": resources.content_bucket}
    for index, key in enumerate(KEYS):
        put = s3.put_object(Bucket=resources.content_bucket, Key=key, Body=b"\xff\xd8\xff" + bytes(100 + index))
        values.update({f"size_{index}": 103 + index, f"etag_{index}": put["ETag"].strip('"'),
                       f"version_{index}": put["VersionId"]})
    return load_event("s3_object_created_multi", **values), values


def test_ingest_s3_creates_one_task_per_record_with_decoded_keys(resources, load_handler, uploaded):
    # GIVEN an S3 notice with three records whose keys are URL-encoded ('+', %XX, unicode)
    event, values = uploaded
    app = load_handler("ingest_s3")

    # WHEN ingest_s3 handles it
    counts = app.handler(event, FakeLambdaContext())

    # THEN every record became a PENDING task keyed by bucket, decoded key and version
    assert counts == {"created": 3}
    tasks = TaskTable(resources.task_table)
    for index, key in enumerate(KEYS):
        task = tasks.get(task_id_for(resources.content_bucket, key, values[f"version_{index}"], None))
        assert task is not None, key
        assert task["object_key"] == key
        assert task["status"] == "PENDING"
        assert task["version_id"] == values[f"version_{index}"]
        assert task["source"] == "s3-event"
    assert tasks.get(task_id_for(resources.content_bucket, KEYS[2], values["version_2"], None))["media_type"] == "video"
    assert counts_from_stream(resources.task_stream_arn, resources.task_table)["PENDING"] == 3


def test_ingest_s3_duplicate_notice_is_a_noop(resources, load_handler, uploaded):
    # GIVEN a notice that was already handled once
    event, values = uploaded
    app = load_handler("ingest_s3")
    app.handler(event, FakeLambdaContext())
    tasks = TaskTable(resources.task_table)
    first = tasks.get(task_id_for(resources.content_bucket, KEYS[0], values["version_0"], None))

    # WHEN S3 delivers the same notice again
    counts = app.handler(event, FakeLambdaContext())

    # THEN nothing new is written: same items, same counts
    assert counts == {"duplicate": 3}
    assert tasks.get(first["task_id"]) == first
    assert counts_from_stream(resources.task_stream_arn, resources.task_table)["PENDING"] == 3


def test_ingest_s3_skips_folder_markers_and_unsupported_types(resources, load_handler):
    # GIVEN a folder marker, a GIF and a text file
    s3 = boto3.client("s3")
    for key in ("albums/", "animations/cat.gif", "notes/readme.txt"):
        s3.put_object(Bucket=resources.content_bucket, Key=key, Body=b"" if key.endswith("/") else b"x")
    event = s3_event(resources.content_bucket, ["albums/", "animations/cat.gif", "notes/readme.txt"])

    # WHEN they are ingested
    counts = load_handler("ingest_s3").handler(event, FakeLambdaContext())

    # THEN no task is written
    assert counts == {"skipped": 3}
    assert sum(counts_from_stream(resources.task_stream_arn, resources.task_table).values()) == 0


def test_ingest_s3_zero_byte_image_is_recorded_failed_without_analysis(resources, load_handler):
    # GIVEN an empty .jpg
    boto3.client("s3").put_object(Bucket=resources.content_bucket, Key="empty.jpg", Body=b"")

    # WHEN it is ingested
    counts = load_handler("ingest_s3").handler(s3_event(resources.content_bucket, ["empty.jpg"]), FakeLambdaContext())

    # THEN its task is FAILED with a reason a person can act on, and listed for attention
    assert counts == {"rejected": 1}
    tasks = TaskTable(resources.task_table)
    [failed] = tasks.needing_attention("FAILED")
    assert failed["object_key"] == "empty.jpg"
    assert failed["error_code"] == "EmptyObject"
    assert "upload the file again" in failed["error_message"]
    assert counts_from_stream(resources.task_stream_arn, resources.task_table)["FAILED"] == 1


def test_ingest_s3_ignores_other_event_types(resources, load_handler, uploaded):
    # GIVEN a notice that is not ObjectCreated
    event, _ = uploaded
    for record in event["Records"]:
        record["eventName"] = "ObjectRemoved:Delete"

    # WHEN it is handled
    counts = load_handler("ingest_s3").handler(event, FakeLambdaContext())

    # THEN nothing is written
    assert counts == {}
    assert sum(counts_from_stream(resources.task_stream_arn, resources.task_table).values()) == 0


def test_ingest_s3_prefix_mapping_chooses_operations(resources, load_handler, monkeypatch):
    # GIVEN the original sample's folder convention
    from rekpipe_shared.settings import PipelineSettings

    settings = PipelineSettings.from_mapping({"image_prefix_operations": "sample"})
    monkeypatch.setenv("PIPELINE_SETTINGS", settings.to_json())
    s3 = boto3.client("s3")
    for key in ("faces/team.jpg", "text/sign.png", "other/dog.jpg"):
        s3.put_object(Bucket=resources.content_bucket, Key=key, Body=b"\xff\xd8\xffdata")

    # WHEN the uploads are ingested
    load_handler("ingest_s3").handler(
        s3_event(resources.content_bucket, ["faces/team.jpg", "text/sign.png", "other/dog.jpg"]), FakeLambdaContext()
    )

    # THEN the folder picks the analysis, and other keys get the default set
    tasks = TaskTable(resources.task_table)
    by_key = {}
    for key in ("faces/team.jpg", "text/sign.png", "other/dog.jpg"):
        head = s3.head_object(Bucket=resources.content_bucket, Key=key)
        by_key[key] = tasks.get(task_id_for(resources.content_bucket, key, head["VersionId"], None))["operations"]
    assert by_key == {"faces/team.jpg": ["faces"], "text/sign.png": ["text"], "other/dog.jpg": ["labels", "moderation"]}


def test_ingest_s3_test_event_is_acknowledged_and_writes_nothing(resources, load_handler):
    # GIVEN the test message S3 sends when a notification is configured, exactly as S3 sends it
    event = load_event("s3_test_event", bucket=resources.content_bucket)
    app = load_handler("ingest_s3")

    # WHEN ingest_s3 receives it
    result = app.handler(event, FakeLambdaContext())

    # THEN it reports success (no exception: no retry, no DLQ, no alarm) and writes no task
    assert result == {"ignored": 1}
    items = boto3.client("dynamodb").scan(TableName=resources.task_table)["Items"]
    assert items == []
    assert counts_from_stream(resources.task_stream_arn, resources.task_table)["PENDING"] == 0
