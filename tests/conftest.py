"""Fixtures every suite shares: fake credentials, moto, the synthesized template, the simulator."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

    from rekpipe.simulator import RekognitionSimulator
    from tests.support.resources import PipelineResources
    from tests.support.runtime import RuntimeDefaults, RuntimeFactory

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "RekognitionPipeline",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@pytest.fixture(scope="session")
def stack_template() -> dict[str, Any]:
    """The stack's CloudFormation template, synthesized once per session without bundling."""
    from aws_cdk.assertions import Template

    import cdk_app
    from rekpipe_shared.settings import PipelineSettings

    stack = cdk_app.build(cdk_app.new_app(bundling=False), checks=False, settings=PipelineSettings())
    return Template.from_stack(stack).to_json()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can reach a real account."""
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def aws(aws_env: None) -> Iterator[Any]:
    """Every AWS service mocked by moto in-process, with Step Functions really executing ASL."""
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}) as mock:
        yield mock


@pytest.fixture
def resources(aws: Any, stack_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> PipelineResources:
    """The pipeline's tables (from the template), buckets and queues, with the functions' env set."""
    from tests.support.resources import create_resources

    created = create_resources(stack_template)
    for name, value in created.environment().items():
        monkeypatch.setenv(name, value)
    return created


@pytest.fixture
def rekognition(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[RekognitionSimulator]:
    """Our Rekognition simulator on loopback, reached by every boto3 client through the env var."""
    import botocore.retries.standard

    from rekpipe.simulator import RekognitionSimulator, SimulatorConfig

    # botocore's throttling backoff is up to seconds per retry; tests keep its shape, not its length
    real_delay = botocore.retries.standard.ExponentialBackoff.delay_amount
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount",
                        lambda self, context: real_delay(self, context) / 100)
    simulator = RekognitionSimulator(SimulatorConfig(seed=1, job_duration=None))
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", simulator.start())
    yield simulator
    simulator.stop()


@pytest.fixture
def load_handler(resources: PipelineResources) -> Callable[[str], ModuleType]:
    """Import (fresh) a function's module after the env and mocks are in place."""

    def load(name: str) -> ModuleType:
        module = importlib.import_module(f"lambdas.{name}.app")
        return importlib.reload(module)

    return load


@pytest.fixture
def runtime_defaults() -> RuntimeDefaults:
    """What ``make_runtime`` starts from; a test module overrides this fixture to change it for its tests."""
    from tests.support.runtime import RuntimeDefaults

    return RuntimeDefaults()


@pytest.fixture
def make_runtime(aws_env: None, runtime_defaults: RuntimeDefaults) -> Iterator[RuntimeFactory]:
    """Start embedded runtimes (the whole deployed pipeline, in-process): ``make_runtime(settings, **simulator)``.

    Every runtime started is stopped after the test, even one whose start() failed half-way.
    """
    from tests.support.runtime import RuntimeFactory

    factory = RuntimeFactory(runtime_defaults)
    yield factory
    factory.stop_all()
