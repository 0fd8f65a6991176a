"""Queues, event sources and ingestion wiring."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from rekpipe_shared.routing import STREAM_FILTER_PATTERNS

from .template_queries import function_props, getatt_id, pipeline_functions, queue_consumers, resources

VISIBILITY_FACTOR = 6
EXPECTED_MAX_RECEIVE = {"analyze_image": 10, "start_video_workflow": 5, "job_completed": 5, "slot_dispatcher": 5}


def test_work_queues_outlast_their_consumer_and_have_dlq(template):
    # GIVEN every queue that a pipeline function consumes
    queues = resources(template, "AWS::SQS::Queue")
    consumers = queue_consumers(template)
    assert set(consumers.values()) == set(EXPECTED_MAX_RECEIVE)
    for queue_id, consumer in consumers.items():
        props = queues[queue_id]["Properties"]
        # WHEN its consumer's timeout is read from the template
        timeout = function_props(template, consumer)["Timeout"]
        # THEN the visibility timeout is at least six times it, and a DLQ takes messages after N receives
        assert props["VisibilityTimeout"] >= VISIBILITY_FACTOR * timeout, consumer
        redrive = props["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == EXPECTED_MAX_RECEIVE[consumer], consumer
        assert getatt_id(redrive["deadLetterTargetArn"]) in queues


def test_queues_encrypted_and_tls_only(template):
    # GIVEN every queue and every queue policy
    queues = resources(template, "AWS::SQS::Queue")
    policies = resources(template, "AWS::SQS::QueuePolicy").values()
    for queue_id, queue in queues.items():
        # WHEN / THEN it is encrypted and its policy denies requests without TLS
        assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get("KmsMasterKeyId"), queue_id
        policy = next(p for p in policies if {"Ref": queue_id} in p["Properties"]["Queues"])
        assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in policy["Properties"]["PolicyDocument"]["Statement"]), queue_id


def test_image_event_source_uses_settings(synth, synth_with):
    # GIVEN the default settings and overridden ones
    variant = synth_with(image_batch_size="5", image_max_concurrency="50")
    for built, batch, concurrency in ((synth, synth.settings.image_batch_size, synth.settings.image_max_concurrency),
                                      (variant, 5, 50)):
        # WHEN / THEN analyze_image's SQS mapping takes its batch size and maximum concurrency from them
        built.template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
            "FunctionName": {"Ref": pipeline_functions(built.json)["analyze_image"]},
            "BatchSize": batch,
            "ScalingConfig": {"MaximumConcurrency": concurrency},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        })


def test_route_task_stream_mapping(synth, template):
    # GIVEN route_task and the route failure queue
    route_task = pipeline_functions(template)["route_task"]
    failures = template["Outputs"]["RouteTaskFailuresUrl"]["Value"]["Ref"]
    # WHEN / THEN it reads the task table's stream in batches of 100, filtered to new tasks and status
    # changes, never bisecting (the exactly-once counts need whole batches), reporting failed items,
    # retrying 10 times and sending what still fails to its on-failure queue
    synth.template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionName": {"Ref": route_task},
        "EventSourceArn": {"Fn::GetAtt": [Match.any_value(), "StreamArn"]},
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 5,
        "BisectBatchOnFunctionError": False,
        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern, separators=(",", ":"))} for pattern in STREAM_FILTER_PATTERNS]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "MaximumRetryAttempts": 10,
        "MaximumRecordAgeInSeconds": Match.any_value(),
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [failures, "Arn"]}}},
    })


def test_ingest_s3_retries_twice_then_dead_letters(synth, template):
    # GIVEN ingest_s3 and its DLQ
    ingest_s3 = pipeline_functions(template)["ingest_s3"]
    dlq = template["Outputs"]["IngestS3DlqUrl"]["Value"]["Ref"]
    # WHEN / THEN asynchronous invocations are retried twice, then kept in the DLQ
    synth.template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "FunctionName": {"Ref": ingest_s3}, "MaximumRetryAttempts": 2,
    })
    assert function_props(template, "ingest_s3")["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dlq, "Arn"]}}


def test_content_bucket_notifies_ingest_s3_of_every_created_object(template):
    # GIVEN the bucket notification custom resource
    (notifications,) = resources(template, "Custom::S3BucketNotifications").values()
    props = notifications["Properties"]
    # WHEN / THEN the content bucket sends every ObjectCreated (no case-sensitive suffix filter) to ingest_s3
    assert props["BucketName"] == template["Outputs"]["ContentBucketName"]["Value"]
    (config,) = props["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert "Filter" not in config
    assert getatt_id(config["LambdaFunctionArn"]) == pipeline_functions(template)["ingest_s3"]
    assert "EventBridgeConfiguration" not in props["NotificationConfiguration"]


def test_slot_queue_is_fifo_with_content_dedup_and_a_fifo_dlq(template):
    # GIVEN the queue slot_dispatcher consumes
    queues = resources(template, "AWS::SQS::Queue")
    (queue_id,) = [q for q, consumer in queue_consumers(template).items() if consumer == "slot_dispatcher"]
    props = queues[queue_id]["Properties"]
    # WHEN / THEN it is FIFO with content-based deduplication (EventBridge and Scheduler targets need it),
    # encrypted, and its DLQ is FIFO too (a FIFO queue's DLQ must be FIFO)
    assert props["FifoQueue"] is True and props["ContentBasedDeduplication"] is True
    assert props["SqsManagedSseEnabled"] is True
    dlq_id = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert queues[dlq_id]["Properties"]["FifoQueue"] is True
    assert props["RedrivePolicy"]["maxReceiveCount"] == 5


def test_slot_tick_schedule_and_cancel_rule_target_the_slot_group(template):
    # GIVEN the schedule and the rule that feed the slot queue
    (schedule,) = resources(template, "AWS::Scheduler::Schedule").values()
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
             if any("SqsParameters" in t for t in r["Properties"].get("Targets", []))]
    # WHEN / THEN both send to the one message group, and the rule listens for ended video executions
    assert schedule["Properties"]["Target"]["SqsParameters"] == {"MessageGroupId": "video-slots"}
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    (rule,) = rules
    assert rule["Targets"][0]["SqsParameters"] == {"MessageGroupId": "video-slots"}
    assert set(rule["EventPattern"]["detail"]["status"]) == {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
