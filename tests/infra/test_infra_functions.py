"""Every function: runtime, layer, tracing, logs and the shared environment."""

from __future__ import annotations

import ast
import json

from rekpipe_shared import schema
from rekpipe_shared.schema import METRICS_NAMESPACE, PIPELINE_SETTINGS_ENV, SERVICE_NAME_ENV
from stack.paths import function_dir

from .env_reads import env_names_read_by
from .template_queries import getatt_id, pipeline_functions, resources

EXPECTED_FUNCTIONS = {
    "ingest_s3", "ingest_batch", "route_task", "analyze_image", "start_video_workflow", "collect_results",
    "record_outcome", "job_completed", "record_ended_execution", "find_stuck_tasks", "slot_dispatcher",
}
ENV_NAMES = {value for name, value in vars(schema).items() if name.endswith("_ENV")}


def _functions(template):
    return {name: template["Resources"][lid]["Properties"] for name, lid in pipeline_functions(template).items()}


def test_functions_all_present_with_a_handler(template):
    # GIVEN the pipeline functions of the template
    functions = _functions(template)
    # WHEN / THEN they are exactly the expected ones, each with lambdas/<name>/app.py defining handler()
    assert set(functions) == EXPECTED_FUNCTIONS
    for name in functions:
        source = (function_dir(name) / "app.py").read_text()
        defined = {node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
        assert "handler" in defined, name


def test_functions_runtime_layer_tracing_architecture(template):
    # GIVEN the shared layer
    (layer_id,) = resources(template, "AWS::Lambda::LayerVersion")
    for name, props in _functions(template).items():
        # WHEN / THEN every function runs Python 3.14 on x86_64 (the layer's platform), traced, with the layer
        assert props["Runtime"] == "python3.14", name
        assert props["Architectures"] == ["x86_64"], name
        assert props["Handler"] == "app.handler", name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["Layers"] == [{"Ref": layer_id}], name
        assert "ReservedConcurrentExecutions" not in props, name


def test_functions_every_lambda_runs_python314(template):
    # GIVEN every Lambda function of the template, CDK's own bucket-notifications handler included
    functions = resources(template, "AWS::Lambda::Function")
    # WHEN / THEN all run the newest Python runtime
    assert len(functions) == len(EXPECTED_FUNCTIONS) + 1
    assert {f["Properties"]["Runtime"] for f in functions.values()} == {"python3.14"}


def test_functions_log_to_encrypted_retention_limited_groups(synth, template):
    # GIVEN every function's log group
    groups = resources(template, "AWS::Logs::LogGroup")
    for name, props in _functions(template).items():
        group = groups[props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        # WHEN / THEN it keeps logs for the configured days, encrypted with the stack's key
        assert group["RetentionInDays"] == synth.settings.log_retention_days, name
        assert "KmsKeyId" in group, name


def test_functions_log_retention_follows_setting(synth_with):
    # GIVEN log_retention_days=7
    variant = synth_with(log_retention_days="7")
    # WHEN / THEN every log group, the state machine's included, keeps seven days
    retentions = {g["Properties"]["RetentionInDays"] for g in resources(variant.json, "AWS::Logs::LogGroup").values()}
    assert retentions == {7}


EVERY_FUNCTION = {"POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
"""Read by Powertools in every handler."""


def test_functions_each_get_only_the_variables_their_code_reads(synth, template):
    # GIVEN every function's environment and the schema names its handler's code refers to (its app.py and every
    # layer module it imports, transitively)
    environments = {name: props["Environment"]["Variables"] for name, props in _functions(template).items()}
    for name, variables in environments.items():
        read = env_names_read_by(name)
        # WHEN the service name and Powertools' own variables are set aside
        own = set(variables) - {SERVICE_NAME_ENV} - EVERY_FUNCTION
        # THEN the function has exactly the variables its code can read: none missing, none extra
        assert own == read, (name, sorted(own - read), sorted(read - own))
        assert variables[SERVICE_NAME_ENV] == name
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
        assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
    # AND every variable schema.py names is read by some function, and one variable has one value everywhere
    assert set().union(*(set(v) for v in environments.values())) >= ENV_NAMES
    values: dict[str, set[str]] = {}
    for variables in environments.values():
        for key, value in variables.items():
            if key != SERVICE_NAME_ENV:
                values.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
    assert {key for key, seen in values.items() if len(seen) > 1} == set()
    assert environments["ingest_s3"][PIPELINE_SETTINGS_ENV] == synth.settings.to_json()


def test_functions_environment_points_at_stack_resources(template):
    # GIVEN each function's environment
    functions = _functions(template)
    outputs = template["Outputs"]
    # WHEN / THEN each resource variable, wherever it is set, is the same value the CLI reads from the outputs
    for variable, output in (("TASK_TABLE_NAME", "TaskTableName"), ("SEMAPHORE_TABLE_NAME", "SemaphoreTableName"),
                             ("OUTPUT_BUCKET", "OutputBucketName"), ("SLOT_QUEUE_URL", "SlotQueueUrl"),
                             ("RATE_LIMIT_TABLE_NAME", "RateLimitTableName"),
                             ("RESULT_INDEX_TABLE_NAME", "ResultIndexTableName"),
                             ("IMAGE_QUEUE_URL", "ImageQueueUrl"), ("VIDEO_QUEUE_URL", "VideoQueueUrl"),
                             ("VIDEO_TOPIC_ARN", "VideoTopicArn"), ("REKOGNITION_ROLE_ARN", "RekognitionRoleArn")):
        found = [props["Environment"]["Variables"][variable] for props in functions.values()
                 if variable in props["Environment"]["Variables"]]
        assert found, variable
        assert all(value == outputs[output]["Value"] for value in found), variable


def test_functions_assets_exclude_bytecode(synth, template):
    # GIVEN the staged function assets of the cloud assembly
    for name, props in _functions(template).items():
        asset = synth.outdir / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
        # WHEN / THEN no __pycache__ or .pyc travels with the code
        assert asset.is_dir(), name
        assert not [p for p in asset.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"], name


def test_functions_no_managed_policies(template):
    # GIVEN every pipeline function role
    roles = resources(template, "AWS::IAM::Role")
    for name, props in _functions(template).items():
        role = roles[getatt_id(props["Role"])]["Properties"]
        # WHEN / THEN it trusts Lambda only and carries no AWS managed policy
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert "ManagedPolicyArns" not in role, name
