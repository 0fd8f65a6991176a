"""route_task on moto: real stream records in, one message per task out, status QUEUED."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from rekpipe.emulator.event_sources import StreamReader
from rekpipe_shared.tasks import NewTask, TaskTable
from tests.support.context import FakeLambdaContext
from tests.support.pump import deliver_stream, message_bodies


def _new(bucket: str, key: str, media: str) -> NewTask:
    return NewTask(bucket=bucket, key=key, version_id=None, etag=f"etag-{key}", size=10, media_type=media,
                   operations=("labels",), source="s3-event")


@pytest.fixture
def stream(resources) -> StreamReader:
    return StreamReader(resources.task_stream_arn)


def test_route_task_sends_new_tasks_to_their_queue(resources, load_handler, stream):
    # GIVEN a new image task and a new video task
    tasks = TaskTable(resources.task_table)
    image, video = _new("b", "a.jpg", "image"), _new("b", "v.mp4", "video")
    tasks.create(image)
    tasks.create(video)

    # WHEN route_task reads the stream (counter updates included)
    counts = deliver_stream(stream, load_handler("route_task").handler)

    # THEN the image is on its queue once; the video waits in the backlog for admission, with no message
    assert counts["failed"] == 0
    assert [m["task_id"] for m in message_bodies(resources.image_queue_url)] == [image.task_id]
    assert message_bodies(resources.video_queue_url) == []
    assert [t["task_id"] for t in tasks.iter_video_backlog()] == [video.task_id]
    assert [t["task_id"] for t in tasks.iter_in_flight("QUEUED")] == [image.task_id]  # not a stuck-QUEUED candidate
    # AND both are QUEUED (run 1), and the dispatcher was nudged with a tick in the slot group
    assert (tasks.get(image.task_id)["run"], tasks.get(video.task_id)["run"]) == (1, 1)
    # AND once route_task has read its own QUEUED changes from the stream, they are counted
    deliver_stream(stream, load_handler("route_task").handler)
    assert tasks.counts()["QUEUED"] == 2 and tasks.counts()["PENDING"] == 0
    [tick] = boto3.client("sqs").receive_message(QueueUrl=resources.slot_queue_url, MaxNumberOfMessages=10,
                                                 AttributeNames=["All"])["Messages"]
    assert (json.loads(tick["Body"])["kind"], json.loads(tick["Body"])["admit_only"]) == ("tick", True)
    assert tick["Attributes"]["MessageGroupId"] == "video-slots"


def test_route_task_video_backlogged_even_when_the_nudge_fails(resources, load_handler, stream, monkeypatch):
    # GIVEN a new video task, and SQS refusing the nudge to the slot queue
    tasks = TaskTable(resources.task_table)
    video = _new("b", "v.mp4", "video")
    tasks.create(video)
    app = load_handler("route_task")

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "SendMessage")

    monkeypatch.setattr(app.sqs, "send_message", refuse)

    # WHEN route_task reads the stream
    counts = deliver_stream(stream, app.handler)

    # THEN the record succeeds: the video is in the backlog, and the schedule's tick will admit it
    assert counts["failed"] == 0
    assert [t["task_id"] for t in tasks.iter_video_backlog()] == [video.task_id]


def test_route_task_ignores_changes_that_are_not_new_work(resources, load_handler, stream):
    # GIVEN a routed task whose QUEUED update is now on the stream
    tasks = TaskTable(resources.task_table)
    image = _new("b", "a.jpg", "image")
    tasks.create(image)
    app = load_handler("route_task")
    deliver_stream(stream, app.handler)
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=resources.image_queue_url)

    # WHEN route_task reads the follow-up changes
    counts = deliver_stream(stream, app.handler)

    # THEN no message is sent again
    assert counts["delivered"] >= 1
    assert message_bodies(resources.image_queue_url) == []


def test_route_task_requeued_task_is_routed_again(resources, load_handler, stream):
    # GIVEN a task that failed and an operator re-queued
    tasks = TaskTable(resources.task_table)
    image = _new("b", "a.jpg", "image")
    tasks.create(image)
    app = load_handler("route_task")
    deliver_stream(stream, app.handler)
    tasks.claim(image.task_id, lease_seconds=60)
    tasks.finish(image.task_id, "FAILED", error_code="ThrottlingException", error_message="x")
    boto3.client("sqs").purge_queue(QueueUrl=resources.image_queue_url)
    tasks.requeue(image.task_id)

    # WHEN route_task reads the stream
    deliver_stream(stream, app.handler)

    # THEN the task is queued for a second run
    [body] = message_bodies(resources.image_queue_url)
    assert body["task_id"] == image.task_id
    assert body["run"] == 2
    assert tasks.get(image.task_id)["status"] == "QUEUED"
    assert tasks.needing_attention("FAILED") == []


def test_route_task_reports_the_record_it_could_not_send(resources, load_handler, stream, monkeypatch):
    # GIVEN two new tasks, and SQS refusing the message of the second
    tasks = TaskTable(resources.task_table)
    good, bad = _new("b", "good.jpg", "image"), _new("b", "bad.jpg", "image")
    tasks.create(good)
    tasks.create(bad)
    app = load_handler("route_task")
    real_send = app.sqs.send_message

    def flaky_send(**kwargs):
        if bad.task_id in kwargs["MessageBody"]:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "SendMessage")
        return real_send(**kwargs)

    monkeypatch.setattr(app.sqs, "send_message", flaky_send)
    records = stream.read()

    # WHEN route_task handles the batch
    response = app.handler({"Records": records}, FakeLambdaContext())

    # THEN only the failed record is reported (by sequence number) and its task stays PENDING
    bad_record = next(r for r in records if r["dynamodb"]["Keys"]["task_id"]["S"] == bad.task_id)
    assert response["batchItemFailures"] == [{"itemIdentifier": bad_record["dynamodb"]["SequenceNumber"]}]
    assert tasks.get(good.task_id)["status"] == "QUEUED"
    assert tasks.get(bad.task_id)["status"] == "PENDING"
