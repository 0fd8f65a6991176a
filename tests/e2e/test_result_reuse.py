"""Identical bytes are analysed once: result reuse through S3 checksums (issue 14).

The real analyze_image handler runs on moto against the Rekognition simulator, whose call counts
say how often Rekognition was paid. Tasks are queued as route_task queues them.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from rekpipe.samples import jpeg_bytes
from rekpipe_shared.content_identity import read_identities
from rekpipe_shared.result_index import ResultIndex
from rekpipe_shared.schema import PIPELINE_SETTINGS_ENV
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.tasks import NewTask, TaskTable
from tests.support.pump import deliver_sqs

APIS = ("DetectLabels", "DetectModerationLabels")


def _queue(resources, bucket: str, key: str, body: bytes | None = None, *, version_id: str | None = None) -> str:
    """Upload (unless ``version_id`` names an existing version), create the task and queue its message."""
    s3 = boto3.client("s3")
    if body is not None:
        version_id = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    task = NewTask(bucket=bucket, key=key, version_id=version_id, etag=head["ETag"].strip('"'),
                   size=head["ContentLength"], media_type="image", operations=("labels", "moderation"),
                   source="s3-event")
    tasks = TaskTable(resources.task_table)
    assert tasks.create(task)
    tasks.mark_queued(task.task_id)
    boto3.client("sqs").send_message(QueueUrl=resources.image_queue_url,
                                     MessageBody=json.dumps({"task_id": task.task_id, "run": 1}))
    return task.task_id


def _drain(resources, handler, task_ids: list[str], *, timeout: float = 60.0) -> dict[str, dict]:
    """Deliver the image queue until every task is terminal (waiting followers come back by visibility)."""
    tasks = TaskTable(resources.task_table)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliver_sqs(resources.image_queue_url, handler, batch_size=10)
        found = {task_id: tasks.get(task_id) for task_id in task_ids}
        if all(item["status"] in ("SUCCEEDED", "FAILED", "PARTIAL") for item in found.values()):
            return found
        time.sleep(0.2)
    raise AssertionError(f"tasks not terminal: { {t: i['status'] for t, i in found.items()} }")


def _body(bucket: str, uri: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=bucket, Key=uri.split(f"s3://{bucket}/", 1)[1])["Body"].read()


def test_reuse_identical_bytes_two_keys_two_buckets_two_versions_call_rekognition_once(resources, rekognition,
                                                                                      load_handler):
    # GIVEN one JPEG stored under two keys, in a second bucket, and as a second version of the first key
    body = jpeg_bytes(41, (140, 100))
    first = _queue(resources, resources.content_bucket, "album-a/photo.jpg", body)
    analyze = load_handler("analyze_image")
    _drain(resources, analyze.handler, [first])
    copies = [
        _queue(resources, resources.content_bucket, "album-b/same.jpg", body),
        _queue(resources, resources.existing_bucket, "album-a/photo.jpg", body),
        _queue(resources, resources.content_bucket, "album-a/photo.jpg", body),  # a second version
    ]

    # WHEN the copies are analysed
    done = _drain(resources, analyze.handler, copies)

    # THEN Rekognition was called once per operation for all four objects
    assert rekognition.stats.calls["DetectLabels"] == 1
    assert rekognition.stats.calls["DetectModerationLabels"] == 1
    tasks = TaskTable(resources.task_table)
    source = tasks.get(first)
    # AND every copy SUCCEEDED with its own outputs under its own prefix, identical in content
    prefixes = set()
    for task_id in copies:
        task = done[task_id]
        assert task["status"] == "SUCCEEDED"
        for api in APIS:
            assert task["outputs"][api] != source["outputs"][api]
            assert _body(resources.output_bucket, task["outputs"][api]) == _body(resources.output_bucket,
                                                                                 source["outputs"][api])
            # AND the task and its manifest say the output was reused, and from which task
            assert task["reused"][api]["source_task_id"] == first
            assert task["reused"][api]["source_uri"] == source["outputs"][api]
        prefixes.add(task["manifest_uri"])
        manifest = json.loads(_body(resources.output_bucket, task["manifest_uri"]))
        assert manifest["reused"]["DetectLabels"]["source_task_id"] == first
        assert manifest["reused"]["DetectLabels"]["model_version"]  # the model that answered is recorded
    assert len(prefixes) == 3
    # AND the index counts three objects (six operations) reused and the $0.006 not paid
    stats = ResultIndex(resources.result_index_table).stats()
    assert stats["reused_objects"] == 3 and stats["reused_operations"] == 6
    assert stats["saved_usd"] == pytest.approx(0.006)


def test_reuse_under_another_min_confidence_analyses_again(resources, rekognition, load_handler, monkeypatch):
    # GIVEN an image analysed with the default MinConfidence
    body = jpeg_bytes(42, (120, 120))
    first = _queue(resources, resources.content_bucket, "a.jpg", body)
    _drain(resources, load_handler("analyze_image").handler, [first])

    # WHEN the same bytes are analysed by a deployment with another MinConfidence
    monkeypatch.setenv(PIPELINE_SETTINGS_ENV, PipelineSettings(min_confidence=85.0).to_json())
    second = _queue(resources, resources.content_bucket, "b.jpg", body)
    done = _drain(resources, load_handler("analyze_image").handler, [second])

    # THEN Rekognition was asked again for each operation, and nothing was reused
    assert rekognition.stats.calls["DetectLabels"] == 2
    assert rekognition.stats.calls["DetectModerationLabels"] == 2
    assert done[second]["status"] == "SUCCEEDED" and "reused" not in done[second]


def test_reuse_switched_off_analyses_every_copy(resources, rekognition, load_handler, monkeypatch):
    # GIVEN reuse switched off in the settings
    monkeypatch.setenv(PIPELINE_SETTINGS_ENV, PipelineSettings(reuse_results=False).to_json())
    body = jpeg_bytes(43, (100, 90))
    analyze = load_handler("analyze_image")
    ids = [_queue(resources, resources.content_bucket, f"{name}.jpg", body) for name in ("x", "y")]

    # WHEN both copies are analysed
    _drain(resources, analyze.handler, ids)

    # THEN each one paid for its own calls
    assert rekognition.stats.calls["DetectLabels"] == 2


def test_reuse_failed_leader_lets_the_follower_run_its_own_analysis(resources, rekognition, load_handler,
                                                                   monkeypatch):
    # GIVEN two identical images queued together, and the first one's DetectLabels fails
    body = jpeg_bytes(44, (110, 100))
    leader = _queue(resources, resources.content_bucket, "leader.jpg", body)
    follower = _queue(resources, resources.content_bucket, "follower.jpg", body)
    analyze = load_handler("analyze_image")
    real = analyze.call_rekognition

    def failing_for_leader(api, request, task_id, context):
        if task_id == leader and api == "DetectLabels":
            raise ClientError({"Error": {"Code": "InvalidParameterException", "Message": "injected"}}, api)
        return real(api, request, task_id, context)

    monkeypatch.setattr(analyze, "call_rekognition", failing_for_leader)

    # WHEN both are analysed
    done = _drain(resources, analyze.handler, [leader, follower])

    # THEN the leader is PARTIAL, and the follower ran its own DetectLabels and SUCCEEDED
    assert done[leader]["status"] == "PARTIAL"
    assert done[follower]["status"] == "SUCCEEDED"
    assert "DetectLabels" not in (done[follower].get("reused") or {})
    assert rekognition.stats.calls["DetectLabels"] == 1  # the injected failure never reached the simulator
    # AND the moderation result the leader did get was reused, not paid twice
    assert rekognition.stats.calls["DetectModerationLabels"] == 1
    assert done[follower]["reused"]["DetectModerationLabels"]["source_task_id"] == leader


def test_reuse_leader_that_died_after_its_claim_is_taken_over_when_its_lease_ends(resources, rekognition,
                                                                                 load_handler):
    # GIVEN a task whose Lambda claimed the bytes' analysis and died (a lead with a 3-second lease, no result)
    body = jpeg_bytes(45, (100, 100))
    dead = _queue(resources, resources.content_bucket, "dead.jpg", body)
    follower = _queue(resources, resources.content_bucket, "alive.jpg", body)
    boto3.client("sqs").purge_queue(QueueUrl=resources.image_queue_url)
    boto3.client("sqs").send_message(QueueUrl=resources.image_queue_url,
                                     MessageBody=json.dumps({"task_id": follower, "run": 1}))
    analyze = load_handler("analyze_image")
    task = TaskTable(resources.task_table).get(dead)
    identities = read_identities(boto3.client("s3"), task["bucket"], task["object_key"], task["version_id"])
    for name in ("labels", "moderation"):
        plan = analyze.reuse.plan(task, analyze.operation(name), identities, video=False)
        assert analyze.reuse.index.claim(plan.keys[0], dead, lease_seconds=3, identity=identities[0],
                                         api=plan.api).lead

    # WHEN the follower's message is delivered while the lead is live
    first = deliver_sqs(resources.image_queue_url, analyze.handler)

    # THEN it is handed back (not lost, not analysed) ...
    assert first == {"delivered": 1, "failed": 1}
    assert TaskTable(resources.task_table).get(follower)["status"] == "QUEUED"
    assert rekognition.stats.calls["DetectLabels"] == 0
    # ... AND once the lease has run out, its redelivery runs its own analysis and SUCCEEDS
    done = _drain(resources, analyze.handler, [follower], timeout=60)
    assert done[follower]["status"] == "SUCCEEDED"
    assert rekognition.stats.calls["DetectLabels"] == 1


def test_reuse_forced_task_is_analysed_again_and_replaces_the_indexed_result(resources, rekognition, load_handler):
    # GIVEN two identical images, the second reused from the first
    body = jpeg_bytes(46, (90, 90))
    analyze = load_handler("analyze_image")
    first = _queue(resources, resources.content_bucket, "one.jpg", body)
    _drain(resources, analyze.handler, [first])
    second = _queue(resources, resources.content_bucket, "two.jpg", body)
    _drain(resources, analyze.handler, [second])
    assert rekognition.stats.calls["DetectLabels"] == 1

    # WHEN the second is re-queued with force (what `rekpipe redrive --force` does) and routed again
    tasks = TaskTable(resources.task_table)
    assert tasks.requeue(second, from_status="SUCCEEDED", force=True) is not None
    tasks.mark_queued(second)
    boto3.client("sqs").send_message(QueueUrl=resources.image_queue_url,
                                     MessageBody=json.dumps({"task_id": second, "run": 2}))
    done = _drain(resources, analyze.handler, [second])

    # THEN it was analysed again, and a third copy now reuses the forced (newest) result
    assert done[second]["status"] == "SUCCEEDED" and "reused" not in done[second]
    assert rekognition.stats.calls["DetectLabels"] == 2
    third = _queue(resources, resources.content_bucket, "three.jpg", body)
    again = _drain(resources, analyze.handler, [third])
    assert again[third]["reused"]["DetectLabels"]["source_task_id"] == second
    assert rekognition.stats.calls["DetectLabels"] == 2


def test_reuse_multipart_upload_of_the_same_bytes_is_recognised_by_its_full_object_checksum(
        resources, rekognition, load_handler):
    # GIVEN the emulator's S3 checksums as AWS computes them (moto alone has no real CRC64NVME), and a
    # JPEG just over 5 MiB uploaded in one part with no checksum (S3 adds CRC64NVME)
    from botocore.config import Config

    from rekpipe.emulator.s3_checksums import s3_checksums_as_aws

    undo = s3_checksums_as_aws()
    try:
        image = jpeg_bytes(47, (200, 150))
        body = image + b"\0" * (5 * 1024 * 1024 + 1000 - len(image))  # decoders stop at the JPEG's end marker
        plain = boto3.client("s3", config=Config(request_checksum_calculation="when_required"))
        bucket = resources.content_bucket
        plain.put_object(Bucket=bucket, Key="single.jpg", Body=body)
        first = _queue(resources, bucket, "single.jpg",
                       version_id=boto3.client("s3").head_object(Bucket=bucket, Key="single.jpg")["VersionId"])
        analyze = load_handler("analyze_image")
        _drain(resources, analyze.handler, [first])
        # WHEN the same bytes arrive as a two-part upload with a full-object CRC64NVME (a multipart ETag)
        upload = plain.create_multipart_upload(Bucket=bucket, Key="multi.jpg", ChecksumAlgorithm="CRC64NVME",
                                               ChecksumType="FULL_OBJECT")
        parts = [{"PartNumber": n, "ETag": plain.upload_part(Bucket=bucket, Key="multi.jpg", PartNumber=n,
                                                              UploadId=upload["UploadId"], Body=chunk)["ETag"]}
                 for n, chunk in ((1, body[:5 * 1024 * 1024]), (2, body[5 * 1024 * 1024:]))]
        version = plain.complete_multipart_upload(Bucket=bucket, Key="multi.jpg", UploadId=upload["UploadId"],
                                                  MultipartUpload={"Parts": parts})["VersionId"]
        second = _queue(resources, bucket, "multi.jpg", version_id=version)
        done = _drain(resources, analyze.handler, [second])
    finally:
        undo()

    # THEN the multipart copy reused the first analysis through the checksum: Rekognition was paid once
    assert done[second]["etag"].endswith("-2")
    assert done[second]["status"] == "SUCCEEDED"
    assert done[second]["reused"]["DetectLabels"]["source_task_id"] == first
    assert rekognition.stats.calls["DetectLabels"] == 1


def test_reuse_composite_multipart_upload_is_analysed_again(resources, rekognition, load_handler):
    # GIVEN an image analysed once, and the same bytes uploaded in two parts with a COMPOSITE SHA256
    # (a checksum of the parts' checksums, so no identity of the whole object)
    image = jpeg_bytes(48, (200, 150))
    body = image + b"\0" * (5 * 1024 * 1024 + 1000 - len(image))
    bucket = resources.content_bucket
    first = _queue(resources, bucket, "whole.jpg", body)
    analyze = load_handler("analyze_image")
    _drain(resources, analyze.handler, [first])
    s3 = boto3.client("s3")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts.jpg", ChecksumAlgorithm="SHA256",
                                        ChecksumType="COMPOSITE")
    parts = []
    for n, chunk in ((1, body[:5 * 1024 * 1024]), (2, body[5 * 1024 * 1024:])):
        response = s3.upload_part(Bucket=bucket, Key="parts.jpg", PartNumber=n, UploadId=upload["UploadId"],
                                  Body=chunk, ChecksumAlgorithm="SHA256")
        parts.append({"PartNumber": n, "ETag": response["ETag"], "ChecksumSHA256": response["ChecksumSHA256"]})
    version = s3.complete_multipart_upload(Bucket=bucket, Key="parts.jpg", UploadId=upload["UploadId"],
                                           MultipartUpload={"Parts": parts})["VersionId"]

    # WHEN it is analysed
    second = _queue(resources, bucket, "parts.jpg", version_id=version)
    done = _drain(resources, analyze.handler, [second])

    # THEN nothing vouched for the whole object, so it was analysed as usual
    assert done[second]["status"] == "SUCCEEDED" and "reused" not in done[second]
    assert rekognition.stats.calls["DetectLabels"] == 2
