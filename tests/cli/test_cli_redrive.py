"""rekpipe redrive on moto: dead-letter messages back to their queues, FAILED/PARTIAL tasks re-queued."""

from __future__ import annotations

import boto3
import pytest
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe.cli.redrive import do_cli
from rekpipe.cli.stack import GlobalOptions
from rekpipe_shared.tasks import NewTask, TaskTable
from tests.support.pump import counts_from_stream


def _drain(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs")
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                       VisibilityTimeout=30).get("Messages", []):
        messages.extend(batch)
    return messages


def _depth(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_redrive_dlq_moves_messages_back_to_their_queues(pipeline):
    # GIVEN 23 messages (with attributes) in the image DLQ, 3 in the video DLQ, 1 in a DLQ with no source queue
    sqs = boto3.client("sqs")
    for n in range(23):
        sqs.send_message(QueueUrl=pipeline.queues["ImageDlq"], MessageBody=f"image {n}",
                         MessageAttributes={"task": {"DataType": "String", "StringValue": f"t{n}"}})
    for n in range(3):
        sqs.send_message(QueueUrl=pipeline.queues["VideoDlq"], MessageBody=f"video {n}")
    sqs.send_message(QueueUrl=pipeline.queues["RouteTaskDlq"], MessageBody="failed invocation")

    # WHEN the DLQs are redriven
    result = CliRunner().invoke(main, ["redrive", "--dlq", "--wait-seconds", "0"])

    # THEN every message is back in its source queue, once, with its attributes, and counted per queue
    assert result.exit_code == 0, result.output
    images = _drain(pipeline.queues["ImageQueue"])
    assert sorted(m["Body"] for m in images) == sorted(f"image {n}" for n in range(23))
    assert {m["MessageAttributes"]["task"]["StringValue"] for m in images} == {f"t{n}" for n in range(23)}
    assert sorted(m["Body"] for m in _drain(pipeline.queues["VideoQueue"])) == ["video 0", "video 1", "video 2"]
    assert _depth(pipeline.queues["ImageDlq"]) == 0 and _depth(pipeline.queues["VideoDlq"]) == 0
    assert "ImageDlq: move back to the source queue: 23 messages handled" in result.stdout
    assert "VideoDlq: move back to the source queue: 3 messages handled" in result.stdout
    # AND a DLQ without a source queue is left alone, with a way to inspect it
    assert _depth(pipeline.queues["RouteTaskDlq"]) == 1
    assert "RouteTaskDlq: no source queue found" in result.stderr


def test_redrive_dlq_stops_at_max_messages(pipeline):
    # GIVEN 15 messages in the image DLQ
    sqs = boto3.client("sqs")
    for n in range(15):
        sqs.send_message(QueueUrl=pipeline.queues["ImageDlq"], MessageBody=f"image {n}")

    # WHEN at most 12 are moved
    result = do_cli(GlobalOptions(), dlq=True, max_messages=12, wait_seconds=0)

    # THEN exactly 12 moved, and the rest are still in the DLQ
    assert result.moved["ImageDlq"] == 12
    assert len(_drain(pipeline.queues["ImageQueue"])) == 12
    assert _depth(pipeline.queues["ImageDlq"]) == 3


def _seed_attention(pipeline) -> dict[str, str]:
    """FAILED and PARTIAL tasks with various codes and keys; returns key -> task id."""
    tasks = TaskTable(pipeline.task_table)
    seeds = [
        ("2019/a.jpg", "FAILED", "ThrottlingException"),
        ("2019/b.jpg", "FAILED", "InvalidImageFormatException"),
        ("2020/c.jpg", "FAILED", "ThrottlingException"),
        ("2019/d.mp4", "FAILED", "LimitExceededException"),
        ("2019/e.jpg", "PARTIAL", "ThrottlingException"),
    ]
    ids = {}
    for index, (key, status, code) in enumerate(seeds):
        task = NewTask(bucket=pipeline.content_bucket, key=key, version_id=None, etag=key, size=5,
                       media_type="video" if key.endswith("mp4") else "image", operations=("labels",), source="s3")
        tasks.create(task)
        tasks.mark_queued(task.task_id)
        tasks.claim(task.task_id, lease_seconds=60)
        tasks.finish(task.task_id, status, outputs={"DetectLabels": "s3://o/x"} if status == "PARTIAL" else None,
                     error_code=code, error_message=f"{code} on {key}")
        # an updated_at in the past: the run skips tasks changed after it started
        boto3.client("dynamodb").update_item(
            TableName=pipeline.task_table, Key={"task_id": {"S": task.task_id}},
            UpdateExpression="SET updated_at = :t",
            ExpressionAttributeValues={":t": {"S": f"2024-01-01T00:00:0{index}.000Z"}})
        ids[key] = task.task_id
    return ids


def _statuses(pipeline, ids: dict[str, str]) -> dict[str, str]:
    tasks = TaskTable(pipeline.task_table)
    return {key: tasks.get(task_id)["status"] for key, task_id in ids.items()}


def test_redrive_failed_requeues_only_matching_tasks(pipeline):
    # GIVEN FAILED and PARTIAL tasks with different error codes under different prefixes
    ids = _seed_attention(pipeline)

    # WHEN FAILED tasks under 2019/ that failed with throttling or the job limit are redriven
    result = CliRunner().invoke(main, ["redrive", "--failed", "--error-code", "ThrottlingException",
                                       "--error-code", "LimitExceededException", "--prefix", "2019/"])

    # THEN exactly those are PENDING again (for the stream to route), with their error cleared
    assert result.exit_code == 0, result.output
    assert _statuses(pipeline, ids) == {"2019/a.jpg": "PENDING", "2019/b.jpg": "FAILED", "2020/c.jpg": "FAILED",
                                        "2019/d.mp4": "PENDING", "2019/e.jpg": "PARTIAL"}
    requeued = TaskTable(pipeline.task_table).get(ids["2019/a.jpg"])
    assert "error_code" not in requeued and "attention_status" not in requeued and requeued["requeued_at"]
    assert "FAILED: re-queued 2 tasks" in result.stdout
    # AND the counters moved with them
    counts = counts_from_stream(None, pipeline.task_table)
    assert (counts["PENDING"], counts["FAILED"], counts["PARTIAL"]) == (2, 2, 1)


def test_redrive_partial_requeues_partial_tasks(pipeline):
    # GIVEN the same tasks
    ids = _seed_attention(pipeline)

    # WHEN PARTIAL tasks are redriven
    result = do_cli(GlobalOptions(), partial=True)

    # THEN only the PARTIAL one moves
    assert result.requeued == {"PARTIAL": 1}
    assert _statuses(pipeline, ids)["2019/e.jpg"] == "PENDING"
    assert list(_statuses(pipeline, ids).values()).count("FAILED") == 4


def test_redrive_dry_run_changes_nothing(pipeline):
    # GIVEN failed tasks and a dead-letter message
    ids = _seed_attention(pipeline)
    boto3.client("sqs").send_message(QueueUrl=pipeline.queues["VideoDlq"], MessageBody="video")

    # WHEN a dry run of everything is asked for
    result = CliRunner().invoke(main, ["redrive", "--dlq", "--failed", "--partial", "--error-code",
                                       "ThrottlingException", "--dry-run"])

    # THEN it lists what would move and changes nothing
    assert result.exit_code == 0, result.output
    assert "FAILED: would re-queue 2 tasks" in result.stdout
    assert "PARTIAL: would re-queue 1 task" in result.stdout
    assert "s3://rekpipe-content/2019/a.jpg" in result.stdout and "2019/b.jpg" not in result.stdout
    assert "VideoDlq: would move back to the source queue for (approximately) 1 messages" in result.stdout
    assert set(_statuses(pipeline, ids).values()) == {"FAILED", "PARTIAL"}
    assert _depth(pipeline.queues["VideoDlq"]) == 1


@pytest.mark.parametrize(("args", "message"), [
    ([], "Say what to redrive"),
    (["--dlq", "--error-code", "X"], "--error-code and --prefix filter tasks"),
])
def test_redrive_without_a_target_is_user_error(pipeline, args, message):
    # GIVEN a redrive that says nothing (or filters nothing)
    # WHEN it runs
    result = CliRunner().invoke(main, ["redrive", *args])

    # THEN it exits 1 with what to pass
    assert result.exit_code == 1
    assert message in result.stderr


def test_redrive_force_requeues_succeeded_tasks_to_analyse_again(pipeline):
    # GIVEN two SUCCEEDED tasks (one under 2019/, one under 2020/) and the usual FAILED/PARTIAL ones
    ids = _seed_attention(pipeline)
    tasks = TaskTable(pipeline.task_table)
    done = {}
    for index, key in enumerate(("2019/ok.jpg", "2020/ok.jpg")):
        task = NewTask(bucket=pipeline.content_bucket, key=key, version_id=None, etag=key, size=5,
                       media_type="image", operations=("labels",), source="s3")
        tasks.create(task)
        tasks.mark_queued(task.task_id)
        tasks.claim(task.task_id, lease_seconds=60)
        tasks.finish(task.task_id, "SUCCEEDED", outputs={"DetectLabels": "s3://o/x"})
        boto3.client("dynamodb").update_item(
            TableName=pipeline.task_table, Key={"task_id": {"S": task.task_id}}, UpdateExpression="SET updated_at = :t",
            ExpressionAttributeValues={":t": {"S": f"2024-01-02T00:00:0{index}.000Z"}})
        done[key] = task.task_id

    # WHEN SUCCEEDED tasks under 2019/ are redriven with --force (and without it, which is refused)
    refused = CliRunner().invoke(main, ["redrive", "--succeeded", "--prefix", "2019/"])
    result = CliRunner().invoke(main, ["redrive", "--succeeded", "--force", "--prefix", "2019/"])

    # THEN only the forced one is PENDING again, marked to be analysed even if an identical result exists
    assert refused.exit_code == 1 and "add --force" in refused.output
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED: re-queued 1 task" in result.stdout
    forced = tasks.get(done["2019/ok.jpg"])
    assert forced["status"] == "PENDING" and forced["force_analysis"] is True and forced["outputs"] == {}
    assert tasks.get(done["2020/ok.jpg"])["status"] == "SUCCEEDED"
    assert _statuses(pipeline, ids)["2019/a.jpg"] == "FAILED"
