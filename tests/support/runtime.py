"""Helpers for tests that run the whole deployed pipeline on the embedded runtime."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from rekpipe_shared.tasks import TaskTable, task_id_for

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from rekpipe.emulator.runtime import EmbeddedRuntime

TERMINAL_TASK = {"SUCCEEDED", "FAILED", "PARTIAL"}
E2E_SETTINGS = {"image_operations": "labels", "video_operations": "labels", "video_job_wait_seconds": 30,
                "video_slot_wait_seconds": 60, "video_job_limit_retry_seconds": 2}
"""One operation of each kind and waits sized for a test of seconds: what most runtime tests start from."""


@dataclass(frozen=True)
class RuntimeDefaults:
    """What a test module's runtimes start with (override the ``runtime_defaults`` fixture in the module).

    A test's own arguments to ``make_runtime`` are merged over these.
    """

    settings: Mapping[str, Any] = field(default_factory=lambda: E2E_SETTINGS)
    simulator: Mapping[str, Any] = field(default_factory=lambda: {"seed": 3, "job_duration": (0.5, 1.0)})
    schedule_seconds: float = 3600
    """The schedules (the slot tick) practically off: what a test sees was done by notices and messages."""


class RuntimeFactory:
    """Starts embedded runtimes for one test and stops every one afterwards, even one whose start() failed."""

    def __init__(self, defaults: RuntimeDefaults) -> None:
        self.defaults = defaults
        self.started: list[EmbeddedRuntime] = []

    def __call__(self, settings: Mapping[str, Any] | None = None, *,
                 template_mutator: Callable[[dict[str, Any]], None] | None = None,
                 **simulator: Any) -> EmbeddedRuntime:
        """Start a runtime with these settings and simulator knobs over the defaults (and a template mutator)."""
        from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions
        from rekpipe.simulator import SimulatorConfig
        from rekpipe_shared.settings import PipelineSettings

        runtime = EmbeddedRuntime(RuntimeOptions(
            settings=PipelineSettings.from_mapping({**self.defaults.settings, **(settings or {})}),
            simulator=SimulatorConfig(**{**self.defaults.simulator, **simulator}),
            schedule_seconds=self.defaults.schedule_seconds,
            template_mutator=template_mutator,
        ))
        self.started.append(runtime)  # stopped even if start() fails half-way
        return runtime.start()

    def stop_all(self) -> None:
        for runtime in self.started:
            runtime.stop()


def upload(runtime: EmbeddedRuntime, key: str, body: bytes) -> str:
    """Put an object in the content bucket (S3 notifies ingest_s3); returns its task id."""
    bucket = runtime.outputs["ContentBucketName"]
    version = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    return task_id_for(bucket, key, version, None)


def run_prefix(task: dict[str, Any]) -> str:
    """The output prefix of a task's current run (``<mode>/<bucket>/<key>/version-<id>/run-NNN/``)."""
    from rekpipe_shared.outputs import ResultsLayout

    return ResultsLayout.for_task(task).run_prefix


def tasks(runtime: EmbeddedRuntime) -> TaskTable:
    return TaskTable(runtime.outputs["TaskTableName"])


def wait_for_tasks(runtime: EmbeddedRuntime, task_ids: list[str], *, timeout: float = 60.0,
                   during: Any = None) -> dict[str, dict[str, Any]]:
    """Wait until every task is terminal; ``during()`` runs on each poll (e.g. to complete jobs)."""
    table = tasks(runtime)
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        if during:
            during()
        found = {task_id: table.get(task_id) or {} for task_id in task_ids}
        if all(item.get("status") in TERMINAL_TASK for item in found.values()):
            return found
        time.sleep(0.1)
    states = {task_id: item.get("status") for task_id, item in found.items()}
    raise AssertionError(f"tasks not terminal after {timeout} s: {states}\n{_diagnosis(runtime, found)}")


def wait_final(table: TaskTable, task_id: str, timeout: float = 120) -> dict[str, Any]:
    """One task's item once its status is final; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        task = table.get(task_id) or {}
        if task.get("status") in TERMINAL_TASK:
            return task
        assert time.monotonic() < deadline, f"task never reached a final status: {task}"
        time.sleep(0.25)


def _diagnosis(runtime: EmbeddedRuntime, found: dict[str, dict[str, Any]]) -> str:
    """Where the unfinished tasks stand (execution, last events, slots, queues), so a timeout explains itself."""
    lines: list[str] = []
    try:
        sfn = boto3.client("stepfunctions")
        for task_id, item in found.items():
            if item.get("status") in TERMINAL_TASK:
                continue
            arn = item.get("execution_arn")
            lines.append(f"task {task_id}: {item.get('status')} {item.get('in_flight_status', '')} execution {arn}")
            if arn:
                status = sfn.describe_execution(executionArn=arn)["status"]
                events = execution_history(arn)[-6:]
                lines.append(f"  execution {status}; last events: "
                             + ", ".join(f"{e['type']}({_event_name(e)})" for e in events))
        from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore

        snap = DynamoDBSlotStore(runtime.outputs["SemaphoreTableName"], default_limit=1).load()
        lines.append(f"slots: limit {snap.header.limit}, holders {sorted(snap.holders)}, "
                     f"waiters {sorted(snap.waiters)}, backoff until {snap.header.backoff_until}")
        sqs = boto3.client("sqs")
        for output in ("SlotQueueUrl", "VideoQueueUrl"):
            attributes = sqs.get_queue_attributes(QueueUrl=runtime.outputs[output], AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            lines.append(f"{output}: visible {attributes['ApproximateNumberOfMessages']}, "
                         f"in flight {attributes['ApproximateNumberOfMessagesNotVisible']}")
    except Exception as error:  # a diagnosis must not hide the timeout itself
        lines.append(f"(diagnosis failed: {error!r})")
    return "\n".join(lines)


def _event_name(event: dict[str, Any]) -> str:
    details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
    return details.get("name", "")


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution, oldest first (pages of 1000, botocore's paginator)."""
    pages = boto3.client("stepfunctions").get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, PaginationConfig={"PageSize": 1000})
    return [event for page in pages for event in page["events"]]


def entered_states(history: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def read_json(bucket: str, key: str) -> Any:
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def list_keys(bucket: str, prefix: str) -> list[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def slot_holders(runtime: EmbeddedRuntime) -> dict[str, Any]:
    """The slot dispatcher's holders (one per running job of ours), from the slot table."""
    from rekpipe.cli.slots import read_holders

    return read_holders(runtime.outputs["SemaphoreTableName"])


