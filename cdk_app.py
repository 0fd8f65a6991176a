#!/usr/bin/env python3
"""CDK entry point: build the Rekognition pipeline app from typed settings and synthesize it.

Settings come from the ``settings`` context (``cdk.json``); any single setting can be overridden
with ``-c name=value``, through the CDK CLI or directly (``python cdk_app.py -c image_batch_size=5``).
A bad setting stops synth with one line (``Invalid setting: ...``) and exit status 1.

This is the one way the app is built: the CDK CLI, the tests and the embedded runtime all call
:func:`new_app` and :func:`build`, so they synthesize one template with ``cdk.json``'s feature flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from rekpipe_shared.exceptions import SettingsError
from stack.context import settings_from_context
from stack.pipeline_stack import RekognitionPipelineStack

if TYPE_CHECKING:
    from rekpipe_shared.settings import PipelineSettings

STACK_ID = "RekognitionPipeline"
CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The ``context`` of ``cdk.json`` (feature flags and settings).

    The CDK CLI passes it to the app itself; a direct ``python cdk_app.py`` would otherwise run
    without it, so it is given to the App as defaults that the CLI's context overrides.
    """
    return dict(json.loads(path.read_text()).get("context", {}))


def new_app(*, context: dict[str, Any] | None = None, outdir: Path | None = None, bundling: bool = True,
            post_cli_context: dict[str, Any] | None = None) -> cdk.App:
    """An App with ``cdk.json``'s context (feature flags, settings) under ``context``'s overrides.

    ``bundling=False`` skips asset bundling for every stack (tests and the embedded runtime run the
    code in-process, so nothing is packaged).
    """
    merged = {**cdk_json_context(), **(context or {})}
    if not bundling:
        merged["aws:cdk:bundling-stacks"] = []
    return cdk.App(context=merged, outdir=str(outdir) if outdir else None, post_cli_context=post_cli_context)


def stack_environment() -> cdk.Environment | None:
    """The account and region the CLI resolved, if any; otherwise an environment-agnostic stack."""
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    return cdk.Environment(account=account, region=region) if account or region else None


def build(app: cdk.App, *, checks: bool = True, settings: PipelineSettings | None = None,
          stack_name: str = STACK_ID, bootstrap_rule: bool = True) -> RekognitionPipelineStack:
    """Add the pipeline stack and (unless ``checks`` is False) the cdk-nag AwsSolutions checks to ``app``.

    ``settings`` replaces the app's ``settings`` context (the embedded runtime passes typed ones);
    ``bootstrap_rule=False`` leaves out the template's bootstrap-version rule, which only a real
    CloudFormation evaluates.

    Raises
    ------
    SettingsError
        When a setting in the app's context is invalid.
    """
    settings = settings or settings_from_context(app.node)
    synthesizer = None if bootstrap_rule else cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False)
    stack = RekognitionPipelineStack(app, stack_name, settings=settings, env=stack_environment(),
                                     synthesizer=synthesizer)
    if checks:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def _cli_context(argv: list[str] | None) -> dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE",
                        help="override one context value (a setting name, or 'settings' as JSON)")
    args = parser.parse_args(argv)
    context: dict[str, str] = {}
    for item in args.context:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"context must be NAME=VALUE, got {item!r}")
        context[name] = value
    return context


def main(argv: list[str] | None = None) -> int:
    app = new_app(post_cli_context=_cli_context(argv))
    try:
        build(app)
    except SettingsError as error:
        print(f"Invalid setting: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
