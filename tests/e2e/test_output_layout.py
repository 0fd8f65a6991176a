"""Outputs never overwrite each other: the same key in two buckets, and three versions of one key.

The real handlers run hop by hop on moto (S3 notice / Batch Operations task -> ingest -> stream ->
route -> analyze_image) against the Rekognition simulator. Every task's manifest and outputs are
then checked byte for byte against what the simulator answers for that task's own image bytes.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_plus

import boto3

from rekpipe.emulator.event_sources import StreamReader
from rekpipe.samples import jpeg_bytes, png_bytes
from rekpipe_shared.operations import operation
from rekpipe_shared.outputs import json_bytes
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.tasks import TaskTable, task_id_for
from tests.support.context import FakeLambdaContext
from tests.support.events import load_event
from tests.support.pump import deliver_sqs, deliver_stream, s3_event

SHARED_KEY = "archive/2019/beach day+é.png"
VERSIONED_KEY = "dup/same.jpg"


def _expected_bytes(api: str, body: bytes) -> bytes:
    """What the simulator answers for these image bytes, serialised as analyze_image stores it."""
    name = next(n for n in ("labels", "moderation") if operation(n).image_api == api)
    request = operation(name).image_request("unused", "unused", None, PipelineSettings())
    request["Image"] = {"Bytes": body}
    response = getattr(boto3.client("rekognition"), {"DetectLabels": "detect_labels",
                                                      "DetectModerationLabels": "detect_moderation_labels"}[api])(
        **request)
    response.pop("ResponseMetadata", None)
    return json_bytes(response)


def _read(bucket: str, key: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def test_outputs_same_key_two_buckets_and_three_versions_never_collide(resources, rekognition, load_handler):
    # GIVEN one key holding a different image in the content bucket and in the existing-content bucket,
    # and three versions (three different images) of another key
    s3 = boto3.client("s3")
    bodies: dict[tuple[str, str, str], bytes] = {}
    content_png = png_bytes(11, (120, 120))
    existing_png = png_bytes(12, (130, 110))
    version = s3.put_object(Bucket=resources.content_bucket, Key=SHARED_KEY, Body=content_png)["VersionId"]
    bodies[(resources.content_bucket, SHARED_KEY, version)] = content_png
    version = s3.put_object(Bucket=resources.existing_bucket, Key=SHARED_KEY, Body=existing_png)["VersionId"]
    bodies[(resources.existing_bucket, SHARED_KEY, version)] = existing_png
    for seed in (21, 22, 23):
        body = jpeg_bytes(seed, (160, 120))
        version = s3.put_object(Bucket=resources.content_bucket, Key=VERSIONED_KEY, Body=body)["VersionId"]
        bodies[(resources.content_bucket, VERSIONED_KEY, version)] = body
    assert len(set(bodies.values())) == 5
    ingest_s3, ingest_batch, route, analyze = (load_handler(name) for name in
                                               ("ingest_s3", "ingest_batch", "route_task", "analyze_image"))
    stream = StreamReader(resources.task_stream_arn)

    # WHEN every version is notified (the three versions in one S3 notice each, as S3 sends them), the
    # existing bucket's object is backfilled, and all images are analysed in one batch
    for (bucket, key, version_id) in bodies:
        if bucket == resources.content_bucket:
            event = s3_event(bucket, [key])
            head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
            event["Records"][0]["s3"]["object"].update(versionId=version_id, eTag=head["ETag"].strip('"'),
                                                       size=head["ContentLength"])
            ingest_s3.handler(event, FakeLambdaContext())
    batch = load_event("s3_batch_operations_v2", bucket=resources.existing_bucket,
                       key=quote_plus(SHARED_KEY, safe="/"), version=None)
    assert ingest_batch.handler(batch, FakeLambdaContext())["results"][0]["resultCode"] == "Succeeded"
    deliver_stream(stream, route.handler)
    assert deliver_sqs(resources.image_queue_url, analyze.handler) == {"delivered": 5, "failed": 0}

    # THEN five tasks SUCCEEDED, each with its own manifest under its own prefix
    tasks = TaskTable(resources.task_table)
    manifests = set()
    for (bucket, key, version_id), body in bodies.items():
        task = tasks.get(task_id_for(bucket, key, version_id, None))
        assert task["status"] == "SUCCEEDED", task
        prefix = f"sync/{bucket}/{key}/version-{version_id}/run-001/"
        assert task["manifest_uri"] == f"s3://{resources.output_bucket}/{prefix}manifest.json"
        manifests.add(task["manifest_uri"])
        manifest = json.loads(_read(resources.output_bucket, prefix + "manifest.json"))
        # AND the manifest names the exact source version
        assert manifest["source"] == {
            "bucket": bucket, "key": key, "version_id": version_id, "etag": task["etag"], "size": len(body),
            "uri": f"s3://{bucket}/{key}?versionId={version_id}"}
        assert manifest["task_id"] == task["task_id"] and manifest["run"] == 1
        # AND each output is byte for byte what the simulator answers for this task's own image
        for api in ("DetectLabels", "DetectModerationLabels"):
            stored = _read(resources.output_bucket, f"{prefix}{api}.json")
            assert stored == _expected_bytes(api, body), (bucket, key, version_id, api)
            assert manifest["outputs"][api] == task["outputs"][api] == f"s3://{resources.output_bucket}/{prefix}{api}.json"
    assert len(manifests) == 5
    # AND the two buckets' copies of the key are told apart, though their labels may look alike
    listed = boto3.client("s3").list_objects_v2(Bucket=resources.output_bucket, Prefix="sync/")["Contents"]
    assert len([o for o in listed if o["Key"].endswith("/manifest.json")]) == 5
    print("\n[layout] " + "\n[layout] ".join(sorted(o["Key"] for o in listed)))
    # AND latest.json of the versioned key names its current (third) version, and each bucket's key has its own
    current = s3.head_object(Bucket=resources.content_bucket, Key=VERSIONED_KEY)["VersionId"]
    pointer = json.loads(_read(resources.output_bucket,
                               f"sync/{resources.content_bucket}/{VERSIONED_KEY}/latest.json"))
    assert pointer["source"]["version_id"] == current
    assert pointer["manifest"].endswith(f"/version-{current}/run-001/manifest.json")
    for bucket in (resources.content_bucket, resources.existing_bucket):
        shared = json.loads(_read(resources.output_bucket, f"sync/{bucket}/{SHARED_KEY}/latest.json"))
        assert shared["source"]["bucket"] == bucket


def test_outputs_request_image_bytes_match_the_stored_source(resources, rekognition):
    # GIVEN the helper above compares against inline bytes: check that inline and S3 answers agree
    s3 = boto3.client("s3")
    body = jpeg_bytes(31, (100, 100))
    s3.put_object(Bucket=resources.content_bucket, Key="same.jpg", Body=body)
    client = boto3.client("rekognition")
    # WHEN the simulator is asked both ways / THEN the analysis is the same (it is keyed by the bytes)
    from_s3 = client.detect_labels(Image={"S3Object": {"Bucket": resources.content_bucket, "Name": "same.jpg"}})
    inline = client.detect_labels(Image={"Bytes": base64.b64decode(base64.b64encode(body))})
    from_s3.pop("ResponseMetadata")
    inline.pop("ResponseMetadata")
    assert from_s3 == inline
