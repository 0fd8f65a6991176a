"""Running the embedded runtime for a benchmark: quiet, counted, and read back afterwards.

Everything a scenario needs from the runtime lives here, so the scenario modules only say what
they upload and what they compute from it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.exceptions import PipelineStalledError
from rekpipe.simulator.config import DEFAULT_GET_TPS, GET_OPERATIONS

ROOT = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rekpipe.emulator.runtime import EmbeddedRuntime
    from rekpipe.simulator import SimulatorConfig
    from rekpipe_shared.settings import PipelineSettings

TERMINAL = ("SUCCEEDED", "FAILED", "PARTIAL")
_local = threading.local()


# --- request counting ----------------------------------------------------------------------------
@dataclass
class RequestCounter:
    """Counts the AWS requests the pipeline makes, at moto's botocore hook (every in-process client).

    Requests made by the benchmark itself (uploads, progress polls) are marked by `harness_client`
    and left out. The emulator's own machinery (stream and status pollers) is left out by service.
    """

    requests: Counter[str] = field(default_factory=Counter)
    dynamodb_items: Counter[str] = field(default_factory=Counter)
    sqs_entries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, event_name: str, body: Any) -> None:
        parts = event_name.split(".")
        if len(parts) < 3:
            return
        service, operation = parts[1], parts[2]
        key = f"{service}.{operation}"
        items = 0
        if service == "dynamodb" and operation in _DYNAMODB_MULTI:
            items = _dynamodb_item_count(operation, body)
        entries = 0
        if service == "sqs" and operation.endswith("Batch"):
            entries = len(_json(body).get("Entries", []))
        with self.lock:
            self.requests[key] += 1
            if items:
                self.dynamodb_items[key] += items
            if entries:
                self.sqs_entries[key] += entries
            if service == "dynamodb" and operation in ("GetItem", "Query", "Scan") and _json(body).get(
                "ConsistentRead"
            ):
                self.requests[f"{key}#consistent"] += 1

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.dynamodb_items.clear()
            self.sqs_entries.clear()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "dynamodb_items": dict(self.dynamodb_items),
                "sqs_entries": dict(self.sqs_entries),
            }


_DYNAMODB_MULTI = ("TransactWriteItems", "TransactGetItems", "BatchWriteItem", "BatchGetItem")


def _json(body: Any) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _dynamodb_item_count(operation: str, body: Any) -> int:
    payload = _json(body)
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return len(payload.get("TransactItems", []))
    if operation == "BatchWriteItem":
        return sum(len(v) for v in payload.get("RequestItems", {}).values())
    return sum(len(v.get("Keys", [])) for v in payload.get("RequestItems", {}).values())


@contextlib.contextmanager
def counting(counter: RequestCounter) -> Iterator[None]:
    """Count every request that reaches moto through botocore while the context is open."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__

    def counted(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if getattr(_local, "harness", False):
            _local.harness = False  # only this request: what it triggers (ingest_s3) is the pipeline's
        elif self.enabled:
            counter.record(event_name, request.body)
        return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = counted
    try:
        yield
    finally:
        BotocoreStubber.__call__ = original


def harness_client(service: str) -> Any:
    """A boto3 client whose requests the counter leaves out (the benchmark's own calls)."""
    import boto3

    client = boto3.client(service, region_name="us-east-1")

    def mark(**_: Any) -> None:
        _local.harness = True

    client.meta.events.register_first("before-send", mark)
    return client


# --- the runtime ---------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep handler logs and Powertools metrics (printed to stdout) out of the report."""
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "1"
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    logging.disable(logging.CRITICAL)
    with open(os.devnull, "w") as sink, warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


@dataclass
class RunHandle:
    """A started runtime with its counters and the clock pairing that maps wall time to simulated time."""

    runtime: EmbeddedRuntime
    counter: RequestCounter
    wall0: float
    sim0: float
    scale: float
    started_real: float

    def sim_of_wall(self, wall: float) -> float:
        """Simulated epoch seconds at a wall-clock epoch time (the simulator's clock is linear)."""
        return self.sim0 + (wall - self.wall0) * self.scale


@contextlib.contextmanager
def running(settings: PipelineSettings, simulator: SimulatorConfig) -> Iterator[RunHandle]:
    """Start the embedded runtime (its moto fixes included) with request counting; stop it after."""
    from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions

    counter = RequestCounter()
    started = time.monotonic()
    runtime = EmbeddedRuntime(RuntimeOptions(settings=settings, simulator=simulator))
    try:
        with counting(counter):
            runtime.start()
            counter.reset()  # deploying the stack is not the pipeline's work
            assert runtime.simulator is not None
            handle = RunHandle(runtime, counter, time.time(), runtime.simulator.clock.now(),
                               runtime.simulator.clock.scale, time.monotonic() - started)
            yield handle
    finally:
        runtime.stop()


def set_scale(handle: RunHandle, scale: float) -> None:
    """Run the simulator's clock at ``scale`` from now on, and re-pair wall time with simulated time."""
    sim = handle.runtime.simulator
    assert sim is not None
    sim.config.clock_scale = scale
    sim.clock.set_scale(scale)
    # Get* quotas are per simulated second; the pipeline paces Get* per real second (video_get_tps_quota),
    # as it would against AWS. Keep the documented 20 TPS per *real* second whatever the clock's speed, so a
    # fast clock compresses job durations without starving collections.
    for api in GET_OPERATIONS:
        sim.config.tps_quotas[api] = DEFAULT_GET_TPS * scale
    handle.wall0, handle.sim0, handle.scale = time.time(), sim.clock.now(), scale


@dataclass
class PhaseMarks:
    """Where the runtime's logs stood when a phase began, and what the phase used once it ended."""

    terminal_before: int
    calls_before: int
    events_before: int
    invocations_before: int
    batches_before: dict[str, int]
    usage: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def phase(handle: RunHandle) -> Iterator[PhaseMarks]:
    """Mark the start of a phase; on exit, fill ``marks.usage`` with what only this phase used."""
    from rekpipe_shared.tasks import TaskTable

    sim = handle.runtime.simulator
    adapter = handle.runtime.adapter
    assert sim is not None and adapter is not None
    table = TaskTable(handle.runtime.outputs["TaskTableName"], boto3_client=harness_client("dynamodb"))
    counts = table.counts()
    marks = PhaseMarks(sum(counts[s] for s in TERMINAL), len(sim.stats.call_log), len(sim.job_events),
                       len(adapter.invocations), event_source_batches(handle))
    succeeded_before = sim.stats.succeeded
    errors_before = sim.stats.errors
    handle.counter.reset()
    yield marks
    batches = event_source_batches(handle)
    errors_after = sim.stats.errors
    marks.usage = {
        "requests": handle.counter.snapshot(),
        "lambda": invocations_by_service(handle, since=marks.invocations_before),
        "sqs_batches": {k: v - marks.batches_before.get(k, 0) for k, v in batches.items()},
        "rekognition_calls": dict(sim.stats.succeeded - succeeded_before),
        "rekognition_errors": {op: dict(codes - errors_before.get(op, Counter()))
                               for op, codes in errors_after.items() if codes - errors_before.get(op, Counter())},
        "loadavg_end": os.getloadavg()[0],
    }


def upload_all(handle: RunHandle, objects: list[tuple[str, bytes]]) -> list[str]:
    """Upload every object (S3 notifies ingest_s3, synchronously here); returns their task ids."""
    from rekpipe_shared.tasks import task_id_for

    s3 = harness_client("s3")
    bucket = handle.runtime.outputs["ContentBucketName"]
    ids = []
    for key, body in objects:
        version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
        ids.append(task_id_for(bucket, key, version, None))
    return ids


def wait_until_terminal(handle: RunHandle, total: int, *, timeout: float, progress: str = "") -> dict[str, int]:
    """Poll the task counters until ``total`` tasks are terminal; PipelineStalledError after ``timeout`` s."""
    from rekpipe_shared.tasks import TaskTable

    table = TaskTable(handle.runtime.outputs["TaskTableName"], boto3_client=harness_client("dynamodb"))
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = table.counts()
        done = sum(counts[s] for s in TERMINAL)
        _progress(f"{progress} {done}/{total} done")
        if done >= total:
            _progress("", end=True)
            return counts
        time.sleep(1.0)
    _progress("", end=True)
    raise PipelineStalledError(progress.strip(), counts, timeout)


def _progress(text: str, *, end: bool = False) -> None:
    sys.stderr.write("\r\033[K" + text + ("\n" if end and text else ""))
    sys.stderr.flush()


def scan_tasks(handle: RunHandle) -> list[dict[str, Any]]:
    """Every task item (counters left out)."""
    from rekpipe_shared.tasks import _from_item, is_counter_id

    client = harness_client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=handle.runtime.outputs["TaskTableName"]):
        items.extend(_from_item(item) for item in page["Items"])
    return [item for item in items if not is_counter_id(str(item.get("task_id", "#")))]


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item, roughly: attribute names plus the text of their values."""
    return sum(len(name) + len(json.dumps(value, default=str)) for name, value in item.items())


def iso_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def executions(handle: RunHandle) -> list[dict[str, Any]]:
    """Every video execution with its input and history (the benchmark's calls are not counted)."""
    sfn = harness_client("stepfunctions")
    arn = handle.runtime.outputs["VideoStateMachineArn"]
    listed = [e for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
              for e in page["executions"]]
    out = []
    for execution in listed:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        history: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"executionArn": execution["executionArn"], "maxResults": 1000}
            if token:
                kwargs["nextToken"] = token
            page = sfn.get_execution_history(**kwargs)
            history.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                break
        out.append({
            "arn": execution["executionArn"],
            "status": described["status"],
            "start": described["startDate"].timestamp(),
            "stop": described["stopDate"].timestamp() if described.get("stopDate") else None,
            "input": json.loads(described.get("input") or "{}"),
            "entered": [e["type"] for e in history if e["type"].endswith("StateEntered")],
            "entered_names": [e["stateEnteredEventDetails"]["name"] for e in history
                              if "stateEnteredEventDetails" in e],
        })
    return out


def invocations_by_service(handle: RunHandle, since: int = 0) -> dict[str, dict[str, Any]]:
    """Lambda invocations per service: count, summed billed GB-s (1 ms rounding) and errors."""
    assert handle.runtime.adapter is not None and handle.runtime.stack is not None
    names = {physical: service for service, physical in handle.runtime.stack.function_names.items()}
    lam = harness_client("lambda")
    memory = {}
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            memory[function["FunctionName"]] = int(function.get("MemorySize", 128))
    out: dict[str, dict[str, Any]] = {}
    for invocation in list(handle.runtime.adapter.invocations)[since:]:
        service = names.get(invocation.function_name, invocation.function_name)
        entry = out.setdefault(service, {"invocations": 0, "gb_seconds": 0.0, "errors": 0, "seconds": 0.0,
                                         "error_types": {}, "memory_mb": memory.get(invocation.function_name, 128)})
        entry["invocations"] += 1
        entry["seconds"] += invocation.duration
        entry["gb_seconds"] += math.ceil(invocation.duration * 1000) / 1000 * entry["memory_mb"] / 1024
        entry["errors"] += int(invocation.is_error)
        if invocation.error_type:
            entry["error_types"][invocation.error_type] = entry["error_types"].get(invocation.error_type, 0) + 1
    return out


def event_source_batches(handle: RunHandle) -> dict[str, int]:
    """Non-empty SQS receives per consumer (each delivered batch is one ReceiveMessage)."""
    assert handle.runtime.stack is not None
    names = {physical: service for service, physical in handle.runtime.stack.function_names.items()}
    from rekpipe.emulator.event_sources import SqsEventSource

    return {names.get(s.function_name, s.function_name): s.stats.batches
            for s in handle.runtime.event_sources if isinstance(s, SqsEventSource)}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
