"""cdk_app.py: settings from context, clear failures, and the outputs the CLI reads."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import aws_cdk as cdk
import pytest

import cdk_app
from rekpipe_shared.exceptions import SettingsError
from rekpipe_shared.settings import PipelineSettings
from stack.context import settings_from_context

CLI_OUTPUTS = {
    "ContentBucketName", "ExistingContentBucketName", "InventoryBucketName", "ManifestBucketName", "OutputBucketName",
    "TaskTableName", "SemaphoreTableName", "RateLimitTableName", "ImageQueueUrl", "VideoQueueUrl", "ImageDlqUrl",
    "VideoDlqUrl", "VideoStateMachineArn", "VideoTopicArn", "BatchOperationsRoleArn", "IngestBatchFunctionArn",
}


def test_cdk_json_settings_are_the_defaults():
    # GIVEN cdk.json's settings
    context = cdk_app.cdk_json_context()
    # WHEN they are parsed
    settings = PipelineSettings.from_mapping(context["settings"])
    # THEN they are exactly the defaults, naming every setting (so cdk.json documents them all)
    assert settings == PipelineSettings()
    assert set(context["settings"]) == {f.name for f in dataclasses.fields(PipelineSettings)}
    assert context["cli-telemetry"] is False


def test_cdk_json_cli_config():
    # GIVEN cdk.json
    config = json.loads(cdk_app.CDK_JSON.read_text())
    # WHEN / THEN notices are off and the app is this file
    assert config["notices"] is False
    assert "cdk_app.py" in config["app"]


def test_settings_context_override_per_setting():
    # GIVEN cdk.json's settings and one -c override
    app = cdk.App(context={**cdk_app.cdk_json_context(), "image_batch_size": "5", "video_operations": "labels"})
    # WHEN the settings are read
    settings = settings_from_context(app.node)
    # THEN the override wins and is typed
    assert settings.image_batch_size == 5
    assert settings.video_operations == ("labels",)
    assert settings.image_max_concurrency == PipelineSettings().image_max_concurrency


def test_settings_context_turns_result_reuse_off():
    # GIVEN reuse on by default, and -c reuse_results=false (a string, as the CLI passes it)
    assert PipelineSettings().reuse_results is True
    app = cdk.App(context={**cdk_app.cdk_json_context(), "reuse_results": "false"})
    # WHEN / THEN the setting is read as a boolean, and reaches the functions' settings
    settings = settings_from_context(app.node)
    assert settings.reuse_results is False
    assert json.loads(settings.to_json())["reuse_results"] is False


def test_settings_context_whole_settings_as_json():
    # GIVEN -c settings='{...}' (a string, as the CLI passes it)
    app = cdk.App(context={"settings": json.dumps({"max_labels": 12})})
    # WHEN / THEN it is parsed as the settings
    assert settings_from_context(app.node).max_labels == 12


@pytest.mark.parametrize(("name", "value"), [("image_batch_size", "11"), ("log_retention_days", "8"),
                                             ("video_operations", "labels,ppe"), ("image_max_concurrency", "many"),
                                             ("reuse_results", "maybe"), ("video_slot_heartbeat_seconds", "120")])
def test_settings_context_bad_value_names_setting(name, value):
    # GIVEN a bad value for one setting
    app = cdk.App(context={name: value})
    # WHEN / THEN reading the settings fails, naming that setting
    with pytest.raises(SettingsError) as error:
        settings_from_context(app.node)
    assert error.value.setting == name
    assert name in str(error.value)


def test_cdk_app_bad_setting_exits_with_one_line():
    # GIVEN a bad -c override passed to cdk_app.py directly
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("CDK_CONTEXT_JSON", None)
    # WHEN the app runs
    result = subprocess.run([sys.executable, str(cdk_app.CDK_JSON.with_name("cdk_app.py")), "-c", "image_batch_size=0"],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    # THEN it stops with status 1 and a single line naming the setting, no traceback
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Invalid setting:") and "image_batch_size" in lines[0]
    assert result.stdout == ""


def test_cdk_app_person_tracking_stops_synth_naming_the_discontinuation():
    # GIVEN video_operations asking for person_tracking, which AWS discontinued
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("CDK_CONTEXT_JSON", None)
    # WHEN the app runs
    result = subprocess.run([sys.executable, str(cdk_app.CDK_JSON.with_name("cdk_app.py")), "-c",
                             "video_operations=labels,person_tracking"],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    # THEN synth stops with one line naming the setting, the discontinuation and what to use instead
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Invalid setting:") and "video_operations" in line and "person_tracking" in line
    assert "discontinued" in line and "2025-10-31" in line
    assert "'labels'" in line and "StartLabelDetection" in line and "'faces'" in line
    # AND person_tracking is gone from the catalogue, so nothing can start it
    from rekpipe_shared.operations import CATALOGUE, VIDEO_OPERATIONS

    assert "person_tracking" not in CATALOGUE and "person_tracking" not in VIDEO_OPERATIONS


def test_outputs_name_everything_the_cli_needs(template):
    # GIVEN / WHEN the stack's outputs
    outputs = template["Outputs"]
    # THEN every name the CLI needs is there, under a stable (unhashed) ID
    assert set(outputs) >= CLI_OUTPUTS
    assert outputs["ManifestBucketName"]["Value"] == outputs["InventoryBucketName"]["Value"]


def test_every_app_carries_cdk_json_feature_flags(tmp_path):
    # GIVEN cdk.json's feature flags
    flags = {k: v for k, v in cdk_app.cdk_json_context().items() if k.startswith("@aws-cdk")}
    assert len(flags) > 50
    # WHEN the app is built the one way there is (the CLI, the tests and the runtime all use it)
    stack = cdk_app.build(cdk_app.new_app(outdir=tmp_path, bundling=False), checks=False,
                          settings=PipelineSettings())
    # THEN the stack sees every flag with cdk.json's value
    assert {flag: stack.node.try_get_context(flag) for flag in flags} == flags


def test_embedded_runtime_synthesizes_the_template_cdk_app_produces(synth, tmp_path):
    # GIVEN the template the embedded runtime deploys (its own settings object, no bootstrap rule)
    from rekpipe.emulator.deploy import synthesize

    outdir = synthesize(tmp_path, settings=PipelineSettings())
    emulated = json.loads((outdir / f"{cdk_app.STACK_ID}.template.json").read_text())
    # WHEN the bootstrap version check, which only a real CloudFormation evaluates, is set aside
    produced = dict(synth.json)
    for template in (emulated, produced):
        for section, name in (("Rules", "CheckBootstrapVersion"), ("Parameters", "BootstrapVersion")):
            rest = {k: v for k, v in template.get(section, {}).items() if k != name}
            template.pop(section, None)
            if rest:
                template[section] = rest
    # THEN it is the template cdk_app.py produces (code and ASL may be edited between the two syntheses)
    assert _without_sources(emulated) == _without_sources(produced)


def _without_sources(template):
    text = json.dumps(template, sort_keys=True)
    text = re.sub(r'"S3Key": "[0-9a-f]{64}\.zip"', '"S3Key": "<asset>"', text)
    text = re.sub(r'"DefinitionString": "(?:[^"\\]|\\.)*"', '"DefinitionString": "<asl>"', text)
    return json.loads(text)
