"""slot_dispatcher on moto and the Rekognition simulator: real Start*/Get* with ClientRequestToken =
holder, the DynamoDB store, and the per-message error boundary (quarantine, FIFO partial failure)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from rekpipe.samples import mp4_bytes
from rekpipe_shared.slots import Cancel, Done, SetLimit, Tick, Want, encode
from tests.support.context import FakeLambdaContext

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:rekpipe-slots.fifo"


class FakeStepFunctions:
    """Tokens as Step Functions keeps them: open until resumed; heartbeats and sends on closed ones fail."""

    def __init__(self, *open_tokens: str) -> None:
        self.open = set(open_tokens)
        self.outputs: dict[str, Any] = {}
        self.throttle_next = 0

    def _check(self, token: str, op: str) -> None:
        if self.throttle_next:
            self.throttle_next -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, op)
        if token not in self.open:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "closed"}}, op)

    def send_task_heartbeat(self, taskToken: str) -> dict[str, Any]:
        self._check(taskToken, "SendTaskHeartbeat")
        return {}

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:
        self._check(taskToken, "SendTaskSuccess")
        self.open.discard(taskToken)
        self.outputs[taskToken] = json.loads(output)
        return {}

    def send_task_failure(self, taskToken: str, error: str, cause: str) -> dict[str, Any]:
        self._check(taskToken, "SendTaskFailure")
        self.open.discard(taskToken)
        self.outputs[taskToken] = {"error": error, "cause": cause}
        return {}


def _event(*bodies: str) -> dict[str, Any]:
    return {"Records": [
        {"messageId": f"m-{i}", "receiptHandle": f"r-{i}", "body": body,
         "attributes": {"MessageGroupId": "video-slots", "MessageDeduplicationId": f"d-{i}"},
         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN,
         "awsRegion": "us-east-1"}
        for i, body in enumerate(bodies)
    ]}


@pytest.fixture
def dispatcher(load_handler, resources, rekognition, monkeypatch) -> Any:
    """The handler with a fake Step Functions (moto's knows no callback tokens of ours)."""
    monkeypatch.setenv("VIDEO_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:video")
    boto3.client("s3").put_object(Bucket=resources.content_bucket, Key="clip.mp4", Body=mp4_bytes(1))
    app = load_handler("slot_dispatcher")
    app.world.sfn = FakeStepFunctions("tok-A", "tok-B")
    # The stored limit moves only with set_limit here; the job-quota test gives the world its quotas back.
    app.world.quotas = None
    return app


def _record_visibility(dispatcher: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The ChangeMessageVisibility calls the handler makes (receipt handle, seconds); the fake event's
    receipt handles are no real ones, so the calls are recorded instead of sent."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(dispatcher.sqs, "change_message_visibility",
                        lambda **kw: calls.append((kw["ReceiptHandle"], kw["VisibilityTimeout"])))
    return calls


def _want(holder: str, token: str, resources: Any) -> str:
    task = {"task_id": "t1", "run": 1, "bucket": resources.content_bucket, "key": "clip.mp4"}
    return encode(Want(holder, token, f"arn:exec:{holder}", {"task": task, "operation": "labels"}))


def test_slot_dispatcher_starts_the_job_itself_with_the_holder_as_token(dispatcher, resources, rekognition):
    # GIVEN limit 1 and two wants
    dispatcher.handler(_event(encode(SetLimit(1))), FakeLambdaContext())
    # WHEN both are dispatched
    result = dispatcher.handler(_event(_want("h-A", "tok-A", resources), _want("h-B", "tok-B", resources)),
                                FakeLambdaContext())
    # THEN one job runs, tagged with its holder, and the other waits
    assert result == {"batchItemFailures": []}
    snap = dispatcher.store.load()
    assert set(snap.holders) == {"h-A"} and set(snap.waiters) == {"h-B"}
    job = rekognition.jobs[snap.holders["h-A"].job_id]
    assert job.job_tag == "h-A"
    assert rekognition.running_jobs() == 1
    assert dispatcher.store.header() == {"limit": 1, "holders": 1, "waiters": 1, "version": snap.header.version,
                                        "quota_limit": 0}


def test_slot_dispatcher_done_resumes_and_grants_the_next(dispatcher, resources, rekognition):
    # GIVEN A runs and B waits at limit 1
    dispatcher.handler(_event(encode(SetLimit(1)), _want("h-A", "tok-A", resources), _want("h-B", "tok-B", resources)),
                       FakeLambdaContext())
    job_a = dispatcher.store.load().holders["h-A"].job_id
    rekognition.complete_job(job_a, "SUCCEEDED")
    # WHEN A's notice arrives twice
    done = encode(Done("h-A", job_a, "SUCCEEDED"))
    dispatcher.handler(_event(done, done), FakeLambdaContext())
    # THEN A's token got the job's id, B holds, and one slot is in use
    assert dispatcher.world.sfn.outputs["tok-A"] == {"jobId": job_a, "status": "SUCCEEDED", "statusMessage": ""}
    assert set(dispatcher.store.load().holders) == {"h-B"}


def test_slot_dispatcher_tick_finds_a_lost_notice_with_get(dispatcher, resources, rekognition):
    # GIVEN A's job ended but its notice never came
    dispatcher.handler(_event(encode(SetLimit(1)), _want("h-A", "tok-A", resources)), FakeLambdaContext())
    rekognition.complete_job(dispatcher.store.load().holders["h-A"].job_id, "SUCCEEDED")
    # WHEN the tick runs
    dispatcher.handler(_event(encode(Tick("2026-12-01T13:00:00Z"))), FakeLambdaContext())
    # THEN Get* freed the slot and resumed A
    assert dispatcher.store.load().holders == {}
    assert dispatcher.world.sfn.outputs["tok-A"]["status"] == "SUCCEEDED"


def test_slot_dispatcher_quarantines_a_bad_message_and_goes_on(dispatcher, resources):
    # GIVEN a body that is no slot message, then a valid want
    # WHEN both are dispatched
    result = dispatcher.handler(_event('{"kind": "grab"}', _want("h-A", "tok-A", resources)), FakeLambdaContext())
    # THEN the bad one is quarantined and acknowledged, and the want is applied
    assert result == {"batchItemFailures": []}
    assert [q["id"] for q in dispatcher.store.quarantined()] == ["m-0"]
    assert "h-A" in dispatcher.store.load().holders


def test_slot_dispatcher_throttled_heartbeat_defers_the_grant_to_the_next_message(dispatcher, resources):
    # GIVEN Step Functions throttles the liveness heartbeat that precedes the grant, then a tick follows
    dispatcher.world.sfn.throttle_next = 1
    # WHEN the batch is dispatched
    result = dispatcher.handler(_event(_want("h-A", "tok-A", resources), encode(Tick("t"))), FakeLambdaContext())
    # THEN nothing failed: the want parked, and the tick granted it
    assert result == {"batchItemFailures": []}
    assert set(dispatcher.store.load().holders) == {"h-A"}


def test_slot_dispatcher_store_failure_fails_the_message_and_those_after_it(dispatcher, resources, monkeypatch):
    # GIVEN the slot table refuses writes
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "busy"}},
                          "TransactWriteItems")

    monkeypatch.setattr(dispatcher.store.client, "transact_write_items", refuse)
    # WHEN two messages are dispatched
    # THEN the whole batch fails (the store itself failed), so SQS redelivers both in order
    shortened = _record_visibility(dispatcher, monkeypatch)
    with pytest.raises(BatchProcessingError):
        dispatcher.handler(_event(_want("h-A", "tok-A", resources), encode(Tick("t"))), FakeLambdaContext())
    assert dispatcher.store.load().waiters == {}
    # AND both come back in seconds, not after the queue's visibility timeout (the group is blocked meanwhile)
    assert shortened == [("r-0", 5), ("r-1", 5)]


def test_slot_dispatcher_later_failure_hands_back_it_and_the_rest(dispatcher, resources, monkeypatch):
    # GIVEN the first message applies, then the store starts refusing writes
    dispatcher.handler(_event(_want("h-A", "tok-A", resources)), FakeLambdaContext())
    calls = {"n": 0}
    real = dispatcher.store.client.transact_write_items

    def refuse_after_one(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(dispatcher.store.client, "transact_write_items", refuse_after_one)
    shortened = _record_visibility(dispatcher, monkeypatch)
    # WHEN three messages come in one batch
    result = dispatcher.handler(
        _event(encode(SetLimit(3)), _want("h-B", "tok-B", resources), encode(Tick("t"))), FakeLambdaContext()
    )
    # THEN the first applied and the failed one and every later one are handed back, in order, to return in seconds
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    assert dispatcher.store.load().header.limit == 3
    assert shortened == [("r-1", 5), ("r-2", 5)]


def _backlog(resources: Any, count: int) -> list[str]:
    """``count`` video tasks routed into the backlog, oldest first."""
    from rekpipe_shared.tasks import NewTask, TaskTable

    tasks, ids = TaskTable(resources.task_table), []
    for index in range(count):
        task = NewTask(bucket=resources.content_bucket, key=f"v{index}.mp4", version_id=None, etag=f"e{index}",
                       size=10, media_type="video", operations=("labels",), source="s3-event")
        tasks.create(task)
        tasks.mark_queued(task.task_id, backlog=True)
        ids.append(task.task_id)
    return ids


def _video_queue(resources: Any, *, drain: bool = False) -> list[dict[str, Any]]:
    """The video queue's messages; with ``drain`` they are also deleted (PurgeQueue allows one call a minute)."""
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=resources.video_queue_url, MaxNumberOfMessages=10,
                                   VisibilityTimeout=30 if drain else 0).get("Messages", [])
    for message in messages if drain else []:
        sqs.delete_message(QueueUrl=resources.video_queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def _set_limit_before_the_backlog(dispatcher: Any, limit: int) -> None:
    """Store the limit while the backlog is empty (set_limit admits from the backlog too)."""
    dispatcher.handler(_event(encode(SetLimit(limit))), FakeLambdaContext())


def test_slot_dispatcher_tick_admits_limit_plus_headroom_from_the_backlog_oldest_first(dispatcher, resources):
    # GIVEN limit 1 (headroom 2) and a backlog of 5 videos
    _set_limit_before_the_backlog(dispatcher, 1)
    ids = _backlog(resources, 5)
    # WHEN the tick runs
    dispatcher.handler(_event(encode(Tick("2026-12-01T13:00:00Z"))), FakeLambdaContext())
    # THEN the 3 oldest are sent to the video queue, as route_task would have sent them (run 1)
    sent = _video_queue(resources)
    assert [m["task_id"] for m in sent] == ids[:3]
    assert {(m["media_type"], m["run"]) for m in sent} == {("video", 1)}


def test_slot_dispatcher_unclaimed_admissions_count_against_the_room(dispatcher, resources):
    # GIVEN limit 1 and a backlog of 5, of which a tick admitted 3 that start_video_workflow has not claimed
    from rekpipe_shared.tasks import TaskTable

    _set_limit_before_the_backlog(dispatcher, 1)
    ids = _backlog(resources, 5)
    dispatcher.handler(_event(encode(Tick("t1"))), FakeLambdaContext())
    assert len(_video_queue(resources, drain=True)) == 3
    # WHEN the next tick runs before any claim
    dispatcher.handler(_event(encode(Tick("t2"))), FakeLambdaContext())
    # THEN nothing is sent: the 3 admitted fill the room, and none is sent twice
    assert _video_queue(resources) == []
    # AND once one is claimed and done (its execution ended), the next tick admits the next oldest in its place
    table = TaskTable(resources.task_table)
    table.claim(ids[0], lease_seconds=60)
    table.finish(ids[0], "SUCCEEDED")
    dispatcher.handler(_event(encode(Tick("t3"))), FakeLambdaContext())
    assert [m["task_id"] for m in _video_queue(resources)] == [ids[3]]


def test_slot_dispatcher_admission_sends_again_a_video_left_unclaimed_for_minutes(dispatcher, resources):
    # GIVEN limit 1 and 3 admitted videos whose messages were lost (nobody claims them)
    _set_limit_before_the_backlog(dispatcher, 1)
    ids = _backlog(resources, 4)
    dispatcher.handler(_event(encode(Tick("t1"))), FakeLambdaContext())
    assert len(_video_queue(resources, drain=True)) == 3
    admission = dispatcher.world._admit
    # WHEN a tick runs more than RESEND_AFTER_SECONDS later
    from rekpipe_shared.slots.admission import RESEND_AFTER_SECONDS

    admission.clock = lambda: time.time() + RESEND_AFTER_SECONDS + 1
    dispatcher.handler(_event(encode(Tick("t2"))), FakeLambdaContext())
    # THEN those 3 are sent again, still counted, and the fourth still waits in the backlog
    assert sorted(m["task_id"] for m in _video_queue(resources)) == sorted(ids[:3])


def test_slot_dispatcher_admission_failure_of_one_video_does_not_stop_the_others(dispatcher, resources, monkeypatch):
    # GIVEN a backlog of 3, and SQS refusing the first video's message
    _set_limit_before_the_backlog(dispatcher, 1)
    ids = _backlog(resources, 3)
    admission = dispatcher.world._admit
    real_send = admission.sqs.send_message

    def flaky(**kwargs: Any) -> dict[str, Any]:
        if ids[0] in kwargs["MessageBody"]:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "SendMessage")
        return real_send(**kwargs)

    monkeypatch.setattr(admission.sqs, "send_message", flaky)
    # WHEN the tick runs
    result = dispatcher.handler(_event(encode(Tick("t1"))), FakeLambdaContext())
    # THEN the tick succeeds, the others are admitted, and the first stays in the backlog for the next tick
    assert result == {"batchItemFailures": []}
    assert sorted(m["task_id"] for m in _video_queue(resources)) == sorted(ids[1:])
    from rekpipe_shared.tasks import TaskTable

    assert ids[0] in [t["task_id"] for t in TaskTable(resources.task_table).iter_video_backlog()]


def test_slot_dispatcher_an_execution_ending_refills_from_the_backlog_without_waiting_for_the_tick(
        dispatcher, resources, rekognition):
    # GIVEN limit 1 with A running, and a backlog of 4 videos
    _set_limit_before_the_backlog(dispatcher, 1)
    dispatcher.handler(_event(_want("h-A", "tok-A", resources)), FakeLambdaContext())
    ids = _backlog(resources, 4)
    job_a = dispatcher.store.load().holders["h-A"].job_id
    rekognition.complete_job(job_a, "SUCCEEDED")
    # WHEN A's done arrives (no tick)
    dispatcher.handler(_event(encode(Done("h-A", job_a, "SUCCEEDED"))), FakeLambdaContext())
    # THEN nothing is admitted yet: A's execution stays open to collect its results, so no room was made
    assert _video_queue(resources) == []
    # WHEN A's execution ends (its cancel, no tick)
    dispatcher.handler(_event(encode(Cancel("arn:exec:h-A", "SUCCEEDED"))), FakeLambdaContext())
    # THEN the freed room is refilled at once: limit + headroom videos, oldest first
    assert [m["task_id"] for m in _video_queue(resources)] == ids[:3]


def test_slot_dispatcher_an_orphans_job_ending_refills_from_the_backlog_at_once(dispatcher, resources, rekognition):
    # GIVEN limit 1 with A's job running after its execution ended (A is an orphan), and a backlog of 4 videos
    _set_limit_before_the_backlog(dispatcher, 1)
    dispatcher.handler(_event(_want("h-A", "tok-A", resources)), FakeLambdaContext())
    dispatcher.handler(_event(encode(Cancel("arn:exec:h-A", "ABORTED"))), FakeLambdaContext())
    ids = _backlog(resources, 4)
    _video_queue(resources, drain=True)
    job_a = dispatcher.store.load().holders["h-A"].job_id
    rekognition.complete_job(job_a, "SUCCEEDED")
    # WHEN the orphan's done arrives (no tick)
    dispatcher.handler(_event(encode(Done("h-A", job_a, "SUCCEEDED"))), FakeLambdaContext())
    # THEN its slot and its room are refilled at once
    assert dispatcher.store.load().holders == {}
    assert [m["task_id"] for m in _video_queue(resources)] == ids[:3]


def test_slot_dispatcher_open_executions_never_exceed_limit_plus_headroom(dispatcher, resources):
    # GIVEN limit 1 (room for 3) and a backlog of 6, of which 3 were admitted and claimed, whose wants have not
    # arrived yet (a loaded machine: their executions are still starting)
    from rekpipe_shared.tasks import TaskTable

    _set_limit_before_the_backlog(dispatcher, 1)
    ids = _backlog(resources, 6)
    dispatcher.handler(_event(encode(Tick("t1"))), FakeLambdaContext())
    assert len(_video_queue(resources, drain=True)) == 3
    for task_id in ids[:3]:
        TaskTable(resources.task_table).claim(task_id, lease_seconds=60)
    # WHEN ticks keep coming
    for at in ("t2", "t3"):
        dispatcher.handler(_event(encode(Tick(at))), FakeLambdaContext())
    # THEN nothing more is admitted: 3 video executions are open, the cap
    assert _video_queue(resources) == []


def test_slot_dispatcher_admission_that_dies_after_its_send_sends_again_next_time(dispatcher, resources, monkeypatch):
    # GIVEN limit 1, a backlog of one video, and the mark after the send failing (the Lambda dies there)
    _set_limit_before_the_backlog(dispatcher, 1)
    (task_id,) = _backlog(resources, 1)
    admission = dispatcher.world._admit
    real_mark = admission.tasks.mark_admitted

    def die(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "died"}}, "TransactWriteItems")

    monkeypatch.setattr(admission.tasks, "mark_admitted", die)
    dispatcher.handler(_event(encode(Tick("t1"))), FakeLambdaContext())
    assert [m["task_id"] for m in _video_queue(resources, drain=True)] == [task_id]
    # WHEN the next tick runs with the table healthy again
    monkeypatch.setattr(admission.tasks, "mark_admitted", real_mark)
    dispatcher.handler(_event(encode(Tick("t2"))), FakeLambdaContext())
    # THEN the video, still in the backlog, is sent again (a no-op for its claim if the first got through), then marked
    assert [m["task_id"] for m in _video_queue(resources)] == [task_id]
    from rekpipe_shared.tasks import TaskTable

    assert [t["task_id"] for t in TaskTable(resources.task_table).iter_video_admitted()] == [task_id]


def test_slot_dispatcher_tick_follows_the_job_quota_service_quotas_reports(dispatcher, resources):
    # GIVEN Service Quotas reporting 3 concurrent stored-video jobs for this account (the emulator's view of
    # the simulator's config), and the deployed default limit stored
    from rekpipe.emulator import service_quotas
    from rekpipe.simulator import SimulatorConfig

    config = SimulatorConfig(max_concurrent_jobs=3)
    undo = service_quotas.install(service_quotas.RekognitionServiceQuotas(
        lambda: config, region="us-east-1", account_id="123456789012"))
    from rekpipe_shared.quotas import VIDEO_JOBS, pipeline_quotas

    dispatcher.world.quotas = pipeline_quotas(dispatcher.settings, [VIDEO_JOBS])
    try:
        # WHEN the tick runs
        dispatcher.handler(_event(encode(Tick("t1"))), FakeLambdaContext())
        # THEN the stored limit is the quota
        assert dispatcher.store.header()["limit"] == 3
        # WHEN an operator sets 2, and a tick passes with the quota unchanged
        dispatcher.handler(_event(encode(SetLimit(2)), encode(Tick("t2"))), FakeLambdaContext())
        # THEN the operator's limit holds
        assert dispatcher.store.header()["limit"] == 2
        # WHEN the quota is raised to 8 and read again (the refresh interval passed)
        config.max_concurrent_jobs = 8
        dispatcher.world.quotas.refresh()
        dispatcher.handler(_event(encode(Tick("t3"))), FakeLambdaContext())
        # THEN the tick takes it, with no redeploy
        assert (dispatcher.store.header()["limit"], dispatcher.store.header()["quota_limit"]) == (8, 8)
    finally:
        undo()


def test_slot_dispatcher_keeps_its_limit_when_service_quotas_cannot_be_read(dispatcher, resources):
    # GIVEN a stored limit of 3, and moto's own Service Quotas, which knows nothing of Rekognition (as when the
    # API is unreachable: the region's documented default, 20, would be all there is)
    from rekpipe_shared.quotas import VIDEO_JOBS, pipeline_quotas

    dispatcher.handler(_event(encode(SetLimit(3))), FakeLambdaContext())
    dispatcher.world.quotas = pipeline_quotas(dispatcher.settings, [VIDEO_JOBS])
    # WHEN ticks run
    dispatcher.handler(_event(encode(Tick("t1")), encode(Tick("t2"))), FakeLambdaContext())
    # THEN the limit is not moved to the region default: a failed read must not change it
    assert dispatcher.store.header()["limit"] == 3
    assert dispatcher.world.quotas.get(VIDEO_JOBS).source == "region-default"


def test_slot_dispatcher_does_one_ticks_work_for_a_run_of_ticks(dispatcher, resources, rekognition, monkeypatch):
    # GIVEN a running holder due a check, and a batch of five ticks (the schedule outran the dispatcher)
    dispatcher.handler(_event(encode(SetLimit(1))), FakeLambdaContext())
    dispatcher.handler(_event(_want("h-A", "tok-A", resources)), FakeLambdaContext())
    checks: list[str] = []
    original = dispatcher.world.job_status
    monkeypatch.setattr(dispatcher.world, "job_status", lambda holder: checks.append(holder.holder) or original(holder))
    time.sleep(0.05)
    # WHEN the batch is dispatched
    result = dispatcher.handler(_event(*[encode(Tick(str(i))) for i in range(5)]), FakeLambdaContext())
    # THEN every message is acknowledged and the holder was checked once, by the last tick
    assert result == {"batchItemFailures": []}
    assert checks == ["h-A"]
