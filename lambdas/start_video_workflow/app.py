"""start_video_workflow: starts one video state machine execution per queued video task.

The execution is named after the task and its run, so a redelivered message finds the
execution already there (ExecutionAlreadyExists) instead of starting, and paying for, a second.

Before it starts, every operation whose result an identical video already has (same bytes by S3
checksum, same options: ``rekpipe_shared.reuse``) is copied into this task's layout and recorded
as reused; only the others go to the state machine, so a reused operation takes no job slot and
starts no Rekognition job. When all are reused, no execution starts and the task is finished here.
When an identical video is being analysed right now, this task waits for it without an execution,
a slot or a queue message (see ``reuse_stored_results``) and is sent again when that analysis ends.
"""

from __future__ import annotations

import json
import os
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from rekpipe_shared.aws import DEFAULT_CONFIG
from rekpipe_shared.batches import process_sqs_batch
from rekpipe_shared.operations import operation
from rekpipe_shared.outputs import SUMMARY_NAME, ResultsLayout, s3_uri, write_latest_pointer, write_manifest
from rekpipe_shared.payloads import WorkMessage
from rekpipe_shared.result_index import ResultIndex
from rekpipe_shared.reuse import IDENTITY_ATTR, ResultReuse, reused_entry, wake_waiters
from rekpipe_shared.schema import (
    METRICS_NAMESPACE,
    OUTPUT_BUCKET_ENV,
    RESULT_INDEX_TABLE_NAME_ENV,
    SLOT_QUEUE_URL_ENV,
    STATUS_IN_PROGRESS,
    STATUS_SUCCEEDED,
    TASK_TABLE_NAME_ENV,
    VIDEO_QUEUE_URL_ENV,
    VIDEO_STATE_MACHINE_ARN_ENV,
)
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.slots.nudge import nudge_admission
from rekpipe_shared.tasks import TaskTable, execution_name

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from rekpipe_shared.result_index import Claim
    from rekpipe_shared.reuse import ReusePlan

SERVICE = "start_video_workflow"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

tasks = TaskTable(os.environ[TASK_TABLE_NAME_ENV])
STATE_MACHINE_ARN = os.environ[VIDEO_STATE_MACHINE_ARN_ENV]
sfn = boto3.client("stepfunctions", config=DEFAULT_CONFIG)
s3 = boto3.client("s3", config=DEFAULT_CONFIG)
sqs = boto3.client("sqs", config=DEFAULT_CONFIG)
SLOT_QUEUE_URL = os.environ[SLOT_QUEUE_URL_ENV]
VIDEO_QUEUE_URL = os.environ.get(VIDEO_QUEUE_URL_ENV, "")
OUTPUT_BUCKET = os.environ[OUTPUT_BUCKET_ENV]
settings = PipelineSettings.from_environment()
reuse = ResultReuse(ResultIndex(os.environ[RESULT_INDEX_TABLE_NAME_ENV]) if os.environ.get(RESULT_INDEX_TABLE_NAME_ENV)
                    else None, s3, OUTPUT_BUCKET, settings)

VIDEO_LEASE_SECONDS = 7 * 24 * 3600
"""A video task is owned by its execution; the lease only stops the image-style reclaim. Its claims on
the result index take the same lease: a leader that dies silently is found through its execution
(``rekpipe_shared.stuck``), not by waiting for the lease."""
MAX_CLAIM_ROUNDS = 5


@tracer.capture_method
def start_workflow(record: SQSRecord, made_room: list[str] | None = None) -> None:
    """Start the execution of one admitted video; a video finished without one (every operation reused) or
    parked behind an identical video's analysis goes into ``made_room``: its admission room is free again."""
    message = WorkMessage(record.json_body)
    task_id = message.task_id
    task = tasks.claim(task_id, lease_seconds=VIDEO_LEASE_SECONDS)
    if task is None:
        task = tasks.get(task_id)
        if task is None or task["status"] != STATUS_IN_PROGRESS or int(task.get("run", 0)) != message.run:
            logger.info("Video task not startable; duplicate or finished",
                        extra={"task_id": task_id, "status": (task or {}).get("status", "missing")})
            return
        # Claimed by an attempt that may have died before StartExecution: the name makes this safe.
    run = int(task.get("run", message.run))
    name = execution_name(task_id, run)
    identities = reuse.identities(task)
    operations = reuse_stored_results(task, run, identities)
    if not operations:  # all reused (the task is finished), or parked behind an identical video's analysis
        if made_room is not None:
            made_room.append(task_id)
        return
    execution_input = {
        "task": {
            "task_id": task_id,
            "bucket": task["bucket"],
            "key": task["object_key"],
            "version_id": task.get("version_id"),
            "etag": task.get("etag"),
            "run": run,
            # collect_results indexes each finished result under these, for the next identical video
            **({IDENTITY_ATTR: [identity.token for identity in identities]} if identities else {}),
        },
        "operations": operations,
    }
    try:
        response = sfn.start_execution(stateMachineArn=STATE_MACHINE_ARN, name=name,
                                       input=json.dumps(execution_input))
        tasks.set_attributes(task_id, execution_arn=response["executionArn"])
        metrics.add_metric(name="VideoExecutionsStarted", unit=MetricUnit.Count, value=1)
        logger.info("Video execution started", extra={"task_id": task_id, "execution": name})
    except sfn.exceptions.ExecutionAlreadyExists:
        logger.info("Execution already exists; duplicate message", extra={"task_id": task_id, "execution": name})


def reuse_stored_results(task: dict[str, Any], run: int, identities: tuple[Any, ...]) -> list[str]:
    """Copy what identical videos already have, lead the rest; return the operations to analyse.

    Per operation, in name order: a stored result is copied; otherwise this task claims the lead of
    those bytes (conditional write, lease), unless another task leads them now. Then this task waits:
    it drops the leads it took here (ordered claims, so two tasks never wait on each other), registers
    in the leader's ``waiters``, parks its task QUEUED with ``waiting_for`` and returns [] (its message
    is acknowledged: a video can take hours, longer than any visibility timeout). The leader sends its
    message again when it indexes its result or withdraws its lead (collect_results, record_outcome).

    Idempotent: an operation copied by an earlier attempt is in the task's outputs and is skipped; a
    redelivered message re-claims its own leads and registers as the same waiter (a set).
    When nothing is left, the task is finished here (manifest, pointer, SUCCEEDED).
    """
    outputs: dict[str, str] = dict(task.get("outputs") or {})
    reused: dict[str, dict[str, Any]] = dict(task.get("reused") or {})
    layout = ResultsLayout.for_task({**task, "run": run}, video=True)
    left, led = [], []
    for name in sorted(task["operations"]):
        op = operation(name)
        assert op.video_start_api is not None
        if op.video_start_api in reused:
            continue
        plan = reuse.plan(task, op, identities, video=True)
        found = reuse.find(plan) if plan is not None else None
        if plan is not None and found is None and not plan.forced:
            claim = _claim_or_wait(task, run, plan, led)
            if claim is None:
                return []  # waiting, or the task was taken meanwhile
            if claim.lead:
                led.append(plan)
            found = claim.result
        prefix = layout.video_folder_prefix(op.video_start_api)
        if found is None or SUMMARY_NAME not in reuse.copy_folder(plan, found, prefix):
            left.append(name)
            continue
        uri = s3_uri(OUTPUT_BUCKET, prefix + SUMMARY_NAME)
        entry = {**reused_entry(found), "saved_usd": _video_price(op.video_price_per_minute, prefix)}
        tasks.record_reuse(task["task_id"], op.video_start_api, uri, entry)
        outputs[op.video_start_api], reused[op.video_start_api] = uri, entry
        metrics.add_metric(name="VideoOperationsReused", unit=MetricUnit.Count, value=1)
        logger.info("Video result reused from identical content",
                    extra={"task_id": task["task_id"], "api": op.video_start_api, "source": found.source_task_id})
    if not left:
        _finish_reused(task, layout, outputs, reused)
    return [name for name in task["operations"] if name in left]


def _claim_or_wait(task: dict[str, Any], run: int, plan: ReusePlan, led: list[ReusePlan]) -> Claim | None:
    """Lead ``plan``'s bytes, or find their result; None when this task now waits on another's lead."""
    task_id = task["task_id"]
    for _ in range(MAX_CLAIM_ROUNDS):
        claim = reuse.claim(plan, task_id, VIDEO_LEASE_SECONDS)
        if claim.lead or claim.result is not None:
            return claim
        if claim.leader_task_id is None:
            continue  # the lead moved while we looked: decide again
        for mine in led:  # hold nothing while waiting: no two tasks ever wait on each other
            _wake(reuse.withdraw(mine, task_id))
        led.clear()
        if tasks.park_waiting(task_id, {"reuse_key": plan.keys[0], "leader_task_id": claim.leader_task_id,
                                        "api": plan.api}) is None:
            return None  # not ours any more (finished or taken by another attempt)
        if reuse.add_waiter(plan, claim.leader_task_id, task_id, run):
            metrics.add_metric(name="VideoTasksWaiting", unit=MetricUnit.Count, value=1)
            logger.info("Waiting for an identical video's analysis; the leader wakes this task",
                        extra={"task_id": task_id, "api": plan.api, "leader": claim.leader_task_id})
            return None
        # The lead ended between the claim and the registration: take the task back and decide again.
        if tasks.claim(task_id, lease_seconds=VIDEO_LEASE_SECONDS) is None:
            return None
    raise RuntimeError(f"task {task_id}: the lead of {plan.api} kept moving; the message is retried")


def _wake(waiters: list[str]) -> None:
    if waiters:
        wake_waiters(sqs, VIDEO_QUEUE_URL, waiters)
        metrics.add_metric(name="VideoWaitersWoken", unit=MetricUnit.Count, value=len(waiters))


def _video_price(price_per_minute: float, prefix: str) -> float:
    """What Rekognition would have billed for this video's length (from the copied summary)."""
    try:
        summary = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key=prefix + SUMMARY_NAME)["Body"].read())
        millis = float((summary.get("video") or {}).get("DurationMillis") or 0)
    except (ValueError, KeyError, s3.exceptions.NoSuchKey):
        return 0.0
    return price_per_minute * millis / 60_000


def _finish_reused(task: dict[str, Any], layout: ResultsLayout, outputs: dict[str, str],
                   reused: dict[str, dict[str, Any]]) -> None:
    """Every operation was reused: record the outcome without an execution."""
    manifest_uri = write_manifest(s3, OUTPUT_BUCKET, task=task, layout=layout, status=STATUS_SUCCEEDED,
                                  outputs=outputs, errors={}, reused=reused)
    write_latest_pointer(s3, OUTPUT_BUCKET, task=task, layout=layout, status=STATUS_SUCCEEDED,
                         manifest_uri=manifest_uri)
    if tasks.finish(task["task_id"], STATUS_SUCCEEDED, outputs=outputs, manifest_uri=manifest_uri) is not None:
        assert reuse.index is not None
        reuse.index.count_reuse(task["task_id"], operations=len(reused),
                                saved_usd=sum(float(entry.get("saved_usd") or 0) for entry in reused.values()))
    logger.info("Every video operation reused; no execution started", extra={"task_id": task["task_id"]})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    made_room: list[str] = []  # this invocation's: concurrent invocations can share the module (the emulator)
    response = process_sqs_batch(event, partial(start_workflow, made_room=made_room), context)
    if made_room:  # one nudge per batch: the dispatcher admits the next videos now, not at its tick
        nudge_admission(sqs, SLOT_QUEUE_URL)
    return response
