"""job_completed on moto: a notice becomes one ``done`` for the slot dispatcher; a failed send is never lost."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from tests.support.context import FakeLambdaContext

HOLDER = "t-0123abc-1-labels"


@pytest.fixture
def notices(resources):
    """The notice queue with one notice of a dispatcher job, and a way to deliver it to job_completed."""
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="rekpipe-job-completed")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def send(notice: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Type": "Notification",
                                                                     "Message": json.dumps(notice)}))

    def deliver(app: Any) -> dict[str, Any]:
        from rekpipe.emulator.event_sources import sqs_lambda_event

        deadline = time.monotonic() + 10  # a notice handed back for a quick retry is visible within 3 s
        while not (messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=180,
                                                   AttributeNames=["All"]).get("Messages")):
            assert time.monotonic() < deadline, "the notice did not come back"
            time.sleep(0.2)
        return app.handler(sqs_lambda_event(messages, queue_arn, "us-east-1"), FakeLambdaContext())

    return send, deliver


def _slot_messages(resources) -> list[dict[str, Any]]:
    return boto3.client("sqs").receive_message(QueueUrl=resources.slot_queue_url, MaxNumberOfMessages=10,
                                               AttributeNames=["All"]).get("Messages", [])


def test_job_completed_notice_of_a_dispatcher_job_becomes_done_for_the_slot_queue(load_handler, resources):
    # GIVEN a notice whose JobTag is a slot holder (the dispatcher started the job)
    app = load_handler("job_completed")
    notice = {"JobId": "job-77", "Status": "SUCCEEDED", "API": "StartLabelDetection", "JobTag": HOLDER}
    record = SQSRecord({"body": json.dumps({"Type": "Notification", "Message": json.dumps(notice)})})
    # WHEN it is handled twice (SNS delivers at least once)
    app.resume(record)
    app.resume(record)
    # THEN one done message waits in the slot group, deduplicated on the JobId
    messages = _slot_messages(resources)
    assert [json.loads(m["Body"]) for m in messages] == [
        {"holder": HOLDER, "job_id": "job-77", "kind": "done", "message": "", "status": "SUCCEEDED"}
    ]
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == "done-job-77"
    assert messages[0]["Attributes"]["MessageGroupId"] == "video-slots"


def test_job_completed_failed_send_is_redelivered_soon_and_then_sent(load_handler, notices, resources, monkeypatch):
    # GIVEN a notice whose first send to the slot queue is throttled
    send, deliver = notices
    send({"JobId": "job-1", "Status": "SUCCEEDED", "API": "StartLabelDetection", "JobTag": HOLDER})
    app = load_handler("job_completed")
    real_send, calls = app.sqs.send_message, []

    def flaky_send(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendMessage")
        return real_send(**kwargs)

    monkeypatch.setattr(app.sqs, "send_message", flaky_send)
    visibility: list[int] = []
    real_visibility = app.sqs.change_message_visibility
    monkeypatch.setattr(app.sqs, "change_message_visibility",
                        lambda **kw: (visibility.append(kw["VisibilityTimeout"]), real_visibility(**kw))[1])

    # WHEN it is delivered
    response = deliver(app)

    # THEN the record is reported failed, nothing reached the slot queue, and the notice comes back in seconds
    assert len(response["batchItemFailures"]) == 1
    assert _slot_messages(resources) == []
    assert visibility and all(1 <= v <= 3 for v in visibility)

    # WHEN the redelivered notice arrives (seconds later, not after the queue's 3-minute visibility timeout)
    response = deliver(app)

    # THEN its done is sent this time
    assert response["batchItemFailures"] == []
    assert [json.loads(m["Body"])["job_id"] for m in _slot_messages(resources)] == ["job-1"]


def test_job_completed_failed_job_carries_rekognitions_reason(load_handler, resources, rekognition):
    # GIVEN a job that failed in the simulator, and its notice
    bucket = "rekpipe-content"
    boto3.client("s3").put_object(Bucket=bucket, Key="clip.mp4", Body=b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    job_id = boto3.client("rekognition").start_label_detection(
        Video={"S3Object": {"Bucket": bucket, "Name": "clip.mp4"}}, JobTag=HOLDER)["JobId"]
    rekognition.complete_job(job_id, "FAILED")
    app = load_handler("job_completed")
    notice = {"JobId": job_id, "Status": "FAILED", "API": "StartLabelDetection", "JobTag": HOLDER}
    record = SQSRecord({"body": json.dumps({"Type": "Notification", "Message": json.dumps(notice)})})

    # WHEN it is handled
    app.resume(record)

    # THEN the done says FAILED and gives Rekognition's own status message
    (message,) = _slot_messages(resources)
    body = json.loads(message["Body"])
    assert (body["status"], body["holder"]) == ("FAILED", HOLDER)
    assert body["message"].startswith(f"Rekognition reports job {job_id} FAILED: ")


@pytest.mark.parametrize("tag", [None, "task1.1.labels", "x" * 65])
def test_job_completed_notice_of_a_job_we_did_not_start_is_dropped(load_handler, resources, tag):
    # GIVEN a notice whose JobTag is missing or no holder id (another workload's job on the same topic)
    app = load_handler("job_completed")
    notice = {"JobId": "job-9", "Status": "SUCCEEDED", "API": "StartLabelDetection", "JobTag": tag}
    record = SQSRecord({"body": json.dumps({"Type": "Notification", "Message": json.dumps(notice)})})
    # WHEN it is handled
    app.resume(record)
    # THEN nothing reaches the slot dispatcher, and nothing is raised (the notice is acknowledged)
    assert _slot_messages(resources) == []
