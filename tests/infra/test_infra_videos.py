"""The video state machine, the Rekognition topic and the slot clean-up."""

from __future__ import annotations

from stack.paths import VIDEO_ASL_PATH
from stack.videos import asl_substitution_names

from .template_queries import getatt_id, mentions, pipeline_functions, resources

LAMBDA_SUBSTITUTIONS = {
    "LambdaCollectResultsFunction": "collect_results",
    "LambdaRecordOutcomeFunction": "record_outcome",
}


def _machine(template):
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    return machine["Properties"]


def test_state_machine_standard_logged_traced(synth, template):
    # GIVEN the video state machine
    props = _machine(template)
    # WHEN / THEN it is a Standard machine, traced, logging everything to an encrypted, retention-limited group
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    (destination,) = props["LoggingConfiguration"]["Destinations"]
    group = template["Resources"][getatt_id(destination["CloudWatchLogsLogGroup"]["LogGroupArn"])]["Properties"]
    assert "KmsKeyId" in group
    assert group["RetentionInDays"] == synth.settings.log_retention_days
    assert "DefinitionString" in props and "DefinitionS3Location" not in props  # inline: cfn-lint sees the ASL


def test_state_machine_substitutes_every_placeholder(template):
    # GIVEN the ASL file as it is now (its author may add placeholders at any time)
    expected = asl_substitution_names(VIDEO_ASL_PATH.read_text())
    # WHEN the substitutions the stack passes are read
    passed = set(_machine(template)["DefinitionSubstitutions"])
    # THEN every ${Name} in the file has one; a missing one would deploy a broken definition
    missing = sorted(expected - passed)
    assert not missing, (f"{VIDEO_ASL_PATH.name} uses ${{{', '.join(missing)}}} but stack/videos.py does not "
                         "pass it in definition_substitutions")


def test_state_machine_substitution_values(synth, template):
    # GIVEN the settings and the functions
    substitutions = _machine(template)["DefinitionSubstitutions"]
    functions = pipeline_functions(template)
    settings = synth.settings
    # WHEN / THEN the Lambda placeholders are those functions' ARNs and the rest come from the settings
    for key, name in LAMBDA_SUBSTITUTIONS.items():
        assert substitutions[key] == {"Fn::GetAtt": [functions[name], "Arn"]}, key
    from rekpipe_shared.schema import SLOT_MESSAGE_GROUP

    assert substitutions["SlotMessageGroup"] == SLOT_MESSAGE_GROUP
    assert substitutions["SlotHeartbeatSeconds"] == str(settings.video_slot_heartbeat_seconds) == "900"
    assert substitutions["RunJobTimeoutSeconds"] == str(
        settings.video_slot_wait_seconds + settings.video_job_wait_seconds + settings.video_slot_heartbeat_seconds)
    assert substitutions["SlotQueueUrl"]["Ref"] in resources(template, "AWS::SQS::Queue")
    assert substitutions["GetRetrySeconds"] == str(settings.video_get_retry_seconds)
    assert substitutions["MapMaxConcurrency"] == str(settings.video_max_concurrency)


def test_state_machine_arn_in_environment_is_this_machine(template):
    # GIVEN the ARN the functions get (built from the name, to avoid a dependency cycle)
    arn = template["Resources"][pipeline_functions(template)["start_video_workflow"]]["Properties"][
        "Environment"]["Variables"]["VIDEO_STATE_MACHINE_ARN"]
    # WHEN / THEN it names this state machine
    assert mentions(arn, f":stateMachine:{_machine(template)['StateMachineName']}")


def test_video_topic_only_rekognition_publishes(synth, template):
    # GIVEN the topic and the Rekognition role
    topic_id = template["Outputs"]["VideoTopicArn"]["Value"]["Ref"]
    role_arn = template["Outputs"]["RekognitionRoleArn"]["Value"]
    # WHEN / THEN the topic is encrypted with a customer-managed key the role may use
    key_id = getatt_id(template["Resources"][topic_id]["Properties"]["KmsMasterKeyId"])
    key_policy = template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"AWS": role_arn} and {"kms:GenerateDataKey", "kms:Decrypt"} <= set(s["Action"])
               for s in key_policy)
    # AND its policy denies non-TLS publishing, allows the role and denies every other publisher
    (policy,) = [p for p in resources(template, "AWS::SNS::TopicPolicy").values() if {"Ref": topic_id} in p["Properties"]["Topics"]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"AWS": role_arn} and allow["Action"] == "sns:Publish"
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    assert any(s["Effect"] == "Deny" and s["Action"] == "sns:Publish"
               and s.get("Condition") == {"ArnNotEquals": {"aws:PrincipalArn": role_arn}} for s in statements)


def test_job_completed_queue_gets_sns_envelope(synth, template):
    # GIVEN the topic and job_completed's queue
    topic_id = template["Outputs"]["VideoTopicArn"]["Value"]["Ref"]
    queue_id = template["Outputs"]["JobCompletedQueueUrl"]["Value"]["Ref"]
    # WHEN / THEN the queue is subscribed without raw delivery, so the SNS envelope arrives
    synth.template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "sqs", "TopicArn": {"Ref": topic_id}, "Endpoint": {"Fn::GetAtt": [queue_id, "Arn"]},
        "RawMessageDelivery": False,
    })


def test_ended_execution_rule_matches_this_machine(synth, template):
    # GIVEN the state machine and record_ended_execution
    name = _machine(template)["StateMachineName"]
    function = pipeline_functions(template)["record_ended_execution"]
    # WHEN the rules targeting it are read
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
             if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}]
    # THEN one rule sends this machine's FAILED / TIMED_OUT / ABORTED status changes, with a DLQ
    (rule,) = rules
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    (arn,) = pattern["detail"]["stateMachineArn"]
    assert mentions(arn, f":stateMachine:{name}")
    assert "DeadLetterConfig" in rule["Targets"][0]


def test_no_scheduled_lambda_only_the_slot_tick(template):
    # GIVEN every schedule of the stack
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
             if "ScheduleExpression" in r["Properties"]]
    schedules = [r["Properties"] for r in resources(template, "AWS::Scheduler::Schedule").values()]
    # WHEN / THEN the stuck-task finder's rule and the slot tick (to the slot FIFO queue, every minute) are all
    assert [r["ScheduleExpression"] for r in schedules] == ["rate(1 minute)"]
    assert schedules[0]["Target"]["SqsParameters"] == {"MessageGroupId": "video-slots"}
    functions = pipeline_functions(template)
    assert [getatt_id(r["Targets"][0]["Arn"]) for r in rules] == [functions["find_stuck_tasks"]]

