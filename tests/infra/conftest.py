"""One synthesis per session (bundling skipped, cdk-nag on), shared by every infra test."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

import cdk_app
from stack.context import settings_from_context

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from rekpipe_shared.settings import PipelineSettings
    from stack.pipeline_stack import RekognitionPipelineStack

_ENV_VARS = ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")


@dataclass(frozen=True)
class Synthesized:
    """A synthesized pipeline stack and everything the tests read from it."""

    stack: RekognitionPipelineStack
    settings: PipelineSettings
    template: Template
    json: dict[str, Any]
    outdir: Path
    validation_error: str | None
    """The synth error cdk-nag raised, or None when every finding was acknowledged."""
    report: dict[str, Any] | None
    """``validation-report.json`` of the cloud assembly."""


def synthesize(outdir: Path, overrides: dict[str, Any] | None = None, *, checks: bool = True) -> Synthesized:
    """Build the app as ``cdk_app`` does (cdk.json context, then ``overrides``) and synthesize it."""
    saved = {name: os.environ.pop(name) for name in _ENV_VARS if name in os.environ}  # environment-agnostic
    try:
        app = cdk_app.new_app(context=overrides, outdir=outdir, bundling=False)
        stack = cdk_app.build(app, checks=checks)
    finally:
        os.environ.update(saved)
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings fail synth; the template is still written
        error = str(exc)
    template_json = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    template = Template.from_stack(stack) if error is None else Template.from_json(template_json)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return Synthesized(stack=stack, settings=settings_from_context(app.node), template=template,
                       json=template_json, outdir=outdir, validation_error=error, report=report)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack as ``cdk.json`` defines it, with cdk-nag's AwsSolutions checks."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def synth_with(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Synthesized]]:
    """Factory: the stack with some settings overridden as ``-c name=value`` would (cached per overrides)."""
    cache: dict[str, Synthesized] = {}

    def make(*, checks: bool = False, **overrides: Any) -> Synthesized:
        key = json.dumps([checks, overrides], sort_keys=True)
        if key not in cache:
            cache[key] = synthesize(tmp_path_factory.mktemp("cdk.out.variant"), overrides, checks=checks)
        return cache[key]

    yield make


@pytest.fixture(scope="session")
def template(synth: Synthesized) -> dict[str, Any]:
    """The synthesized template as JSON."""
    return synth.json
