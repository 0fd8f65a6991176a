"""Least privilege: Rekognition actions from the catalogue, no service wildcards, ``*`` only where AWS requires it."""

from __future__ import annotations

from rekpipe_shared.operations import CATALOGUE, iam_actions
from stack.permissions import SERVICE_QUOTAS_ACTIONS

from .template_queries import (
    actions_of,
    as_list,
    function_statements,
    getatt_id,
    mentions,
    pipeline_functions,
    resources,
    resources_for,
    role_statements,
)

VENDED_LOGS_ACTIONS = {
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                "xray:GetSamplingTargets"}
SCOPABLE_REKOGNITION = {
    f"rekognition:{api}" for op in CATALOGUE.values() if op.requires for api in (op.image_api, op.video_start_api) if api
}
REKOGNITION_WITHOUT_RESOURCE_TYPE = {
    f"rekognition:{api}"
    for op in CATALOGUE.values()
    for api in (op.image_api, op.video_start_api, op.video_get_api)
    if api
} - SCOPABLE_REKOGNITION
STAR_ALLOWED = (XRAY_ACTIONS | VENDED_LOGS_ACTIONS | {"dynamodb:ListStreams"} | REKOGNITION_WITHOUT_RESOURCE_TYPE
                | set(SERVICE_QUOTAS_ACTIONS))
"""Actions with no resource-level permissions, for which AWS requires ``Resource: "*"``:
X-Ray tracing (every function, the state machine), Step Functions' vended log delivery, DynamoDB
ListStreams (stream event source), Rekognition's Detect*/Start*/Get* APIs that have no resource type,
and Service Quotas' List* reads (quota discovery)."""
TASK_RESPONDERS = {"slot_dispatcher"}
"""The single writer of the slots is the only function that resumes, fails or heartbeats RunJob's tokens."""
EXECUTION_CHECKERS = {"find_stuck_tasks"}
"""Functions that ask whether an execution still runs: the stuck-task finder."""
STATE_MACHINE_TASKS = {"collect_results", "record_outcome"}
"""The Lambda tasks of the video ASL; RunJob sends to the slot queue instead of invoking a function."""


def _all_statements(template):
    return [s for p in resources(template, "AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_policies_rekognition_actions_come_from_catalogue(synth, template):
    # GIVEN the configured analyses
    images, videos = synth.settings.all_image_operations, synth.settings.video_operations
    starts = {a for a in iam_actions(videos, images=False, videos=True) if a.startswith("rekognition:Start")}
    gets = set(iam_actions(videos, images=False, videos=True)) - starts
    # WHEN each function's Rekognition actions are read
    # THEN they are exactly the catalogue's, listed one by one
    assert actions_of(function_statements(template, "analyze_image"), "rekognition:") == set(
        iam_actions(images, images=True, videos=False))
    assert actions_of(function_statements(template, "slot_dispatcher"), "rekognition:") == starts | gets
    for name in ("collect_results", "job_completed"):
        assert actions_of(function_statements(template, name), "rekognition:") == gets, name
    for name in ("ingest_s3", "ingest_batch", "route_task", "record_outcome", "record_ended_execution"):
        assert actions_of(function_statements(template, name), "rekognition:") == set(), name


def test_policies_no_service_wildcards(template):
    # GIVEN every IAM policy statement
    for statement in _all_statements(template):
        # WHEN / THEN no allowed action is a wildcard over a service (rekognition:*, lambda:*, s3:*...)
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), action
            assert not action.startswith(("rekognition:", "lambda:")) or "*" not in action, action


def test_policies_resource_star_only_where_aws_requires_it(template):
    # GIVEN every allowed statement on Resource "*"
    star = [s for s in _all_statements(template) if s["Effect"] == "Allow" and "*" in as_list(s["Resource"])]
    # WHEN / THEN each action in them is one without resource-level permissions (see STAR_ALLOWED)
    assert star
    for statement in star:
        assert set(as_list(statement["Action"])) <= STAR_ALLOWED, statement["Action"]


def test_rekognition_collection_and_project_version_apis_are_scoped(synth_with):
    # GIVEN face search and custom labels, with their collection and project version
    arn = "arn:aws:rekognition:us-east-1:123456789012:project/shoes/version/v1/1700000000000"
    variant = synth_with(image_operations="labels,face_search,custom_labels", video_operations="labels,face_search",
                         face_collection_id="staff", custom_labels_project_version_arn=arn)
    image_statements = function_statements(variant.json, "analyze_image")
    start_statements = function_statements(variant.json, "slot_dispatcher")
    # WHEN / THEN those APIs are allowed on that collection / project version, never on "*"
    for statements, action in ((image_statements, "rekognition:SearchFacesByImage"),
                               (start_statements, "rekognition:StartFaceSearch")):
        (resource,) = resources_for(statements, action)
        assert mentions(resource, ":collection/staff"), action
    assert resources_for(image_statements, "rekognition:DetectCustomLabels") == [arn]
    assert "*" in resources_for(start_statements, "rekognition:GetFaceSearch")  # Get* has no resource type


def test_pass_role_only_rekognition_role_only_to_rekognition(template):
    # GIVEN every statement allowing iam:PassRole
    passing = [s for s in _all_statements(template) if "iam:PassRole" in as_list(s["Action"])]
    rekognition_role = getatt_id(template["Outputs"]["RekognitionRoleArn"]["Value"])
    # WHEN / THEN only the one that calls Start* (slot_dispatcher) has one, for the
    # Rekognition role, passed to Rekognition only
    starters = [s for s in function_statements(template, "slot_dispatcher") if "iam:PassRole" in as_list(s["Action"])]
    assert sorted(map(str, passing)) == sorted(map(str, starters))
    assert len(passing) == 1
    for statement in passing:
        assert getatt_id(statement["Resource"]) == rekognition_role
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "rekognition.amazonaws.com"}}


def test_task_responses_granted_to_exactly_the_responders(template):
    # GIVEN the functions and the state machine's name
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    name_ = machine["Properties"]["StateMachineName"]
    # WHEN those allowed to call SendTaskSuccess are collected
    responders = {name for name in pipeline_functions(template)
                  if "states:SendTaskSuccess" in actions_of(function_statements(template, name))}
    # THEN they are exactly those that resume task tokens, and only on this state machine
    assert responders == TASK_RESPONDERS
    for name in responders:
        for resource in resources_for(function_statements(template, name), "states:SendTaskSuccess"):
            assert mentions(resource, f":stateMachine:{name_}"), name


def test_state_machine_invokes_exactly_its_functions(template):
    # GIVEN the state machine's role
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    statements = role_statements(template, getatt_id(machine["Properties"]["RoleArn"]))
    # WHEN the functions it may invoke are read
    invoked = {getatt_id(r) or getatt_id(r["Fn::Join"][1][0]) for r in resources_for(statements, "lambda:InvokeFunction")}
    # THEN they are the two its definition names, and nothing else
    functions = pipeline_functions(template)
    assert invoked == {functions[name] for name in STATE_MACHINE_TASKS}
    assert actions_of(statements, "lambda:") == {"lambda:InvokeFunction"}
    # AND its one SQS action is RunJob's SendMessage, on the slot FIFO queue only
    assert actions_of(statements, "sqs:") == {"sqs:SendMessage"}
    (queue,) = resources_for(statements, "sqs:SendMessage")
    assert getatt_id(queue) in resources(template, "AWS::SQS::Queue")
    assert template["Resources"][getatt_id(queue)]["Properties"].get("FifoQueue") is True


def test_only_the_stuck_task_finder_describes_executions(template):
    # GIVEN the functions allowed to describe executions
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    describers = {name for name in pipeline_functions(template)
                  if "states:DescribeExecution" in actions_of(function_statements(template, name))}
    # WHEN / THEN it is the stuck-task finder alone, on this machine's executions only
    assert describers == EXECUTION_CHECKERS
    for name in describers:
        (resource,) = resources_for(function_statements(template, name), "states:DescribeExecution")
        assert mentions(resource, f":execution:{machine['Properties']['StateMachineName']}:"), name
    # AND the workflow starter may only start executions
    start = function_statements(template, "start_video_workflow")
    assert actions_of(start, "states:") == {"states:StartExecution"}


def test_rekognition_role_trust_and_permissions(template):
    # GIVEN the role Rekognition publishes notices with
    role_id = getatt_id(template["Outputs"]["RekognitionRoleArn"]["Value"])
    role = template["Resources"][role_id]["Properties"]
    topic_id = template["Outputs"]["VideoTopicArn"]["Value"]["Ref"]
    # WHEN its trust and permissions are read
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    statements = role_statements(template, role_id)
    # THEN only Rekognition of this account assumes it, and it may only publish to the topic (with its key)
    assert trust["Principal"] == {"Service": "rekognition.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert actions_of(statements) == {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
    assert resources_for(statements, "sns:Publish") == [{"Ref": topic_id}]
    key_id = template["Resources"][topic_id]["Properties"]["KmsMasterKeyId"]
    assert resources_for(statements, "kms:Decrypt") == [key_id]


def test_batch_operations_role(template):
    # GIVEN the Batch Operations role
    role_id = getatt_id(template["Outputs"]["BatchOperationsRoleArn"]["Value"])
    role = template["Resources"][role_id]["Properties"]
    statements = role_statements(template, role_id)
    ingest_batch = getatt_id(template["Outputs"]["IngestBatchFunctionArn"]["Value"])
    # WHEN / THEN S3 Batch Operations assumes it to invoke ingest_batch, read manifests and write reports
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "batchoperations.s3.amazonaws.com"}
    assert {getatt_id(r) or getatt_id(r["Fn::Join"][1][0])
            for r in resources_for(statements, "lambda:InvokeFunction")} == {ingest_batch}
    reads = resources_for(statements, "s3:GetObject")
    assert len(reads) == 2 and all(mentions(r, "/manifests/") or mentions(r, "/inventory/") for r in reads)
    (write,) = resources_for(statements, "s3:PutObject")
    assert mentions(write, "/batch-reports/")


def _source(name):
    from stack.paths import function_dir

    return (function_dir(name) / "app.py").read_text()


def _tables(template):
    outputs = template["Outputs"]
    return {key: outputs[output]["Value"]["Ref"] for key, output in
            (("task", "TaskTableName"), ("semaphore", "SemaphoreTableName"),
             ("rate", "RateLimitTableName"), ("index", "ResultIndexTableName"))}


def _table_actions(template, name, table_id):
    statements = function_statements(template, name)
    return {a for s in statements if s["Effect"] == "Allow"
            and any(getatt_id(r) == table_id for r in as_list(s["Resource"]))
            for a in as_list(s["Action"]) if a.startswith("dynamodb:")}


def test_grants_follow_handler_code(template):
    # GIVEN each handler's source (the handlers change in parallel with this stack)
    tables = _tables(template)
    output_bucket = template["Outputs"]["OutputBucketName"]["Value"]["Ref"]
    for name in pipeline_functions(template):
        source = _source(name)
        actions = actions_of(function_statements(template, name))
        # WHEN it builds a client of a table, bucket or service
        # THEN its role has the matching grant (a missing one would only fail in AWS, with AccessDenied)
        if "TaskTable(" in source:
            assert {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"} & _table_actions(
                template, name, tables["task"]), name
        if "ResultIndex(" in source:
            assert _table_actions(template, name, tables["index"]), name
        if "default_limiter(" in source:
            assert "dynamodb:UpdateItem" in _table_actions(template, name, tables["rate"]), name
        if "default_limiter(" in source or "pipeline_quotas(" in source:  # quotas found at run time
            assert set(SERVICE_QUOTAS_ACTIONS) <= actions, name
        if "DynamoDBSlotStore(" in source:
            assert _table_actions(template, name, tables["semaphore"]) >= {"dynamodb:Query", "dynamodb:PutItem"}, name
        if "send_task_success" in source or "send_task_failure" in source:
            assert "states:SendTaskSuccess" in actions and "states:SendTaskFailure" in actions, name
        if "start_execution" in source:
            assert "states:StartExecution" in actions, name
        if "SLOT_QUEUE_URL" in source:
            assert "sqs:SendMessage" in actions, name
        if "OUTPUT_BUCKET" in source:
            assert any(mentions(r, output_bucket) for r in resources_for(function_statements(template, name),
                                                                          "s3:PutObject")), name
        if "head_object" in source:
            assert "s3:GetObject" in actions, name
        if "copy_object" in source or "ResultReuse(" in source:
            assert any(mentions(r, output_bucket) for r in resources_for(function_statements(template, name),
                                                                          "s3:GetObject")), name
        if 'boto3.client("rekognition"' in source:
            assert actions_of(function_statements(template, name), "rekognition:"), name


def test_analyze_image_reads_quotas_and_paces_through_the_rate_limit_table(stack_template):
    # GIVEN the synthesized stack
    statements = function_statements(stack_template, "analyze_image")
    # WHEN / THEN analyze_image may list the Rekognition quotas (no resource type: "*") and update the
    # shared per-second windows of the rate-limit table only
    quota_statements = [s for s in statements if set(as_list(s["Action"])) & set(SERVICE_QUOTAS_ACTIONS)]
    assert quota_statements and all(set(as_list(s["Action"])) <= STAR_ALLOWED for s in quota_statements)
    rate = [s for s in statements if "dynamodb:UpdateItem" in as_list(s["Action"])
            and any("RateLimitTable" in str(r) for r in as_list(s["Resource"]))]
    assert rate


def test_result_index_grants_are_least_privilege(template):
    # GIVEN the result index table
    table = _tables(template)["index"]
    # WHEN each function's actions on it are read
    # THEN only the functions that reuse or index results reach it, each with just what it calls
    expected = {
        "analyze_image": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"},
        "start_video_workflow": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "collect_results": {"dynamodb:PutItem"},
        "record_outcome": {"dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "find_stuck_tasks": {"dynamodb:GetItem"},
    }
    for name in pipeline_functions(template):
        assert _table_actions(template, name, table) == expected.get(name, set()), name
