"""rekpipe status on moto: tables and JSON from counters, queues, the video slots, executions and failures."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe.cli.stack import Clients, GlobalOptions
from rekpipe.cli.status import do_cli
from rekpipe_shared.tasks import NewTask, TaskTable
from tests.support.pump import counts_from_stream


def _task(key: str, media_type: str = "image") -> NewTask:
    return NewTask(bucket="rekpipe-content", key=key, version_id=None, etag=f"etag-{key}", size=10,
                   media_type=media_type, operations=("labels", "moderation"), source="s3")


def set_updated_at(table_name: str, task_id: str, when: str) -> None:
    """Pin a task's updated_at (the attention index's sort key) so 'newest first' is deterministic."""
    boto3.client("dynamodb").update_item(
        TableName=table_name, Key={"task_id": {"S": task_id}},
        UpdateExpression="SET updated_at = :t", ExpressionAttributeValues={":t": {"S": when}},
    )


@pytest.fixture
def seeded(pipeline):
    """3 PENDING, 1 QUEUED, 2 SUCCEEDED, 3 FAILED, 1 PARTIAL tasks; queue messages; slots; executions."""
    tasks = TaskTable(pipeline.task_table)
    for key in ("p1.jpg", "p2.jpg", "p3.mp4"):
        tasks.create(_task(key))
    queued = _task("q.jpg")
    tasks.create(queued)
    tasks.mark_queued(queued.task_id)
    for index, key in enumerate(("s1.jpg", "s2.jpg", "f-old.jpg", "f-new.jpg", "f-mid.mp4", "partial.jpg")):
        task = _task(key)
        tasks.create(task)
        tasks.mark_queued(task.task_id)
        tasks.claim(task.task_id, lease_seconds=60)
        if key.startswith("s"):
            tasks.finish(task.task_id, "SUCCEEDED", outputs={"DetectLabels": "s3://out/x"})
        elif key.startswith("f"):
            tasks.finish(task.task_id, "FAILED", error_code=f"Code{index}", error_message=f"why {key} failed")
        else:
            tasks.finish(task.task_id, "PARTIAL", outputs={"DetectLabels": "s3://out/x"},
                         error_code="ThrottlingException", error_message="Rate exceeded",
                         operation_errors={"DetectModerationLabels": {"code": "ThrottlingException",
                                                                      "message": "Rate exceeded"}})
    for when, key in (("2024-01-01T00:00:01.000Z", "f-old.jpg"), ("2024-01-01T00:00:03.000Z", "f-new.jpg"),
                      ("2024-01-01T00:00:02.000Z", "f-mid.mp4"), ("2024-01-01T00:00:04.000Z", "partial.jpg")):
        set_updated_at(pipeline.task_table, _task(key).task_id, when)
    sqs = boto3.client("sqs")
    for n in range(5):
        sqs.send_message(QueueUrl=pipeline.queues["ImageQueue"], MessageBody=f"image {n}")
    for n in range(2):
        sqs.send_message(QueueUrl=pipeline.queues["VideoDlq"], MessageBody=f"video {n}")
    from rekpipe_shared.slots import Changes, HolderItem, WaiterItem
    from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore

    store = DynamoDBSlotStore(pipeline.semaphore_table, default_limit=20)
    base = store.load()
    holders = {name: HolderItem(name, "token", f"arn:{name}", {}, phase="running", job_id=f"job-{name}")
               for name in ("exec-1-labels", "exec-2-moderation")}
    store.commit(base, Changes(header=base.header, holders=dict(holders),
                               waiters={"exec-3-labels": WaiterItem("exec-3-labels", "token", "arn:exec-3", {}, 0)}))
    sfn = boto3.client("stepfunctions")
    for _ in range(2):
        sfn.start_execution(stateMachineArn=pipeline.state_machine_arn)
    counts_from_stream(None, pipeline.task_table)  # route_task's counting of the stream so far
    return pipeline


def test_status_tables_show_counts_queues_slots_and_failures(seeded):
    # GIVEN a pipeline with tasks in every status, queued and dead-letter messages, slots and executions
    # WHEN status is shown as tables
    result = CliRunner().invoke(main, ["status"])

    # THEN each part is on stdout, and the context and DLQ hint on stderr
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 3}
    assert lines["PENDING"].split("│")[2].strip() == "3"
    assert lines["FAILED"].split("│")[2].strip() == "3"
    assert lines["PARTIAL"].split("│")[2].strip() == "1"
    assert lines["Total"].split("│")[2].strip() == "10"
    assert lines["ImageQueue"].split("│")[2].strip() == "5"
    assert lines["VideoDlq"].split("│")[2].strip() == "2"
    assert "RouteTaskDlq" in lines
    assert lines["Slots in use (running jobs)"].split("│")[2].strip() == "2 / 20"
    assert lines["Admitted, waiting for a slot"].split("│")[2].strip() == "1"
    assert lines["Backlog (QUEUED, not yet admitted)"].split("│")[2].strip() == "0"
    assert lines["Running executions"].split("│")[2].strip() == "2"
    failures = [line for line in out.splitlines() if "s3://rekpipe-content/" in line]
    assert [line.split("│")[3].strip() for line in failures] == [
        "s3://rekpipe-content/partial.jpg", "s3://rekpipe-content/f-new.jpg", "s3://rekpipe-content/f-mid.mp4",
        "s3://rekpipe-content/f-old.jpg"]
    assert "ThrottlingException" in failures[0] and "Code3" in failures[1] and "why f-new.jpg failed" in failures[1]
    assert "Status of stack RekognitionPipeline in us-east-1" in result.stderr
    assert "rekpipe redrive --dlq" in result.stderr


def test_status_json_is_machine_readable(seeded):
    # GIVEN the seeded pipeline
    # WHEN status is asked for as JSON
    result = CliRunner().invoke(main, ["status", "--json", "--failures", "2"])

    # THEN stdout is one JSON document with every figure
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["tasks"] == {"PENDING": 3, "QUEUED": 1, "IN_PROGRESS": 0, "SUCCEEDED": 2, "FAILED": 3,
                               "PARTIAL": 1}
    depths = {q["name"]: (q["visible"], q["in_flight"], q["is_dlq"]) for q in status["queues"]}
    assert depths == {"ImageQueue": (5, 0, False), "VideoQueue": (0, 0, False), "ImageDlq": (0, 0, True),
                      "RouteTaskDlq": (0, 0, True), "VideoDlq": (2, 0, True)}
    assert status["slots"] | {"version": None} == {"limit": 20, "holders": 2, "waiters": 1, "backlog": 0,
                                                     "version": None, "quota_limit": 0}
    assert status["executions"]["running"] == 2 and status["executions"]["capped"] is False
    assert [(f["uri"], f["status"], f["error_code"]) for f in status["failures"]] == [
        ("s3://rekpipe-content/partial.jpg", "PARTIAL", "ThrottlingException"),
        ("s3://rekpipe-content/f-new.jpg", "FAILED", "Code3"),
    ]


def test_status_reads_counters_never_scans(seeded):
    # GIVEN a DynamoDB client that fails on any Scan
    clients = Clients(GlobalOptions())

    def no_scan(**_):
        raise AssertionError("status must not scan the task table")

    clients.client("dynamodb").meta.events.register("before-call.dynamodb.Scan", no_scan)

    # WHEN status runs
    result = do_cli(GlobalOptions(), as_json=True, clients=clients)

    # THEN the counts come from the counters
    assert result.tasks["PENDING"] == 3


def test_status_empty_pipeline_says_no_failures(pipeline):
    # GIVEN a fresh pipeline whose slots were never used
    # WHEN status runs
    result = CliRunner().invoke(main, ["status"])

    # THEN it shows zeros, the deployed default limit and no failures
    assert result.exit_code == 0, result.output
    assert "No FAILED or PARTIAL tasks." in result.stdout
    assert "0 / 20" in result.stdout


def test_status_shows_each_quota_in_use_and_where_it_came_from(pipeline):
    # GIVEN a Service Quotas that serves Rekognition's quotas with DetectLabels raised to 30 TPS
    from rekpipe.emulator import service_quotas
    from rekpipe.simulator import SimulatorConfig

    config = SimulatorConfig(tps_quotas={"DetectLabels": 30.0})
    undo = service_quotas.install(service_quotas.RekognitionServiceQuotas(
        lambda: config, region="us-east-1", account_id="123456789012"))
    try:
        # WHEN status runs
        result = CliRunner().invoke(main, ["status", "--json"])
    finally:
        undo()

    # THEN every quota the default settings use is listed with its value and source
    assert result.exit_code == 0, result.output
    quotas = {q["name"]: (q["value"], q["source"]) for q in json.loads(result.stdout)["quotas"]}
    assert quotas["DetectLabels"] == (30.0, "service-quotas")
    assert quotas["DetectModerationLabels"] == (50.0, "aws-default")
    assert quotas["ConcurrentStoredVideoJobs"] == (20.0, "service-quotas")
    assert quotas["StartLabelDetection"] == (5.0, "aws-default")


def test_status_falls_back_to_region_defaults_without_service_quotas(pipeline):
    # GIVEN moto's own Service Quotas, which knows nothing of Rekognition
    # WHEN status runs
    result = CliRunner().invoke(main, ["status"])

    # THEN the table shows the documented us-east-1 defaults, marked as such
    assert result.exit_code == 0, result.output
    assert "Rekognition quotas in use" in result.stdout
    assert "region-default" in result.stdout
