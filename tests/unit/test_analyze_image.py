"""analyze_image on moto + the Rekognition simulator: outputs, statuses, throttling, permanent errors."""

from __future__ import annotations

import json

import boto3
import pytest

from rekpipe.samples import corrupt_image_bytes, jpeg_bytes
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.tasks import NewTask, TaskTable
from tests.support.context import FakeLambdaContext


def _queued_task(resources, key: str, body: bytes | None, operations=("labels", "moderation")) -> dict:
    """An image in the content bucket with its task already routed (QUEUED)."""
    s3 = boto3.client("s3")
    version = None
    if body is not None:
        version = s3.put_object(Bucket=resources.content_bucket, Key=key, Body=body)["VersionId"]
    task = NewTask(bucket=resources.content_bucket, key=key, version_id=version, etag="e", size=len(body or b"x"),
                   media_type="image", operations=tuple(operations), source="s3-event")
    tasks = TaskTable(resources.task_table)
    tasks.create(task)
    tasks.mark_queued(task.task_id)
    return tasks.get(task.task_id)


def _sqs_event(*task_ids: str) -> dict:
    return {"Records": [
        {"messageId": f"m-{i}", "receiptHandle": f"r-{i}", "body": json.dumps({"task_id": task_id, "run": 1}),
         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "x",
         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:rekpipe-images",
         "awsRegion": "us-east-1"}
        for i, task_id in enumerate(task_ids)
    ]}


def _output(resources, key: str) -> dict:
    body = boto3.client("s3").get_object(Bucket=resources.output_bucket, Key=key)["Body"].read()
    return json.loads(body)


def test_analyze_image_writes_each_operation_and_the_manifest(resources, rekognition, load_handler):
    # GIVEN a queued JPEG with an awkward key
    task = _queued_task(resources, "holiday photos/beach & sun.jpg", jpeg_bytes(1))

    # WHEN analyze_image handles its message
    response = load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN each operation's response and the manifest are in the output bucket, and the task SUCCEEDED
    assert response["batchItemFailures"] == []
    prefix = "sync/holiday photos/beach & sun.jpg-analysis/"
    labels = _output(resources, prefix + "DetectLabels.json")
    assert labels["Labels"] and all(label["Confidence"] >= 70 for label in labels["Labels"])
    assert "ModerationLabels" in _output(resources, prefix + "DetectModerationLabels.json")
    manifest = _output(resources, prefix + "manifest.json")
    assert manifest["status"] == "SUCCEEDED"
    assert manifest["source"]["key"] == "holiday photos/beach & sun.jpg"
    assert set(manifest["outputs"]) == {"DetectLabels", "DetectModerationLabels"}
    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "SUCCEEDED"
    assert stored["attempts"] == 1
    assert stored["outputs"]["DetectLabels"] == f"s3://{resources.output_bucket}/{prefix}DetectLabels.json"
    assert stored["manifest_uri"].endswith("manifest.json")
    assert rekognition.stats.calls["DetectLabels"] == 1


def test_analyze_image_corrupt_image_fails_at_once_with_reason(resources, rekognition, load_handler):
    # GIVEN a .jpg that is not an image
    task = _queued_task(resources, "broken.jpg", corrupt_image_bytes())

    # WHEN it is analysed
    response = load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN the message is done (no retry), the task is FAILED with Rekognition's code, and one call was made
    assert response["batchItemFailures"] == []
    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "FAILED"
    assert stored["error_code"] == "InvalidImageFormatException"
    assert stored["error_message"]
    assert stored["attention_status"] == "FAILED"
    assert rekognition.stats.calls["DetectLabels"] == 1
    assert rekognition.stats.calls["DetectModerationLabels"] == 0


def test_analyze_image_missing_object_fails(resources, rekognition, load_handler):
    # GIVEN a task whose object was deleted before analysis
    task = _queued_task(resources, "deleted.png", None)

    # WHEN it is analysed
    load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN the task is FAILED with InvalidS3ObjectException
    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "FAILED"
    assert stored["error_code"] == "InvalidS3ObjectException"


def test_analyze_image_one_failed_operation_gives_partial(resources, rekognition, load_handler, monkeypatch):
    # GIVEN face search against a collection that does not exist, beside labels
    monkeypatch.setenv("PIPELINE_SETTINGS", PipelineSettings(
        image_operations=("labels", "face_search"), face_collection_id="missing-collection").to_json())
    rekognition.config.collections = {"staff"}
    task = _queued_task(resources, "team.jpg", jpeg_bytes(2), operations=("labels", "face_search"))

    # WHEN it is analysed
    load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN labels are kept, the failure is recorded per operation, and the status is PARTIAL
    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "PARTIAL"
    assert set(stored["outputs"]) == {"DetectLabels"}
    assert stored["operation_errors"]["SearchFacesByImage"]["code"] == "ResourceNotFoundException"
    assert stored["attention_status"] == "PARTIAL"
    manifest = _output(resources, "sync/team.jpg-analysis/manifest.json")
    assert manifest["status"] == "PARTIAL"
    assert "SearchFacesByImage" in manifest["errors"]


def test_analyze_image_throttling_then_success(resources, rekognition, load_handler, monkeypatch):
    # GIVEN Rekognition throttles the first five DetectLabels calls (more than botocore retries)
    task = _queued_task(resources, "busy.jpg", jpeg_bytes(3), operations=("labels",))
    rekognition.inject_errors("DetectLabels", "ThrottlingException", times=5)
    app = load_handler("analyze_image")
    monkeypatch.setattr(app, "BACKOFF_BASE_SECONDS", 0.01)

    # WHEN it is analysed
    response = app.handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN the handler backed off and succeeded within the invocation
    assert response["batchItemFailures"] == []
    assert TaskTable(resources.task_table).get(task["task_id"])["status"] == "SUCCEEDED"
    assert rekognition.stats.throttled["DetectLabels"] == 5
    assert rekognition.stats.calls["DetectLabels"] == 6


def test_analyze_image_throttled_with_no_time_left_goes_back_to_the_queue(resources, rekognition, load_handler,
                                                                          monkeypatch):
    # GIVEN labels already done by an earlier attempt, and moderation throttled with little time left
    task = _queued_task(resources, "later.jpg", jpeg_bytes(4))
    rekognition.inject_errors("DetectModerationLabels", "ProvisionedThroughputExceededException", times=100)
    app = load_handler("analyze_image")
    changed = []
    monkeypatch.setattr(app.sqs, "change_message_visibility", lambda **kw: changed.append(kw))

    # WHEN the invocation has 11 seconds left
    response = app.handler(_sqs_event(task["task_id"]), FakeLambdaContext(timeout_seconds=11))

    # THEN the message is reported failed with a short jittered delay and the task is QUEUED again
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-0"}]
    assert 15 <= changed[0]["VisibilityTimeout"] <= 60
    tasks = TaskTable(resources.task_table)
    stored = tasks.get(task["task_id"])
    assert stored["status"] == "QUEUED"
    assert set(stored["outputs"]) == {"DetectLabels"}

    # WHEN the redelivered message is handled once Rekognition has capacity again
    rekognition.inject_errors("DetectModerationLabels", "ProvisionedThroughputExceededException", times=0)
    app.handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN DetectLabels was not called (or paid for) a second time
    assert tasks.get(task["task_id"])["status"] == "SUCCEEDED"
    assert rekognition.stats.calls["DetectLabels"] == 1


def test_analyze_image_duplicate_message_is_not_analysed_twice(resources, rekognition, load_handler):
    # GIVEN an image analysed already
    task = _queued_task(resources, "once.jpg", jpeg_bytes(5), operations=("labels",))
    app = load_handler("analyze_image")
    app.handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # WHEN the same message arrives again
    response = app.handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN nothing is called and the task is unchanged
    assert response["batchItemFailures"] == []
    assert rekognition.stats.calls["DetectLabels"] == 1
    assert TaskTable(resources.task_table).get(task["task_id"])["attempts"] == 1


@pytest.mark.parametrize("operation,api,key", [
    ("text", "DetectText", "TextDetections"),
    ("faces", "DetectFaces", "FaceDetails"),
    ("celebrities", "RecognizeCelebrities", "CelebrityFaces"),
    ("ppe", "DetectProtectiveEquipment", "Persons"),
])
def test_analyze_image_runs_every_image_api(resources, rekognition, load_handler, monkeypatch, operation, api, key):
    # GIVEN a deployment configured for one more analysis
    monkeypatch.setenv("PIPELINE_SETTINGS", PipelineSettings(image_operations=(operation,)).to_json())
    task = _queued_task(resources, f"{operation}.png", jpeg_bytes(6), operations=(operation,))

    # WHEN the image is analysed
    load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN that API's response is stored
    assert key in _output(resources, f"sync/{operation}.png-analysis/{api}.json")
    assert TaskTable(resources.task_table).get(task["task_id"])["status"] == "SUCCEEDED"
