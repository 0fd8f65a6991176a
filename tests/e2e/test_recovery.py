"""Every failure has a way back, on the embedded runtime: stream failures, every DLQ, failed sends.

Each test deploys the stack, breaks one hop the way AWS can break it (a function that keeps
failing, a message lost after its retries, a send that is throttled), puts the failure where
AWS would put it, recovers with the operator CLI, and asserts the object ends as it should.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe.samples import jpeg_bytes, mp4_bytes
from rekpipe_shared.routing import route_message
from tests.support.pump import s3_event
from tests.support.runtime import (
    RuntimeDefaults,
    entered_states,
    execution_history,
    slot_holders,
    tasks,
    upload,
    wait_for_tasks,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe.emulator.runtime import EmbeddedRuntime

FAST = {"video_operations": "labels", "image_operations": "labels", "video_slot_wait_seconds": 60,
        "video_job_wait_seconds": 600, "video_job_limit_retry_seconds": 1}
"""The schedule is off (``schedule_seconds=3600``): a video that finishes was resumed by its notice, never by the
tick's Get* check."""


@pytest.fixture
def runtime_defaults() -> RuntimeDefaults:
    """``make_runtime`` (tests/conftest.py) starts from these."""
    return RuntimeDefaults(settings=FAST, simulator={"seed": 5, "job_duration": (0.5, 0.5)})


class Fault:
    """Wraps one deployed function's real handler; while ``on``, ``broken(module, event, context)`` runs instead."""

    def __init__(self, runtime: EmbeddedRuntime, service: str, broken: Callable[..., Any]) -> None:
        self.on = True
        self.hits = 0

        def handler(event: Any, context: Any) -> Any:
            module = runtime.adapter.resolver.load_module(service)  # the adapter's own copy of the module
            if self.on:
                self.hits += 1
                return broken(module, event, context)
            return module.handler(event, context)

        runtime.adapter.register(runtime.function_name(service), handler)


def _crash(module: Any, event: Any, context: Any) -> Any:
    raise RuntimeError("simulated crash")


def _lose(module: Any, event: Any, context: Any) -> Any:
    return {"batchItemFailures": []}  # "processed": the message is deleted and nothing happened


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def _depth(url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)
    return value


def _status(runtime: EmbeddedRuntime, task_id: str) -> str | None:
    return (tasks(runtime).get(task_id) or {}).get("status")


def test_stream_failure_is_reported_stuck_and_redrive_stuck_routes_it_once(make_runtime):
    # GIVEN route_task failing every attempt of the stream mapping
    runtime = make_runtime()
    fault = Fault(runtime, "route_task", _crash)
    failures_url = runtime.outputs["RouteTaskFailuresUrl"]

    # WHEN an image is uploaded and its stream batch exhausts the mapping's retries
    task_id = upload(runtime, "photos/lost in the stream.jpg", jpeg_bytes(21))
    _wait(lambda: _depth(failures_url), "the on-failure record")
    fault.on = False
    record = json.loads(boto3.client("sqs").receive_message(QueueUrl=failures_url, VisibilityTimeout=0)
                        ["Messages"][0]["Body"])

    # THEN the on-failure record holds only the batch's metadata, and the task is PENDING and reported stuck
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert "Records" not in record and record["DDBStreamBatchInfo"]["batchSize"] >= 1
    assert fault.hits == 11  # the first attempt and the mapping's 10 retries
    assert _status(runtime, task_id) == "PENDING"
    status = json.loads(_cli("status", "--json", "--older-than", "0s").stdout)
    assert status["in_flight_too_long"]["PENDING"]["tasks"] == 1

    # WHEN the operator re-routes stuck tasks
    result = _cli("redrive", "--stuck", "--older-than", "0s")

    # THEN the task is routed, analysed once, and SUCCEEDED
    assert "PENDING: 1 task older than 0s routed" in result.stdout
    assert wait_for_tasks(runtime, [task_id])[task_id]["status"] == "SUCCEEDED"
    assert runtime.simulator.stats.calls["DetectLabels"] == 1

    # AND redriving the stream-failure DLQ afterwards routes nothing twice and empties it
    result = _cli("redrive", "--dlq", "--wait-seconds", "0")
    assert "RouteTaskFailures: route the tasks left PENDING: 1 messages handled" in result.stdout
    assert _depth(failures_url) == 0
    assert _status(runtime, task_id) == "SUCCEEDED" and runtime.simulator.stats.calls["DetectLabels"] == 1


def test_redrive_dlq_recovers_a_real_failed_message_of_every_dlq(make_runtime):
    # GIVEN a pipeline where each hop fails once, the way AWS leaves the failure in that hop's DLQ
    runtime = make_runtime()
    outputs, sqs = runtime.outputs, boto3.client("sqs")
    table = tasks(runtime)
    bucket = outputs["ContentBucketName"]

    # ... an S3 notice ingest_s3 failed on after its async retries (Lambda's DLQ: the event, with attributes)
    ingest = Fault(runtime, "ingest_s3", _crash)
    s3 = boto3.client("s3")
    version = s3.put_object(Bucket=bucket, Key="dlq/ingest.jpg", Body=jpeg_bytes(31))["VersionId"]
    ingest.on = False
    from rekpipe_shared.tasks import task_id_for

    ingest_task = task_id_for(bucket, "dlq/ingest.jpg", version, None)
    assert ingest.hits == 1 and table.get(ingest_task) is None
    sqs.send_message(QueueUrl=outputs["IngestS3DlqUrl"], MessageBody=json.dumps(s3_event(bucket, ["dlq/ingest.jpg"])),
                     MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in (
                         ("RequestID", str(uuid.uuid4())), ("ErrorCode", "200"),
                         ("ErrorMessage", "simulated crash"))})

    # ... an image and a video message given up on by their queues (SQS moves the body unchanged)
    lost = {service: Fault(runtime, service, _lose) for service in ("analyze_image", "start_video_workflow")}
    image_task = upload(runtime, "dlq/image.jpg", jpeg_bytes(32))
    video_task = upload(runtime, "dlq/video.mp4", mp4_bytes(33))
    for task_id, dlq in ((image_task, "ImageDlqUrl"), (video_task, "VideoDlqUrl")):
        _wait(lambda t=task_id: _status(runtime, t) == "QUEUED" and lost["analyze_image"].hits + lost[
            "start_video_workflow"].hits, "the task queued and its message consumed")
        task = table.get(task_id)
        sqs.send_message(QueueUrl=outputs[dlq], MessageBody=json.dumps(route_message(task, run=int(task["run"]))))
    _wait(lambda: lost["start_video_workflow"].hits and lost["analyze_image"].hits, "both messages consumed")
    for fault in lost.values():
        fault.on = False

    # ... the two EventBridge deliveries of an aborted execution's status change failed: the record of its
    # task (record_ended_execution) and its cancel to the slot dispatcher (the slot queue)
    from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore
    from rekpipe_shared.tasks import execution_name

    cleanup_task, cleanup_fault = upload_queued_video(runtime, "dlq/aborted.mp4", mp4_bytes(34))
    claimed = table.claim(cleanup_task, lease_seconds=3600)
    cleanup_fault.on = False  # claimed: no later admission sends it again
    ghost_name = execution_name(cleanup_task, int(claimed["run"]))  # an execution that was aborted and is gone
    ghost = outputs["VideoStateMachineArn"].replace(":stateMachine:", ":execution:") + f":{ghost_name}"
    table.set_attributes(cleanup_task, execution_arn=ghost)
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Step Functions Execution Status Change",
             "source": "aws.states", "account": "123456789012", "time": "2026-12-01T10:00:00Z", "region": "us-east-1",
             "resources": [ghost], "detail": {"executionArn": ghost, "stateMachineArn": outputs["VideoStateMachineArn"],
                                              "name": ghost_name, "status": "ABORTED", "startDate": 1, "stopDate": 2}}
    slot_queue_arn = sqs.get_queue_attributes(QueueUrl=outputs["SlotQueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    for rule, target in (("RecordEndedExecutionRule", outputs["RecordEndedExecutionFunctionArn"]),
                         ("CancelRule", slot_queue_arn)):
        sqs.send_message(QueueUrl=outputs["VideoEventsDlqUrl"], MessageBody=json.dumps(event),
                         MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in (
                             ("RULE_ARN", f"arn:aws:events:us-east-1:123456789012:rule/{rule}"),
                             ("TARGET_ARN", target),
                             ("ERROR_CODE", "Lambda.TooManyRequestsException"), ("ERROR_MESSAGE", "Rate exceeded"))})

    # WHEN the operator redrives every DLQ
    result = _cli("redrive", "--dlq", "--wait-seconds", "0")

    # THEN every message was handled and every object ends as it should
    for line in ("IngestS3Dlq: re-ingest S3 notices: 1 messages handled",
                 "ImageDlq: move back to the source queue: 1 messages handled",
                 "VideoDlq: move back to the source queue: 1 messages handled",
                 "VideoEventsDlq: re-run the EventBridge target: 2 messages handled"):
        assert line in result.stdout
    done = wait_for_tasks(runtime, [ingest_task, image_task, video_task, cleanup_task], timeout=90)
    assert {done[t]["status"] for t in (ingest_task, image_task, video_task)} == {"SUCCEEDED"}
    assert done[cleanup_task]["status"] == "FAILED" and done[cleanup_task]["error_code"] == "ExecutionAborted"
    # AND the dispatcher heard of the end: a want of that execution arriving late gets no slot
    store = DynamoDBSlotStore(outputs["SemaphoreTableName"], default_limit=20)
    _wait(lambda: ghost in store.load().tombstones, "the redriven cancel to reach the dispatcher")
    for name in ("IngestS3DlqUrl", "ImageDlqUrl", "VideoDlqUrl", "VideoEventsDlqUrl"):
        assert _depth(outputs[name]) == 0, name


def upload_queued_video(runtime: EmbeddedRuntime, key: str, body: bytes) -> tuple[str, Fault]:
    """A video task that is QUEUED and admitted, with its message lost (start_video_workflow swallowed it).

    The fault stays on (turn it off): the task is still in the backlog, so any admission would send it again.
    """
    fault = Fault(runtime, "start_video_workflow", _lose)
    task_id = upload(runtime, key, body)
    _wait(lambda: _status(runtime, task_id) == "QUEUED" and fault.hits, "the video queued and its message lost")
    return task_id, fault


def test_job_notice_in_its_dlq_is_moved_back_and_resumes_the_execution(make_runtime):
    # GIVEN a video whose job finished but whose notice ended in the job-completed DLQ
    runtime = make_runtime(lost_notice_rate=1.0)
    task_id = upload(runtime, "dlq/notice.mp4", mp4_bytes(41))
    job_id = _wait(lambda: (runtime.simulator.lost_notices or [None])[0], "the job to finish (notice lost)")
    job = runtime.simulator.jobs[job_id]
    envelope = {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": runtime.outputs["VideoTopicArn"],
                "Message": json.dumps(job.notice(int(time.time() * 1000))), "Timestamp": "2026-12-01T10:00:00.000Z",
                "SignatureVersion": "1"}
    boto3.client("sqs").send_message(QueueUrl=runtime.outputs["JobCompletedDlqUrl"], MessageBody=json.dumps(envelope))

    # WHEN the DLQs are redriven
    result = _cli("redrive", "--dlq", "--wait-seconds", "0")

    # THEN the notice resumes the waiting execution (no tick runs: the schedule is off) and the video SUCCEEDED
    assert "JobCompletedDlq: move back to the source queue: 1 messages handled" in result.stdout
    task = wait_for_tasks(runtime, [task_id], timeout=60)[task_id]
    assert task["status"] == "SUCCEEDED"
    assert entered_states(execution_history(task["execution_arn"])).count("RunJob") == 1
    assert slot_holders(runtime) == {}


class _FailOnce:
    """An SQS client whose first SendMessage is throttled, as the service can do."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.failed = 0

    def send_message(self, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed += 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SendMessage")
        return self._client.send_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_failed_send_in_job_completed_is_resent_by_the_redelivery_within_seconds(make_runtime):
    # GIVEN job_completed whose first send of a done to the slot dispatcher is throttled
    runtime = make_runtime()
    clients: list[_FailOnce] = []

    def first_send_fails(module: Any, event: Any, context: Any) -> Any:
        if not clients:
            clients.append(_FailOnce(module.sqs))
            module.sqs = clients[0]
        return module.handler(event, context)

    Fault(runtime, "job_completed", first_send_fails)

    # WHEN a video is analysed
    task_id = upload(runtime, "videos/throttled resume.mp4", mp4_bytes(51))
    task = wait_for_tasks(runtime, [task_id], timeout=60)[task_id]  # the queue's visibility timeout is 3 minutes

    # THEN the send failed once, the notice came back in seconds and was resent, and the video SUCCEEDED
    # through its notice (no tick runs: the schedule is off), its slot freed
    assert clients and clients[0].failed == 1
    assert task["status"] == "SUCCEEDED"
    assert entered_states(execution_history(task["execution_arn"])).count("RunJob") == 1
    assert slot_holders(runtime) == {}
