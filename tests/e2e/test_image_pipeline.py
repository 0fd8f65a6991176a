"""End to end on moto: an upload travels ingest -> stream -> route -> analyze through the real handlers."""

from __future__ import annotations

import json

import boto3

from rekpipe.emulator.event_sources import StreamReader
from rekpipe.samples import corrupt_image_bytes, jpeg_bytes
from rekpipe_shared.tasks import TaskTable, task_id_for
from tests.support.context import FakeLambdaContext
from tests.support.pump import deliver_sqs, deliver_stream, s3_event


def test_image_pipeline_upload_to_succeeded_and_corrupt_to_failed(resources, rekognition, load_handler):
    # GIVEN a good photo and a corrupt one uploaded to the content bucket
    s3 = boto3.client("s3")
    uploads = {"albums/summer 2026/beach & sun.jpg": jpeg_bytes(11), "albums/broken+file.jpg": corrupt_image_bytes()}
    versions = {key: s3.put_object(Bucket=resources.content_bucket, Key=key, Body=body)["VersionId"]
                for key, body in uploads.items()}
    ingest, route, analyze = (load_handler(name) for name in ("ingest_s3", "route_task", "analyze_image"))
    stream = StreamReader(resources.task_stream_arn)

    # WHEN S3 notifies, the stream is read and the image queue is drained, as AWS would deliver them
    ingest.handler(s3_event(resources.content_bucket, list(uploads)), FakeLambdaContext())
    deliver_stream(stream, route.handler)
    delivered = deliver_sqs(resources.image_queue_url, analyze.handler)
    deliver_stream(stream, route.handler)  # the later status changes route nothing

    # THEN the good photo SUCCEEDED with its outputs, and the corrupt one FAILED with the reason
    assert delivered == {"delivered": 2, "failed": 0}
    tasks = TaskTable(resources.task_table)
    good = tasks.get(task_id_for(resources.content_bucket, "albums/summer 2026/beach & sun.jpg",
                                 versions["albums/summer 2026/beach & sun.jpg"], None))
    bad = tasks.get(task_id_for(resources.content_bucket, "albums/broken+file.jpg",
                                versions["albums/broken+file.jpg"], None))
    assert good["status"] == "SUCCEEDED"
    assert bad["status"] == "FAILED"
    assert bad["error_code"] == "InvalidImageFormatException"
    good_prefix = (f"sync/{resources.content_bucket}/albums/summer 2026/beach & sun.jpg/"
                   f"version-{versions['albums/summer 2026/beach & sun.jpg']}/run-001/")
    labels = json.loads(s3.get_object(Bucket=resources.output_bucket, Key=good_prefix + "DetectLabels.json")["Body"].read())
    assert labels["Labels"]
    bad_key = (f"sync/{resources.content_bucket}/albums/broken+file.jpg/version-{versions['albums/broken+file.jpg']}"
               "/run-001/manifest.json")
    manifest = json.loads(s3.get_object(Bucket=resources.output_bucket, Key=bad_key)["Body"].read())
    assert manifest["status"] == "FAILED"
    assert tasks.counts() == {"PENDING": 0, "QUEUED": 0, "IN_PROGRESS": 0, "SUCCEEDED": 1, "FAILED": 1, "PARTIAL": 0}
    assert boto3.client("sqs").receive_message(QueueUrl=resources.image_queue_url).get("Messages") is None
