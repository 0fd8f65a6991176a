"""The embedded runtime: the whole pipeline on loopback, with no AWS account.

moto provides the AWS services (in-process, or as a server on loopback for the AWS CLI), the
synthesized stack is deployed into it (:mod:`rekpipe.emulator.deploy`), our handlers run
in-process (:mod:`rekpipe.emulator.lambda_adapter`), the Rekognition simulator plays the service,
and this module wires what AWS would: event source pollers, the EventBridge rule on execution
status changes, and the reconciler's schedule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rekpipe.emulator import moto_fixes, service_quotas, sim_timers
from rekpipe.emulator.deploy import ACCOUNT_ID, DeployedStack, deploy, synthesize
from rekpipe.emulator.event_rules import EventRules, iso_time
from rekpipe.emulator.event_sources import (
    STOP_JOIN_SECONDS,
    SqsEventSource,
    StreamEventSource,
    aws_client,
    invoke,
)
from rekpipe.emulator.iam import IamEnforcement
from rekpipe.emulator.iam.simulator_access import SimulatorAccess
from rekpipe.emulator.lambda_adapter import InProcessLambdas, ServiceNameResolver

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe.simulator import RekognitionSimulator, SimulatorConfig
    from rekpipe_shared.settings import PipelineSettings

LOG = logging.getLogger("rekpipe.emulator")
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "rekpipe-local",
    "AWS_SECRET_ACCESS_KEY": "rekpipe-local",
    "AWS_SESSION_TOKEN": "rekpipe-local",
}
ENFORCE_IAM_ENV = "REKPIPE_ENFORCE_IAM"
DEFAULT_SQS_CONCURRENCY = 5
"""Pollers for a mapping without MaximumConcurrency (AWS would scale further)."""


@dataclass
class RuntimeOptions:
    """How to run the emulator.

    Parameters
    ----------
    settings: PipelineSettings | None
        The stack's settings (defaults if None), synthesized into the deployed template.
    simulator: SimulatorConfig | None
        Rekognition simulator knobs (quotas, job durations, faults, seed).
    server: bool
        Serve moto on loopback (``rekpipe local up``, the AWS CLI) instead of in-process.
    port: int
        Port for the server (0 picks a free one).
    rule_poll_seconds: float
        How often execution status changes are looked for (EventBridge delivers within seconds); while
        none comes, the pause doubles up to ``RULE_IDLE_POLL_SECONDS``, so an idle runtime stays quiet.
    schedule_seconds: float | None
        Override of every scheduled rule's period (the reconciler), e.g. for tests.
    """

    settings: PipelineSettings | None = None
    simulator: SimulatorConfig | None = None
    server: bool = False
    port: int = 0
    region: str = "us-east-1"
    rule_poll_seconds: float = 0.25
    schedule_seconds: float | None = None
    workdir: Path | None = None
    enforce_iam: bool = field(default_factory=lambda: os.environ.get(ENFORCE_IAM_ENV, "1") != "0")
    """Authorize every call against the deployed policies, each caller acting with its own role
    (``REKPIPE_ENFORCE_IAM=0`` turns it off, to measure what it costs)."""
    timers_on_simulated_clock: bool = False
    """Run Step Functions' timeouts, heartbeats and retry waits, the schedules and the slot dispatcher's clock on
    the simulator's clock (``SimulatorConfig.clock_scale``), so a day of waiting takes seconds
    (:mod:`rekpipe.emulator.sim_timers`)."""
    template_mutator: Callable[[dict[str, Any]], None] | None = None
    """Edits the synthesized template before it is deployed (tests remove a grant to watch it fail)."""


class EmbeddedRuntime:
    """Start with :meth:`start` (or ``with``); everything stops with :meth:`stop`."""

    def __init__(self, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        self.stack: DeployedStack | None = None
        self.simulator: RekognitionSimulator | None = None
        self.adapter: InProcessLambdas | None = None
        self.endpoint_url: str | None = None
        self.event_sources: list[SqsEventSource | StreamEventSource] = []
        self.rules: EventRules | None = None
        self._saved_env: dict[str, str | None] = {}
        self._mock: Any = None
        self._server: Any = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._undo_moto_fixes: Any = None
        self._undo_service_quotas: Any = None
        self.service_quotas: service_quotas.RekognitionServiceQuotas | None = None
        """Service Quotas' ``rekognition`` values: the simulator's own quotas (:meth:`set_quota` changes both)."""
        self._undo_sim_timers: Any = None
        self._stopped = False
        self.iam: IamEnforcement | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> EmbeddedRuntime:
        """Bring everything up; on any failure, take down what was started before re-raising."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> EmbeddedRuntime:
        from rekpipe.simulator import RekognitionSimulator, SimulatorConfig

        started = time.monotonic()
        self._set_env(
            {
                **FAKE_CREDENTIALS,
                "AWS_DEFAULT_REGION": self.options.region,
                "AWS_REGION": self.options.region,
                "POWERTOOLS_TRACE_DISABLED": "1",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                "POWERTOOLS_METRICS_NAMESPACE": "RekognitionPipeline",
                "AWS_PROFILE": None,
                "AWS_ENDPOINT_URL": None,
            }
        )
        self._start_moto()
        self._undo_moto_fixes = moto_fixes.install()
        access = None
        if self.options.enforce_iam:
            self.iam = IamEnforcement(ACCOUNT_ID, self.options.region).install()
            operator = self.iam.operator.get_frozen_credentials()
            self._set_env({"AWS_ACCESS_KEY_ID": operator.access_key, "AWS_SECRET_ACCESS_KEY": operator.secret_key,
                           "AWS_SESSION_TOKEN": None})
            access = SimulatorAccess(self.iam)
        self.simulator = RekognitionSimulator(self.options.simulator or SimulatorConfig(), access=access)
        sim_endpoint = self.simulator.start()
        simulator = self.simulator
        self.service_quotas = service_quotas.RekognitionServiceQuotas(
            lambda: simulator.config, region=self.options.region, account_id=ACCOUNT_ID)
        self._undo_service_quotas = service_quotas.install(self.service_quotas)
        self._set_env({"AWS_ENDPOINT_URL_REKOGNITION": sim_endpoint})
        resolver = ServiceNameResolver()
        if self.options.timers_on_simulated_clock:
            clock = self.simulator.clock
            from rekpipe_shared.settings import PipelineSettings

            heartbeat = (self.options.settings or PipelineSettings()).video_slot_heartbeat_seconds
            self._undo_sim_timers = sim_timers.install(clock.scale, heartbeat)
            resolver.on_load["slot_dispatcher"] = lambda module: setattr(module.rules, "clock", clock.now)
        self.adapter = InProcessLambdas(resolver, environment_overrides={"AWS_ENDPOINT_URL_REKOGNITION": sim_endpoint})
        if self.iam is not None:
            enforcement = self.iam
            self.adapter.identity = lambda function: enforcement.function_session(function).credentials
        self.adapter.install()
        workdir = self.options.workdir
        if workdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="rekpipe-cdk-")
            workdir = Path(self._tempdir.name)
        assembly = synthesize(workdir, settings=self.options.settings)
        if self.options.template_mutator is not None:
            template_path = assembly / "RekognitionPipeline.template.json"
            template = json.loads(template_path.read_text())
            self.options.template_mutator(template)
            template_path.write_text(json.dumps(template))
        self.stack = deploy(assembly, region=self.options.region)
        if self.iam is not None:
            self.iam.load_resource_policies(self.stack.resource_policies)
        self._mark_outputs_synthetic()
        self._start_event_sources()
        sim_clock = self.simulator.clock if self.options.timers_on_simulated_clock and self.simulator else None
        self.rules = EventRules(self.stack.rules, region=self.options.region, may_invoke=self._may_invoke,
                                rule_poll_seconds=self.options.rule_poll_seconds,
                                schedule_seconds=self.options.schedule_seconds, sim_clock=sim_clock).start()
        LOG.info("Embedded runtime ready in %.1f s", time.monotonic() - started)
        return self

    def _mark_outputs_synthetic(self) -> None:
        """Write the synthetic-content marker at the output bucket's root (:mod:`rekpipe.synthetic`), so a
        report of this bucket, or of a copy of it, says on every page that the analyses are invented."""
        from rekpipe.synthetic import SYNTHETIC_MARKER_KEY, marker_document

        assert self.stack is not None and self.simulator is not None
        bucket = self.stack.outputs.get("OutputBucketName")
        if bucket:
            body = marker_document(written_at=iso_time(), seed=self.simulator.config.seed)
            aws_client("s3", self.options.region).put_object(
                Bucket=bucket, Key=SYNTHETIC_MARKER_KEY, Body=json.dumps(body).encode(),
                ContentType="application/json")

    def stop(self) -> None:
        """Stop everything this runtime started; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.rules is not None:
            self.rules.request_stop()
        for source in self.event_sources:  # all at once: idle pollers sit in long polls, one wait covers them all
            source.request_stop()
        deadline = time.monotonic() + STOP_JOIN_SECONDS
        for source in self.event_sources:
            # a stream reader finishes the batch it is delivering; an SQS poller's receive is only a wait
            source.stop(deadline) if isinstance(source, SqsEventSource) else source.stop()
        if self.rules is not None:
            self.rules.stop()
        if self.simulator:
            self.simulator.stop()
        if self.adapter:
            with contextlib.suppress(Exception):
                self.adapter.uninstall()
        if self.iam is not None:
            self.iam.uninstall()
        if self._undo_sim_timers:
            self._undo_sim_timers()
        if self._undo_moto_fixes:
            self._undo_moto_fixes()
        if self._undo_service_quotas:
            self._undo_service_quotas()
        if self._server:
            self._server.stop()
        if self._mock:
            self._mock.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._tempdir:
            self._tempdir.cleanup()

    def __enter__(self) -> EmbeddedRuntime:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what users and tests need -------------------------------------------------------------
    @property
    def outputs(self) -> dict[str, str]:
        assert self.stack is not None, "start() the runtime first"
        return self.stack.outputs

    def function_name(self, service: str) -> str:
        assert self.stack is not None
        return self.stack.function_names[service]

    def invoke(self, service: str, event: dict[str, Any]) -> Any:
        """Invoke a deployed function through moto (and so through the adapter)."""
        result = invoke(aws_client("lambda", self.options.region), self.function_name(service), event)
        if result.function_error:
            raise RuntimeError(f"{service} failed: {result.payload}")
        return result.payload

    def set_quota(self, name: str, value: float) -> None:
        """Change a Rekognition quota mid-run (an API's TPS, or ``ConcurrentStoredVideoJobs``), as an approved
        quota increase would: the simulator enforces it at once, and Service Quotas reports it, so the
        pipeline follows within its refresh interval."""
        assert self.service_quotas is not None, "start() the runtime first"
        self.service_quotas.set(name, value)

    def run_schedules_now(self) -> None:
        """Fire every scheduled rule once (the reconciler), as if its period had elapsed."""
        assert self.rules is not None, "start() the runtime first"
        self.rules.fire_schedules_now()

    def operator_credentials(self) -> dict[str, str]:
        """The operator's keys (you, in the emulator), as boto3 session arguments."""
        assert self.iam is not None and self.iam.operator is not None
        frozen = self.iam.operator.get_frozen_credentials()
        return {"aws_access_key_id": frozen.access_key, "aws_secret_access_key": frozen.secret_key}

    def all_function_credentials(self) -> dict[str, dict[str, str]]:
        """Each function's role session (service name -> boto3 session arguments), to probe its grants."""
        assert self.stack is not None
        result = {}
        for service, name in sorted(self.stack.function_names.items()):
            frozen = self.function_role_credentials(name).get_frozen_credentials()
            result[service] = {"aws_access_key_id": frozen.access_key, "aws_secret_access_key": frozen.secret_key,
                               "aws_session_token": frozen.token}
        return result

    def function_role_credentials(self, function_name: str) -> Any:
        """The credentials of a deployed function's execution role (None without IAM enforcement)."""
        if self.iam is None:
            return None
        from moto.awslambda.utils import get_backend

        function = get_backend(ACCOUNT_ID, self.options.region).get_function(function_name)
        return self.iam.function_session(function).credentials

    def _may_invoke(self, function: str, service: str, source_arn: str) -> bool:
        if self.iam is None:
            return True
        arn = f"arn:aws:lambda:{self.options.region}:{ACCOUNT_ID}:function:{function}"
        return self.iam.lambda_permission_allows(arn, service, source_arn)

    # --- internals -----------------------------------------------------------------------------
    def _set_env(self, values: dict[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _start_moto(self) -> None:
        if not self.options.server:
            from moto import mock_aws

            self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
            self._mock.start()
            return
        import requests
        from moto.server import ThreadedMotoServer

        port = self.options.port or _free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        # The execution engine's own clients call localhost:$MOTO_PORT.
        self._set_env({"AWS_ENDPOINT_URL": self.endpoint_url, "MOTO_PORT": str(port)})
        requests.post(
            f"{self.endpoint_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        ).raise_for_status()

    def _start_event_sources(self) -> None:
        assert self.stack is not None
        sqs = aws_client("sqs", self.options.region)
        for spec in self.stack.event_sources:
            if spec.kind == "sqs":
                queue_url = sqs.get_queue_url(QueueName=spec.source_arn.rsplit(":", 1)[-1])["QueueUrl"]
                source: SqsEventSource | StreamEventSource = SqsEventSource(
                    queue_url,
                    spec.function_name,
                    batch_size=spec.batch_size,
                    max_concurrency=int(spec.max_concurrency or DEFAULT_SQS_CONCURRENCY),
                    report_batch_item_failures=spec.report_batch_item_failures,
                    region=self.options.region,
                    role_credentials=self.function_role_credentials(spec.function_name),
                )
            else:
                on_failure = None
                if spec.on_failure_arn and spec.on_failure_arn.startswith("arn:aws:sqs:"):
                    on_failure = sqs.get_queue_url(QueueName=spec.on_failure_arn.rsplit(":", 1)[-1])["QueueUrl"]
                source = StreamEventSource(
                    spec.source_arn,
                    spec.function_name,
                    batch_size=spec.batch_size,
                    max_retry_attempts=spec.max_retry_attempts,
                    on_failure_queue_url=on_failure,
                    region=self.options.region,
                    role_credentials=self.function_role_credentials(spec.function_name),
                    filter_patterns=spec.filter_patterns,
                    batching_window_seconds=spec.batching_window_seconds,
                )
            self.event_sources.append(source.start())

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_state_file(path: Path, runtime: EmbeddedRuntime) -> None:
    """What ``rekpipe --local`` reads to find a running ``rekpipe local up``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "endpoint_url": runtime.endpoint_url,
                "region": runtime.options.region,
                "stack_name": runtime.stack.stack_name if runtime.stack else None,
                "rekognition_endpoint_url": runtime.simulator.endpoint_url if runtime.simulator else None,
                **({"credentials": runtime.operator_credentials(),
                    "function_credentials": runtime.all_function_credentials()} if runtime.iam else {}),
            },
            indent=2,
        )
    )


__all__ = ["EmbeddedRuntime", "RuntimeOptions", "write_state_file"]
