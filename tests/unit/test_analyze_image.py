"""analyze_image on moto + the Rekognition simulator: outputs, statuses, throttling, permanent errors."""

from __future__ import annotations

import json

import boto3
import pytest

from rekpipe.samples import corrupt_image_bytes, corrupt_jpeg_bytes, jpeg_bytes, png_bytes
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


def _prefix(resources, task: dict, run: int = 1) -> str:
    """Where a task's run writes: sync/<bucket>/<key>/version-<id>/run-NNN/ (rekpipe_shared.outputs)."""
    return f"sync/{resources.content_bucket}/{task['object_key']}/version-{task['version_id']}/run-{run:03d}/"


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
    prefix = _prefix(resources, task)
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
    assert stored["manifest_uri"] == f"s3://{resources.output_bucket}/{prefix}manifest.json"
    assert rekognition.stats.calls["DetectLabels"] == 1
    # AND the manifest names the exact source version and run, and latest.json points at this run
    assert manifest["source"]["version_id"] == task["version_id"]
    assert manifest["source"]["uri"] == (f"s3://{resources.content_bucket}/holiday photos/beach & sun.jpg"
                                         f"?versionId={task['version_id']}")
    assert manifest["run"] == 1 and manifest["long_key"] is False
    pointer = _output(resources, f"sync/{resources.content_bucket}/holiday photos/beach & sun.jpg/latest.json")
    assert pointer["manifest"] == stored["manifest_uri"] and pointer["source"]["version_id"] == task["version_id"]


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
    manifest = _output(resources, _prefix(resources, task) + "manifest.json")
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
    assert key in _output(resources, _prefix(resources, task) + f"{api}.json")
    assert TaskTable(resources.task_table).get(task["task_id"])["status"] == "SUCCEEDED"


def test_analyze_image_face_search_without_a_face_succeeds_with_no_matches(resources, rekognition, load_handler,
                                                                          monkeypatch):
    # GIVEN face search and labels on an image in which Rekognition finds no face
    monkeypatch.setenv("PIPELINE_SETTINGS", PipelineSettings(
        image_operations=("labels", "face_search"), face_collection_id="staff").to_json())
    body = next(b for b in (jpeg_bytes(seed) for seed in range(1, 200)) if rekognition.face_count(b) == 0)
    task = _queued_task(resources, "landscape.jpg", body, operations=("labels", "face_search"))

    # WHEN it is analysed
    load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN SearchFacesByImage answered InvalidParameterException, and that is recorded as a search with no match
    assert rekognition.stats.errors["SearchFacesByImage"]["InvalidParameterException"] == 1
    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "SUCCEEDED" and "attention_status" not in stored and "error_code" not in stored
    search = _output(resources, _prefix(resources, task) + "SearchFacesByImage.json")
    assert search["FaceMatches"] == [] and search["NoFaceInImage"] is True
    assert set(stored["outputs"]) == {"DetectLabels", "SearchFacesByImage"}
    # AND it is not in the attention index, so `redrive --failed/--partial` never bills it again
    tasks = TaskTable(resources.task_table)
    assert tasks.needing_attention("FAILED") == [] and tasks.needing_attention("PARTIAL") == []


def test_analyze_image_face_search_other_invalid_parameter_stays_an_error(resources, rekognition, load_handler,
                                                                         monkeypatch):
    # GIVEN face search on an image below Rekognition's 80-pixel minimum (InvalidParameterException too)
    monkeypatch.setenv("PIPELINE_SETTINGS", PipelineSettings(
        image_operations=("face_search",), face_collection_id="staff").to_json())
    task = _queued_task(resources, "tiny.png", png_bytes(1, (40, 40)), operations=("face_search",))

    # WHEN it is analysed
    load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN it is FAILED with InvalidParameterException: only "no faces" is a result
    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "FAILED"
    assert stored["error_code"] == "InvalidParameterException"
    assert stored["operation_errors"]["SearchFacesByImage"]["message"] == "Request has invalid parameters"


@pytest.mark.parametrize(("key", "body"), [
    pytest.param("corrupt body.jpg", corrupt_jpeg_bytes(), id="valid-magic-corrupt-body"),
])
def test_analyze_image_corrupt_jpeg_body_fails_with_invalid_image_format(resources, rekognition, load_handler,
                                                                        key, body):
    # GIVEN a JPEG with valid magic bytes whose body does not decode
    task = _queued_task(resources, key, body)

    # WHEN it is analysed
    load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN it ends FAILED with Rekognition's InvalidImageFormatException, after one call
    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "FAILED" and stored["error_code"] == "InvalidImageFormatException"
    assert rekognition.stats.calls["DetectLabels"] == 1 and rekognition.stats.calls["DetectModerationLabels"] == 0


def test_analyze_image_too_small_image_fails(resources, rekognition, load_handler):
    # GIVEN a valid 64x48 JPEG: under the documented 80-pixel minimum
    task = _queued_task(resources, "thumb.jpg", jpeg_bytes(7, (64, 48)))

    # WHEN it is analysed
    load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN every analysis is refused as the service refuses it, and the task is FAILED with that reason
    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "FAILED"
    assert stored["error_code"] == "InvalidParameterException"
    assert set(stored["operation_errors"]) == {"DetectLabels", "DetectModerationLabels"}


def test_analyze_image_long_key_uses_the_documented_fallback(resources, rekognition, load_handler):
    # GIVEN a key of 1,000 bytes: its readable output path would pass S3's 1,024-byte limit
    key = "deep/" + "é" * 300 + "/" + "x" * 380 + ".jpg"
    assert 990 <= len(key.encode()) <= 1024
    task = _queued_task(resources, key, jpeg_bytes(8))

    # WHEN it is analysed
    load_handler("analyze_image").handler(_sqs_event(task["task_id"]), FakeLambdaContext())

    # THEN it SUCCEEDED, with its outputs under sync/_long-keys/<bucket>/<sha256 of the key>/...
    import hashlib

    stored = TaskTable(resources.task_table).get(task["task_id"])
    assert stored["status"] == "SUCCEEDED"
    root = f"sync/_long-keys/{resources.content_bucket}/{hashlib.sha256(key.encode()).hexdigest()}/"
    prefix = f"{root}version-{task['version_id']}/run-001/"
    assert stored["manifest_uri"] == f"s3://{resources.output_bucket}/{prefix}manifest.json"
    listed = boto3.client("s3").list_objects_v2(Bucket=resources.output_bucket, Prefix="sync/")["Contents"]
    print(f"\n[layout] key of {len(key.encode())} bytes -> " + "\n[layout] ".join(sorted(o["Key"] for o in listed)))
    manifest = _output(resources, prefix + "manifest.json")
    assert manifest["long_key"] is True and manifest["source"]["key"] == key
    assert _output(resources, prefix + "DetectLabels.json")["Labels"] is not None
    assert _output(resources, root + "latest.json")["source"]["key"] == key


def test_analyze_image_concurrent_invocations_each_see_their_own_context(resources, rekognition, load_handler,
                                                                         monkeypatch):
    # GIVEN two invocations in one process (as the emulator runs them, on threads), one with 100 s left and
    # one with 600 s, which both reach the analysis before either reads its remaining time
    import threading

    app = load_handler("analyze_image")
    both_started = threading.Barrier(2, timeout=10)
    real_analyze = app.analyze

    def analyze_after_both_started(task_id, context):
        both_started.wait()
        return real_analyze(task_id, context)

    leases: dict[str, int] = {}
    monkeypatch.setattr(app, "analyze", analyze_after_both_started)
    monkeypatch.setattr(app.tasks, "claim", lambda task_id, lease_seconds: leases.setdefault(task_id, lease_seconds)
                        and None)
    responses: dict[str, dict] = {}

    def invoke(task_id: str, timeout: float) -> None:
        responses[task_id] = app.handler(_sqs_event(task_id), FakeLambdaContext(timeout_seconds=timeout))

    # WHEN both run at once
    threads = [threading.Thread(target=invoke, args=("short-task", 100.0)),
               threading.Thread(target=invoke, args=("long-task", 600.0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # THEN each claimed its task with a lease from its own remaining time (the time left plus 30 s)
    assert 120 <= leases["short-task"] <= 130
    assert 620 <= leases["long-task"] <= 630
    # AND each invocation reported its own batch (one record, not claimable: no failure)
    assert responses == {"short-task": {"batchItemFailures": []}, "long-task": {"batchItemFailures": []}}
