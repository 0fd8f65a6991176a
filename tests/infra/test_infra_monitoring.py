"""Alarms on every DLQ, failed executions and image errors, notifying an encrypted TLS-only topic."""

from __future__ import annotations

from .template_queries import as_list, getatt_id, pipeline_functions, resources


def _dead_letter_queues(template):
    """Every queue that holds what the pipeline gave up on, found from what points at it."""
    found = set()
    for queue in resources(template, "AWS::SQS::Queue").values():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            found.add(getatt_id(redrive["deadLetterTargetArn"]))
    for function in resources(template, "AWS::Lambda::Function").values():
        if "DeadLetterConfig" in function["Properties"]:
            found.add(getatt_id(function["Properties"]["DeadLetterConfig"]["TargetArn"]))
    for mapping in resources(template, "AWS::Lambda::EventSourceMapping").values():
        destination = mapping["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination:
            found.add(getatt_id(destination))
    for rule in resources(template, "AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            if "DeadLetterConfig" in target:
                found.add(getatt_id(target["DeadLetterConfig"]["Arn"]))
    return found


def _alarms(template):
    return list(resources(template, "AWS::CloudWatch::Alarm").values())


def test_every_dlq_has_an_alarm(template):
    # GIVEN every dead-letter queue and the alarm topic
    dlqs = _dead_letter_queues(template)
    topic = template["Outputs"]["AlarmTopicArn"]["Value"]
    assert len(dlqs) == 7
    for dlq in dlqs:
        # WHEN the alarms on its visible messages are found
        alarms = [a["Properties"] for a in _alarms(template)
                  if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
                  and a["Properties"]["Dimensions"] == [{"Name": "QueueName",
                                                         "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]]
        # THEN one fires on the first message and notifies the alarm topic
        (alarm,) = alarms
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold", dlq
        assert alarm["AlarmActions"] == [topic], dlq


def test_state_machine_failures_and_image_errors_alarm(template):
    # GIVEN the state machine and analyze_image
    (machine_id,) = resources(template, "AWS::StepFunctions::StateMachine")
    function = pipeline_functions(template)["analyze_image"]
    metrics = {(a["Properties"]["MetricName"], str(a["Properties"]["Dimensions"])) for a in _alarms(template)}
    # WHEN / THEN failed executions and function errors are alarmed
    assert ("ExecutionsFailed", str([{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}])) in metrics
    assert ("Errors", str([{"Name": "FunctionName", "Value": {"Ref": function}}])) in metrics


def test_alarm_topic_encrypted_tls_only_and_open_to_cloudwatch(template):
    # GIVEN the alarm topic
    topic_id = template["Outputs"]["AlarmTopicArn"]["Value"]["Ref"]
    key_id = getatt_id(template["Resources"][topic_id]["Properties"]["KmsMasterKeyId"])
    (policy,) = [p for p in resources(template, "AWS::SNS::TopicPolicy").values()
                 if {"Ref": topic_id} in p["Properties"]["Topics"]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # WHEN / THEN it is KMS-encrypted with a key CloudWatch may use, TLS-only, and CloudWatch alarms may publish
    key = template["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in key["KeyPolicy"]["Statement"])
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert "sns:Publish" in as_list(allow["Action"])


def test_dashboard_charts_powertools_metrics(template):
    # GIVEN / WHEN the dashboard body is read
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    # THEN it charts the pipeline's own metrics namespace
    assert "RekognitionPipeline" in str(dashboard["Properties"]["DashboardBody"])


def test_stuck_tasks_alarm_per_status_from_a_scheduled_finder(template):
    # GIVEN the stuck-task finder and the alarm topic
    topic = template["Outputs"]["AlarmTopicArn"]["Value"]
    function = pipeline_functions(template)["find_stuck_tasks"]
    # WHEN the alarms on its metrics and the rule that runs it are found
    alarms = {a["Properties"]["MetricName"]: a["Properties"] for a in _alarms(template)
              if a["Properties"].get("Namespace") == "RekognitionPipeline"}
    schedules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
                 if any(getatt_id(t["Arn"]) == function for t in r["Properties"]["Targets"])]
    # THEN each non-terminal status has an alarm that fires on the first stuck task and names the recovery
    for name in ("StuckPendingTasks", "StuckQueuedTasks", "StuckInProgressTasks"):
        alarm = alarms[name]
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "find_stuck_tasks"}]
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [topic]
        assert "rekpipe redrive --stuck" in alarm["AlarmDescription"]
    # AND the finder runs every five minutes
    assert [s["ScheduleExpression"] for s in schedules] == ["rate(5 minutes)"]
