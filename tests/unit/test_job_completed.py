"""job_completed and start_job's resume path on moto: send first, then claim; closed tokens are harmless."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rekpipe_shared.job_tokens import JobTokenStore
from tests.support.context import FakeLambdaContext

TAG = "task1.1.labels"
TOKEN = "token-of-the-waiting-state"


class FakeStepFunctions:
    """Records SendTask* calls; raises the queued errors first, in order."""

    def __init__(self, *errors: str) -> None:
        self.errors = list(errors)
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.exceptions = boto3.client("stepfunctions").exceptions

    def _call(self, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.errors:
            code = self.errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, name)
        self.sent.append((name, kwargs))
        return {}

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendTaskSuccess", kwargs)

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendTaskFailure", kwargs)


@pytest.fixture
def notices(resources):
    """A stored token, the notice queue, and a way to deliver one notice to job_completed."""
    store = JobTokenStore(resources.job_token_table)
    store.put_token(TAG, task_token=TOKEN, operation="labels", task_id="task1", execution_arn="arn:exec")
    store.set_job_id(TAG, "job-1")
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="rekpipe-job-completed")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    notice = {"JobId": "job-1", "Status": "SUCCEEDED", "API": "StartLabelDetection", "JobTag": TAG}
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

    return store, queue_url, deliver


def _visible_in(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_job_completed_failed_send_is_not_claimed_and_the_notice_returns_soon(load_handler, notices, monkeypatch):
    # GIVEN a notice whose first SendTaskSuccess is throttled
    store, queue_url, deliver = notices
    app = load_handler("job_completed")
    app.sfn = FakeStepFunctions("ThrottlingException")
    visibility: list[int] = []
    real = app.sqs.change_message_visibility
    monkeypatch.setattr(app.sqs, "change_message_visibility",
                        lambda **kw: (visibility.append(kw["VisibilityTimeout"]), real(**kw))[1])

    # WHEN it is delivered
    response = deliver(app)

    # THEN the record is reported failed, the token is not claimed, and the notice comes back in seconds
    assert len(response["batchItemFailures"]) == 1
    assert "notified_token" not in store.find(tag=TAG, job_id=None)
    assert visibility and all(1 <= v <= 3 for v in visibility)

    # WHEN the redelivered notice arrives (seconds later, not after the queue's 3-minute visibility timeout)
    response = deliver(app)

    # THEN it is sent this time, and only then claimed
    assert response["batchItemFailures"] == []
    assert [name for name, _ in app.sfn.sent] == ["SendTaskSuccess"]
    assert store.find(tag=TAG, job_id=None)["notified_token"] == TOKEN


def test_job_completed_closed_token_is_harmless_and_claimed(load_handler, notices):
    # GIVEN a notice for a token Step Functions already closed (a concurrent delivery resumed it)
    store, _, deliver = notices
    app = load_handler("job_completed")
    app.sfn = FakeStepFunctions("TaskTimedOut")

    # WHEN it is delivered
    response = deliver(app)

    # THEN it succeeds (nothing to retry) and the notice is claimed, so later duplicates are dropped
    assert response["batchItemFailures"] == []
    assert store.find(tag=TAG, job_id=None)["notified_token"] == TOKEN


def test_job_completed_duplicate_after_a_successful_send_is_not_resent(load_handler, notices, resources):
    # GIVEN a notice already sent and claimed
    store, queue_url, deliver = notices
    app = load_handler("job_completed")
    app.sfn = FakeStepFunctions()
    deliver(app)
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Message": json.dumps(
        {"JobId": "job-1", "Status": "SUCCEEDED", "JobTag": TAG})}))

    # WHEN SNS delivers it again
    response = deliver(app)

    # THEN it is dropped as a duplicate: one send in all
    assert response["batchItemFailures"] == []
    assert len(app.sfn.sent) == 1


def test_start_job_resume_sends_first_then_claims(load_handler, notices, rekognition):
    # GIVEN start_job's resume path for a job that already finished, with a send that fails once
    store, _, _ = notices
    app = load_handler("start_job")
    app.sfn = FakeStepFunctions("ServiceUnavailable")
    bucket = "rekpipe-content"
    boto3.client("s3").put_object(Bucket=bucket, Key="clip.mp4", Body=b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    job_id = boto3.client("rekognition").start_label_detection(
        Video={"S3Object": {"Bucket": bucket, "Name": "clip.mp4"}})["JobId"]
    rekognition.complete_job(job_id, "SUCCEEDED")

    # WHEN the resume check runs and its send fails
    with pytest.raises(ClientError):
        app._resume_if_finished("GetLabelDetection", job_id, TOKEN, TAG)

    # THEN nothing was claimed, so the retry (or the notice) sends it again
    assert "notified_token" not in store.find(tag=TAG, job_id=None)
    app._resume_if_finished("GetLabelDetection", job_id, TOKEN, TAG)
    assert [name for name, _ in app.sfn.sent] == ["SendTaskSuccess"]
    assert store.find(tag=TAG, job_id=None)["notified_token"] == TOKEN
    # AND once claimed, a repeat of the check sends nothing more
    app._resume_if_finished("GetLabelDetection", job_id, TOKEN, TAG)
    assert len(app.sfn.sent) == 1


def test_job_completed_notice_of_a_dispatcher_job_becomes_done_for_the_slot_queue(load_handler, resources):
    # GIVEN a notice whose JobTag is a slot holder (the dispatcher started the job)
    app = load_handler("job_completed")
    notice = {"JobId": "job-77", "Status": "SUCCEEDED", "API": "StartLabelDetection", "JobTag": "h-0123abc"}
    record = type("Record", (), {"body": json.dumps({"Type": "Notification", "Message": json.dumps(notice)})})()
    # WHEN it is handled twice (SNS delivers at least once)
    app.resume(record)
    app.resume(record)
    # THEN one done message waits in the slot group, deduplicated on the JobId
    messages = boto3.client("sqs").receive_message(QueueUrl=resources.slot_queue_url, MaxNumberOfMessages=10,
                                                   AttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [
        {"holder": "h-0123abc", "job_id": "job-77", "kind": "done", "message": "", "status": "SUCCEEDED"}
    ]
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == "done-job-77"
    assert messages[0]["Attributes"]["MessageGroupId"] == "video-slots"
