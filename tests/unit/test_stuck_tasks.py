"""The in-flight index and find_stuck_tasks on moto: only non-terminal tasks are indexed, oldest first."""

from __future__ import annotations

import json

import boto3

from rekpipe_shared.tasks import NewTask, TaskTable
from tests.support.context import FakeLambdaContext


def _new(resources, key: str, media: str = "image") -> NewTask:
    return NewTask(bucket=resources.content_bucket, key=key, version_id=None, etag=key, size=5, media_type=media,
                   operations=("labels",), source="s3-event")


def _index_items(resources) -> dict[str, str]:
    items = boto3.client("dynamodb").scan(TableName=resources.task_table, IndexName="in_flight")["Items"]
    return {item["task_id"]["S"]: item["in_flight_status"]["S"] for item in items}


def test_in_flight_index_follows_the_status_and_drops_finished_tasks(resources):
    # GIVEN tasks at every step of their life
    table = TaskTable(resources.task_table)
    pending, queued, running, done, rejected, again = (_new(resources, f"{n}.jpg") for n in
                                                       ("pending", "queued", "running", "done", "rejected", "again"))
    for task in (pending, queued, running, done, again):
        table.create(task)
    table.create_failed(rejected, "ImageTooLargeException", "too large")
    for task in (queued, running, done, again):
        table.mark_queued(task.task_id)
    for task in (running, done, again):
        table.claim(task.task_id, lease_seconds=60)
    table.finish(done.task_id, "SUCCEEDED", outputs={})
    table.finish(again.task_id, "FAILED", error_code="X", error_message="x")
    table.requeue(again.task_id)

    # WHEN the sparse index is read
    indexed = _index_items(resources)

    # THEN it holds exactly the tasks in flight, under their current status; finished ones left it
    assert indexed == {pending.task_id: "PENDING", queued.task_id: "QUEUED", running.task_id: "IN_PROGRESS",
                       again.task_id: "PENDING"}
    assert [t["task_id"] for t in table.iter_in_flight("PENDING")] == [pending.task_id, again.task_id]  # oldest first
    assert table.count_in_flight("IN_PROGRESS") == 1
    assert table.count_in_flight("PENDING", updated_before="2000-01-01T00:00:00.000Z") == 0


def test_reclaim_after_an_expired_lease_keeps_updated_at_a_string(resources):
    # GIVEN an image whose attempt's lease ran out (the index's sort key is updated_at, a string)
    table = TaskTable(resources.task_table)
    task = _new(resources, "reclaimed.jpg")
    table.create(task)
    table.mark_queued(task.task_id)
    table.claim(task.task_id, lease_seconds=-10)

    # WHEN a redelivery claims it again
    claimed = table.claim(task.task_id, lease_seconds=60)

    # THEN the claim succeeds and updated_at is still an ISO string (the index would refuse a number)
    assert claimed is not None and claimed["attempts"] == 2
    assert isinstance(claimed["updated_at"], str) and claimed["updated_at"].endswith("Z")


def test_find_stuck_tasks_counts_only_old_tasks_without_a_live_owner(resources, load_handler, monkeypatch):
    # GIVEN an old PENDING task, an old image whose lease ran out, an old image still leased, and a fresh task
    monkeypatch.setenv("VIDEO_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:video")
    table = TaskTable(resources.task_table)
    old_pending, dead, alive, fresh = (_new(resources, f"{n}.jpg") for n in ("old", "dead", "alive", "fresh"))
    for task in (old_pending, dead, alive, fresh):
        table.create(task)
    for task, lease in ((dead, -10), (alive, 3600)):
        table.mark_queued(task.task_id)
        table.claim(task.task_id, lease_seconds=lease)
    for task in (old_pending, dead, alive):
        boto3.client("dynamodb").update_item(
            TableName=resources.task_table, Key={"task_id": {"S": task.task_id}},
            UpdateExpression="SET updated_at = :t", ExpressionAttributeValues={":t": {"S": "2024-01-01T00:00:00.000Z"}})
    app = load_handler("find_stuck_tasks")

    # WHEN the scheduled finder runs
    found = app.handler({"detail-type": "Scheduled Event"}, FakeLambdaContext())

    # THEN it counts the old PENDING task and the dead image as stuck; the leased and the fresh ones are not
    assert found["PENDING"] == {"stuck": 1, "examined": 1}
    assert found["IN_PROGRESS"] == {"stuck": 1, "examined": 2}
    assert found["QUEUED"] == {"stuck": 0, "examined": 0}
    # AND it changed nothing
    assert table.get(dead.task_id)["status"] == "IN_PROGRESS" and table.get(old_pending.task_id)["status"] == "PENDING"


class _Executions:
    """DescribeExecution by execution ARN: RUNNING for the listed ones, FAILED for the others."""

    def __init__(self, running: set[str]) -> None:
        self.running = running

    def describe_execution(self, executionArn: str) -> dict[str, str]:
        return {"status": "RUNNING" if executionArn in self.running else "FAILED"}


def test_waiting_video_is_alive_while_its_leader_runs_and_stuck_once_the_lead_is_gone_or_dead(resources):
    from rekpipe_shared.content_identity import ContentIdentity
    from rekpipe_shared.result_index import ResultIndex
    from rekpipe_shared.stuck import ACTION_NONE, ACTION_RESEND, ACTION_TAKEOVER, StuckTaskInspector, StuckTaskRecovery

    # GIVEN three leaders (running, finished, dead) and one video waiting on each lead
    table, index = TaskTable(resources.task_table), ResultIndex(resources.result_index_table)
    identity = ContentIdentity("CRC64NVME", "AAAA", 5)
    followers, leaders = {}, {}
    for name in ("running", "finished", "dead"):
        leader, follower = _new(resources, f"{name}-leader.mp4", "video"), _new(resources, f"{name}.mp4", "video")
        for task in (leader, follower):
            table.create(task)
            table.mark_queued(task.task_id)
            table.claim(task.task_id, lease_seconds=3600)
        table.set_attributes(leader.task_id, execution_arn=f"arn:exec:{name}")
        index.claim(f"key-{name}", leader.task_id, lease_seconds=3600, identity=identity, api="StartLabelDetection")
        table.park_waiting(follower.task_id, {"reuse_key": f"key-{name}", "leader_task_id": leader.task_id,
                                              "api": "StartLabelDetection"})
        assert index.add_waiter(f"key-{name}", leader.task_id, f"{follower.task_id}:1")
        assert index.add_waiter(f"key-{name}", leader.task_id, f"{follower.task_id}:1")  # a redelivery: one waiter
        followers[name], leaders[name] = follower.task_id, leader.task_id
    assert index.lead("key-running")["waiters"] == [f"{followers['running']}:1"]
    index.record(["key-finished"], task_id=leaders["finished"], api="StartLabelDetection", result_uri="s3://o/r/",
                 model_version=None, options={}, identities=[identity])
    inspector = StuckTaskInspector(table, sfn_client=_Executions({"arn:exec:running"}), index=index)

    # WHEN the QUEUED tasks are judged
    verdicts = {v.task_id: v for v in inspector.candidates("QUEUED", older_than_seconds=0)}

    # THEN the follower of the running leader is left alone, the others are stuck
    assert verdicts[followers["running"]].action == ACTION_NONE and not verdicts[followers["running"]].stuck
    assert verdicts[followers["finished"]].action == ACTION_RESEND
    assert verdicts[followers["dead"]].action == ACTION_TAKEOVER
    # AND recovering the dead one drops the dead lead and sends the follower's message again
    sqs = boto3.client("sqs")
    recovery = StuckTaskRecovery(table, sqs_client=sqs, queues={"video": resources.video_queue_url}, index=index)
    recovery.recover(verdicts[followers["dead"]])
    assert index.lead("key-dead") is None
    messages = sqs.receive_message(QueueUrl=resources.video_queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["task_id"] for m in messages] == [followers["dead"]]
