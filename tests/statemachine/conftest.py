"""Fixtures for executing ASL in moto's interpreter with our Lambda handlers run in-process."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from rekpipe.emulator import InProcessLambdas, ServiceNameResolver
from rekpipe_shared.constants import (
    SEMAPHORE_TABLE_NAME_ENV,
    SERVICE_NAME_ENV,
    TASK_TABLE_NAME_ENV,
    VIDEO_SLOT_LIMIT_ENV,
)
from rekpipe_shared.semaphore import SemaphoreSnapshot, VideoSemaphore
from tests.emulator.moto_functions import create_function

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ASL_DIR = Path(__file__).parent / "asl"
SEMAPHORE_TABLE = "semaphore-table"
TASK_TABLE = "task-table"
STATES_ROLE_ARN = "arn:aws:iam::123456789012:role/StatesExecutionRole"
SEMAPHORE_SERVICES = ("acquire_slot", "release_slot", "release_execution_slots", "reconcile_slots")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def create_semaphore_table(name: str = SEMAPHORE_TABLE) -> str:
    """The semaphore table as the stack defines it: pk/sk strings, TTL on expires_at, on demand."""
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    return name


class SimulatedJobError(Exception):
    """The probe's DoWork failed, as asked by a negative ``workSeconds``."""


class RecordingStepFunctions:
    """A Step Functions client that timestamps every SendTaskSuccess the semaphore makes."""

    def __init__(self, client: Any, log: list[tuple[float, dict[str, Any]]]):
        self._client = client
        self._log = log

    def send_task_success(self, **kwargs: Any) -> Any:
        sent = time.monotonic()
        response = self._client.send_task_success(**kwargs)
        self._log.append((sent, json.loads(kwargs["output"])))
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@dataclass
class SemaphoreProbe:
    """The probe state machine wired to the real semaphore handlers, and what the run recorded."""

    adapter: InProcessLambdas
    limit: int
    functions: dict[str, str]
    """Service name -> function ARN."""
    wakes: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    """(monotonic time, SendTaskSuccess output) for every grant."""
    work_starts: list[tuple[float, str, int]] = field(default_factory=list)
    """(monotonic time, holder, holders in the table) at each DoWork start."""
    peak_working: int = 0
    _working: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    _semaphore: VideoSemaphore | None = None

    @property
    def semaphore(self) -> VideoSemaphore:
        """A semaphore client of the test's own (not one of the handlers')."""
        if self._semaphore is None:
            self._semaphore = VideoSemaphore(SEMAPHORE_TABLE, limit=self.limit)
        return self._semaphore

    def snapshot(self) -> SemaphoreSnapshot:
        return self.semaphore.snapshot()

    def create_state_machine(
        self, name: str = "semaphore-probe", *, fallback_seconds: int = 30, timeout_seconds: int | None = None
    ) -> str:
        """Create the probe machine; ``timeout_seconds`` sets a whole-execution timeout."""
        definition = (ASL_DIR / "semaphore_probe.asl.json").read_text()
        for placeholder, service in (
            ("LambdaAcquireSlotFunction", "acquire_slot"),
            ("LambdaReleaseSlotFunction", "release_slot"),
            ("LambdaDoWorkFunction", "probe_work"),
        ):
            definition = definition.replace("${" + placeholder + "}", self.functions[service])
        asl = json.loads(definition)
        asl["States"]["AcquireSlot"]["TimeoutSeconds"] = fallback_seconds
        if timeout_seconds is not None:
            asl["TimeoutSeconds"] = timeout_seconds
        sfn = boto3.client("stepfunctions")
        return sfn.create_state_machine(name=name, definition=json.dumps(asl), roleArn=STATES_ROLE_ARN)[
            "stateMachineArn"
        ]

    def start(
        self, state_machine_arn: str, name: str, *, work_seconds: float = 0.1, operation: str = "LabelDetection"
    ) -> str:
        execution_input = json.dumps({"operation": operation, "workSeconds": work_seconds})
        return boto3.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=execution_input
        )["executionArn"]

    @staticmethod
    def wait_for(execution_arns: list[str], *, timeout: float = 40, status: str | None = None) -> dict[str, str]:
        """Poll until every execution is terminal (or has ``status``); return execution ARN -> status."""
        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            statuses = {arn: sfn.describe_execution(executionArn=arn)["status"] for arn in execution_arns}
            wanted = {status} if status else TERMINAL
            if all(value in wanted for value in statuses.values()):
                return statuses
            time.sleep(0.05)
        return statuses

    def invoke(self, service: str, event: dict[str, Any]) -> dict[str, Any]:
        response = boto3.client("lambda").invoke(FunctionName=self.functions[service], Payload=json.dumps(event))
        payload = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, payload
        return payload

    def do_work(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Handler of the probe's DoWork state: counts concurrent workers and sleeps; fails if told to."""
        if float(event["workSeconds"]) < 0:
            raise SimulatedJobError(f"job of {event['holder']} failed")
        holders = len(self.snapshot().holders)
        with self._lock:
            self._working += 1
            self.peak_working = max(self.peak_working, self._working)
            self.work_starts.append((time.monotonic(), event["holder"], holders))
        try:
            time.sleep(float(event["workSeconds"]))
        finally:
            with self._lock:
                self._working -= 1
        return {"holder": event["holder"]}


@pytest.fixture
def semaphore_probe(aws: Any) -> Iterator[Callable[..., SemaphoreProbe]]:
    """Factory: the semaphore table, the four semaphore functions plus probe_work, all run in-process."""
    adapters: list[InProcessLambdas] = []

    def make(limit: int = 3) -> SemaphoreProbe:
        create_semaphore_table()
        base = ServiceNameResolver()
        probe: SemaphoreProbe | None = None

        def resolver(function_name: str, environment: dict[str, str]) -> Callable[..., Any]:
            handler = base(function_name, environment)
            module = base.load_module(environment[SERVICE_NAME_ENV])
            if hasattr(module, "semaphore"):
                # Same semaphore, with a client that timestamps the wake-ups for the latency figures.
                assert probe is not None
                module.semaphore = VideoSemaphore(
                    module.semaphore.table_name,
                    limit=module.semaphore.limit,
                    dynamodb_client=boto3.client("dynamodb"),
                    sfn_client=RecordingStepFunctions(boto3.client("stepfunctions"), probe.wakes),
                )
            return handler

        adapter = InProcessLambdas(resolver).install()
        adapters.append(adapter)
        boto3.client("dynamodb").create_table(  # release_execution_slots records ended tasks here
            TableName=TASK_TABLE, KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "task_id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        environment = {SEMAPHORE_TABLE_NAME_ENV: SEMAPHORE_TABLE, VIDEO_SLOT_LIMIT_ENV: str(limit),
                       TASK_TABLE_NAME_ENV: TASK_TABLE}
        functions = {
            service: create_function(service.replace("_", "-"), service=service, environment=environment)["FunctionArn"]
            for service in (*SEMAPHORE_SERVICES, "probe_work")
        }
        probe = SemaphoreProbe(adapter=adapter, limit=limit, functions=functions)
        adapter.register("probe-work", probe.do_work)
        return probe

    yield make
    for adapter in adapters:
        adapter.uninstall()
