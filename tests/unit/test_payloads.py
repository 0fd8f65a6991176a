"""Typed payloads (rekpipe_shared.payloads): each reads the shape its sender gives."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from rekpipe_shared.payloads import CollectResultsEvent, JobNotice, RecordOutcomeEvent, WorkMessage
from rekpipe_shared.routing import route_message

NOTICE = {"JobId": "job-1", "Status": "FAILED", "API": "StartLabelDetection", "JobTag": "exec-labels",
          "Timestamp": 1764590000000, "Video": {"S3Bucket": "media", "S3ObjectName": "clip.mp4"}}


def test_work_message_reads_the_routers_message():
    # GIVEN the message route_task sends for run 2 of a task
    body = route_message({"task_id": "t-1", "bucket": "b", "object_key": "k", "media_type": "image"}, run=2)

    # WHEN it is read, THEN its task and run are the ones sent
    message = WorkMessage(json.loads(json.dumps(body)))
    assert (message.task_id, message.run) == ("t-1", 2)


def test_job_notice_from_an_sns_envelope_and_from_raw_delivery():
    # GIVEN the notice as SNS delivers it to SQS, and bare (raw message delivery)
    envelope = {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                "Message": json.dumps(NOTICE)}
    records = [SQSRecord({"body": json.dumps(envelope)}), SQSRecord({"body": json.dumps(NOTICE)})]

    # WHEN each is decoded
    notices = [JobNotice.from_sqs_record(record) for record in records]

    # THEN both give the same notice
    assert [(n.job_id, n.status, n.api, n.job_tag) for n in notices] == [
        ("job-1", "FAILED", "StartLabelDetection", "exec-labels")] * 2


def test_collect_results_event_reads_the_states_payload():
    # GIVEN CollectResults' payload (video_analysis.asl.json), first call
    event = CollectResultsEvent({"task": {"task_id": "t-1", "bucket": "b", "key": "k", "run": 1},
                                 "operation": "labels", "job": {"jobId": "J", "status": "SUCCEEDED"}, "collect": None})

    # THEN the task, the operation and the job are read from it
    assert (event.task_id, event.task["key"], event.operation, event.job_id) == ("t-1", "k", "labels", "J")


def test_record_outcome_event_reads_the_maps_results():
    # GIVEN RecordOutcome's payload with one succeeded and one failed operation
    event = RecordOutcomeEvent({"task": {"task_id": "t-1", "run": 3}, "results": [
        {"operation": "labels", "status": "SUCCEEDED", "jobId": "J", "pages": 2, "prefix": "s3://o/p/",
         "summaryUri": "s3://o/p/summary.json"},
        {"operation": "faces", "status": "FAILED", "error": "JobFailedError", "cause": "bad codec"}]})

    # THEN each result says whether it succeeded, with its output or its error
    labels, faces = event.results
    assert (event.task_id, event.run) == ("t-1", 3)
    assert (labels.operation, labels.succeeded, labels.output_uri) == ("labels", True, "s3://o/p/summary.json")
    assert (faces.operation, faces.succeeded, faces.error, faces.cause) == ("faces", False, "JobFailedError",
                                                                           "bad codec")
    # AND a payload without results has none
    assert RecordOutcomeEvent({"task": {"task_id": "t-2"}}).results == []
