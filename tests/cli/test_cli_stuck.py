"""rekpipe redrive --stuck and the DLQ kinds on moto: verdicts, idempotence, dry runs, messages left alone."""

from __future__ import annotations

import json

import boto3
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe.cli.redrive import do_cli
from rekpipe.cli.stack import GlobalOptions
from rekpipe_shared.tasks import NewTask, TaskTable, execution_name
from tests.support.pump import counts_from_stream

OLD = "2024-01-01T00:00:00.000Z"


def _task(pipeline, key: str, *, media: str = "image") -> str:
    task = NewTask(bucket=pipeline.content_bucket, key=key, version_id=None, etag=key, size=5, media_type=media,
                   operations=("labels",), source="s3-event")
    TaskTable(pipeline.task_table).create(task)
    return task.task_id


def _backdate(pipeline, task_id: str, **values) -> None:
    """Make a task look untouched since 2024 (and set any other attribute given)."""
    values = {"updated_at": OLD, **values}
    names = {f"#a{i}": name for i, name in enumerate(values)}
    boto3.client("dynamodb").update_item(
        TableName=pipeline.task_table, Key={"task_id": {"S": task_id}},
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":v{i}": ({"N": str(v)} if isinstance(v, int) else {"S": str(v)})
                                   for i, v in enumerate(values.values())})


def _seed_stuck(pipeline) -> dict[str, str]:
    """One task of every in-flight situation, all untouched since 2024; returns name -> task id."""
    table = TaskTable(pipeline.task_table)
    ids = {name: _task(pipeline, f"stuck/{name}.{'mp4' if 'video' in name else 'jpg'}",
                       media="video" if "video" in name else "image")
           for name in ("pending", "queued", "dead-image", "live-image", "dead-video", "running-video")}
    table.mark_queued(ids["queued"])
    for name in ("dead-image", "live-image", "dead-video", "running-video"):
        table.mark_queued(ids[name])
        table.claim(ids[name], lease_seconds=3600)
    sfn = boto3.client("stepfunctions")
    running = sfn.start_execution(stateMachineArn=pipeline.state_machine_arn,
                                  name=execution_name(ids["running-video"], 1), input="{}")["executionArn"]
    _backdate(pipeline, ids["running-video"], execution_arn=running)
    _backdate(pipeline, ids["dead-image"], lease_until=1)
    for name in ("pending", "queued", "live-image", "dead-video"):
        _backdate(pipeline, ids[name])
    return ids


def _statuses(pipeline, ids):
    table = TaskTable(pipeline.task_table)
    return {name: table.get(task_id)["status"] for name, task_id in ids.items()}


def _bodies(url: str) -> list[dict]:
    sqs = boto3.client("sqs")
    bodies = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages"):
        bodies.extend(json.loads(m["Body"]) for m in batch)
    return bodies


def _depths(pipeline) -> dict[str, int]:
    sqs = boto3.client("sqs")
    found = {}
    for name, url in pipeline.queues.items():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        found[name] = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"])
    return found


def _items(pipeline) -> list[dict]:
    return sorted(boto3.client("dynamodb").scan(TableName=pipeline.task_table)["Items"], key=str)


def test_redrive_stuck_recovers_the_dead_and_leaves_the_living_alone(pipeline):
    # GIVEN tasks left PENDING and QUEUED, an image whose lease ran out, a video never started, and two alive
    ids = _seed_stuck(pipeline)

    # WHEN stuck tasks not updated for an hour are redriven
    result = CliRunner().invoke(main, ["redrive", "--stuck", "--older-than", "1h"])

    # THEN the PENDING one is routed, the QUEUED one's message is sent again, the dead ones go back to PENDING
    assert result.exit_code == 0, result.output
    assert _statuses(pipeline, ids) == {"pending": "QUEUED", "queued": "QUEUED", "dead-image": "PENDING",
                                        "live-image": "IN_PROGRESS", "dead-video": "PENDING",
                                        "running-video": "IN_PROGRESS"}
    sent = {body["task_id"]: body for body in _bodies(pipeline.queues["ImageQueue"])}
    assert set(sent) == {ids["pending"], ids["queued"]}
    assert sent[ids["pending"]]["run"] == 1 and sent[ids["queued"]]["run"] == 1
    table = TaskTable(pipeline.task_table)
    assert table.get(ids["pending"])["run"] == 1  # counted once, by mark_queued
    assert "stuck:" in table.get(ids["dead-image"])["last_retry_reason"]
    # AND what it did, and what it left alone and why, is printed
    assert "PENDING: 1 task older than 1h routed" in result.stdout
    assert "IN_PROGRESS: 2 tasks older than 1h left alone" in result.stdout
    assert "held by a live attempt" in result.stdout and "its execution is RUNNING" in result.stdout
    assert "its execution was never started" in result.stdout
    # AND the counters moved with the tasks
    counts = counts_from_stream(None, pipeline.task_table)
    assert counts["IN_PROGRESS"] == 2 and counts["PENDING"] == 2

    # WHEN it runs again
    again = do_cli(GlobalOptions(), stuck=True, older_than=3600)

    # THEN nothing more happens: what it touched is no longer old, and the living stay alone
    assert again.stuck["PENDING"] == {} and again.stuck["QUEUED"] == {}
    assert again.stuck["IN_PROGRESS"] == {"left alone": 2}
    assert _bodies(pipeline.queues["ImageQueue"]) == [] and _bodies(pipeline.queues["VideoQueue"]) == []


def test_redrive_stuck_status_filter_and_default_bounds(pipeline):
    # GIVEN stuck tasks of every status
    ids = _seed_stuck(pipeline)

    # WHEN only PENDING tasks past the default bound (15 minutes) are redriven
    result = do_cli(GlobalOptions(), stuck=True, stuck_statuses=("PENDING",))

    # THEN only the PENDING task moved
    assert result.stuck == {"PENDING": {"routed": 1}}
    assert _statuses(pipeline, ids)["pending"] == "QUEUED" and _statuses(pipeline, ids)["queued"] == "QUEUED"
    assert _statuses(pipeline, ids)["dead-image"] == "IN_PROGRESS"


def test_redrive_dry_run_of_stuck_tasks_and_every_dlq_changes_nothing(pipeline):
    # GIVEN stuck tasks and a message in every kind of DLQ
    _seed_stuck(pipeline)
    sqs = boto3.client("sqs")
    for name in ("ImageDlq", "VideoDlq", "RouteTaskDlq"):
        sqs.send_message(QueueUrl=pipeline.queues[name], MessageBody=json.dumps({"task_id": "x"}))
    items, depths = _items(pipeline), _depths(pipeline)

    # WHEN a dry run of everything is asked for
    result = CliRunner().invoke(main, ["redrive", "--stuck", "--dlq", "--older-than", "1h", "--dry-run"])

    # THEN it lists what it would do, and neither the table nor any queue changed
    assert result.exit_code == 0, result.output
    assert "PENDING: 1 task older than 1h would route" in result.stdout
    assert "QUEUED: 1 task older than 1h would resend" in result.stdout
    assert "IN_PROGRESS: 2 tasks older than 1h would reset" in result.stdout
    assert "ImageDlq: would move back to the source queue for (approximately) 1 messages" in result.stdout
    assert _items(pipeline) == items
    assert _depths(pipeline) == depths


def test_status_counts_tasks_in_flight_longer_than_expected(pipeline):
    # GIVEN stuck tasks of every status, and a fresh PENDING one
    _seed_stuck(pipeline)
    _task(pipeline, "fresh.jpg")

    # WHEN status is asked for, with the default bounds and with a threshold of its own
    default = CliRunner().invoke(main, ["status", "--json"])
    everything = CliRunner().invoke(main, ["status", "--json", "--older-than", "0s"])

    # THEN the old ones are counted per status (the fresh one only with a zero threshold), from the index
    assert default.exit_code == 0, default.output
    counts = {s: v["tasks"] for s, v in json.loads(default.stdout)["in_flight_too_long"].items()}
    assert counts == {"PENDING": 1, "QUEUED": 1, "IN_PROGRESS": 4}  # age only; liveness is redrive --stuck's job
    assert json.loads(everything.stdout)["in_flight_too_long"]["PENDING"]["tasks"] == 2
    # AND the tables show them, with the next step on stderr
    tables = CliRunner().invoke(main, ["status"])
    assert "PENDING > 15m" in tables.stdout and "IN_PROGRESS > 1h" in tables.stdout
    assert "rekpipe redrive --stuck --dry-run" in tables.stderr


def test_redrive_dlq_leaves_messages_it_cannot_handle_with_the_reason(pipeline):
    # GIVEN the special DLQs of the stack, holding messages that are not what they should be
    sqs = boto3.client("sqs")
    urls = {name: sqs.create_queue(QueueName=f"rekpipe-{name.lower()}")["QueueUrl"]
            for name in ("IngestS3Dlq", "RouteTaskFailures", "VideoEventsDlq")}
    outputs = {**pipeline.outputs, "IngestS3DlqUrl": urls["IngestS3Dlq"], "RouteTaskFailuresUrl":
               urls["RouteTaskFailures"], "VideoEventsDlqUrl": urls["VideoEventsDlq"]}
    outputs.pop("RouteTaskDlqUrl")
    boto3.client("cloudformation").delete_stack(StackName="RekognitionPipeline")
    from tests.cli.conftest import create_stack

    create_stack(outputs)
    sqs.send_message(QueueUrl=urls["IngestS3Dlq"], MessageBody="not json")
    sqs.send_message(QueueUrl=urls["IngestS3Dlq"], MessageBody=json.dumps({"Records": [
        {"eventSource": "aws:s3", "s3": {"bucket": {"name": "someone-elses-bucket"}, "object": {"key": "a.jpg"}}}]}))
    sqs.send_message(QueueUrl=urls["IngestS3Dlq"], MessageBody=json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": pipeline.content_bucket}))
    sqs.send_message(QueueUrl=urls["RouteTaskFailures"], MessageBody=json.dumps({"hello": "world"}))
    sqs.send_message(QueueUrl=urls["VideoEventsDlq"], MessageBody=json.dumps(
        {"detail-type": "Object Created", "detail": {}}))
    sqs.send_message(QueueUrl=urls["VideoEventsDlq"], MessageBody=json.dumps(
        {"detail-type": "Step Functions Execution Status Change",
         "detail": {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:other"}}))

    # WHEN the DLQs are redriven
    result = CliRunner().invoke(main, ["redrive", "--dlq", "--wait-seconds", "0"])

    # THEN only S3's test message is handled (nothing to ingest); every other message stays, with its reason
    assert result.exit_code == 0, result.output
    assert "IngestS3Dlq: re-ingest S3 notices: 1 messages handled, 2 left in the DLQ" in result.stdout
    for reason in ("not JSON, so not an S3 notice", "someone-elses-bucket", "not a DynamoDB stream on-failure record",
                   "an event of type 'Object Created'", "a status change of another state machine"):
        assert reason in result.stderr
    attributes = {name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                  for name, url in urls.items()}
    kept = {name: int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])
            for name, a in attributes.items()}
    assert kept == {"IngestS3Dlq": 2, "RouteTaskFailures": 1, "VideoEventsDlq": 2}


def test_redrive_stuck_options_need_stuck(pipeline):
    # GIVEN / WHEN --older-than without --stuck
    result = CliRunner().invoke(main, ["redrive", "--failed", "--older-than", "1h"])

    # THEN it is a user error naming the flag
    assert result.exit_code == 1 and "add --stuck" in result.stderr
    # AND a bad duration names the accepted spelling
    bad = CliRunner().invoke(main, ["redrive", "--stuck", "--older-than", "soon"])
    assert bad.exit_code == 2 and "15m" in bad.stderr

