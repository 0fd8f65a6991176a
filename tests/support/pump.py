"""Drives the real handlers the way AWS would deliver to them, one hop at a time.

S3 notice -> ingest_s3 -> task table stream -> route_task -> queues -> analyze_image. Each hop
reads the real moto resource (the stream's records, the queue's messages) and builds the exact
event shape Lambda would, so the handlers see what they will see in AWS.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import boto3

from rekpipe.emulator.event_sources import sqs_lambda_event
from tests.support.context import FakeLambdaContext

if TYPE_CHECKING:
    from rekpipe.emulator.event_sources import StreamReader

REGION = "us-east-1"


def s3_event(bucket: str, keys: list[str], *, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """The S3 notice for objects that exist now, keys encoded as S3 encodes them."""
    s3 = boto3.client("s3")
    records = []
    for key in keys:
        head = s3.head_object(Bucket=bucket, Key=key)
        obj: dict[str, Any] = {
            "key": quote_plus(key, safe="/"),
            "size": head["ContentLength"],
            "eTag": head["ETag"].strip('"'),
            "sequencer": "0055AED6DCD90281E5",
        }
        if head.get("VersionId"):
            obj["versionId"] = head["VersionId"]
        records.append({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": datetime.now().isoformat(timespec="milliseconds") + "Z",
            "eventName": event_name,
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "ContentUploads",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
                "object": obj,
            },
        })
    return {"Records": records}


def sqs_event(queue_url: str, *, max_messages: int = 10) -> tuple[dict[str, Any], dict[str, str]]:
    """Receive up to ``max_messages`` and shape them as Lambda's SQS event; also maps id -> receipt."""
    sqs = boto3.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages,
                                   AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
    return sqs_lambda_event(messages, arn, REGION), {m["MessageId"]: m["ReceiptHandle"] for m in messages}


def deliver_sqs(queue_url: str, handler: Any, *, batch_size: int = 10, timeout: float = 60.0) -> dict[str, int]:
    """One poll of an SQS event source: invoke, then delete what the handler did not report failed."""
    event, receipts = sqs_event(queue_url, max_messages=batch_size)
    if not event["Records"]:
        return {"delivered": 0, "failed": 0}
    response = handler(event, FakeLambdaContext(timeout_seconds=timeout)) or {}
    failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    sqs = boto3.client("sqs")
    for message_id, receipt in receipts.items():
        if message_id not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
    return {"delivered": len(receipts), "failed": len(failed)}


def deliver_stream(reader: StreamReader, handler: Any) -> dict[str, int]:
    """Invoke a stream consumer with everything new on the stream; returns record counts."""
    records = reader.read()
    if not records:
        return {"delivered": 0, "failed": 0}
    response = handler({"Records": records}, FakeLambdaContext()) or {}
    return {"delivered": len(records), "failed": len(response.get("batchItemFailures", []))}


def message_bodies(queue_url: str) -> list[dict[str, Any]]:
    """Peek at every message on a queue without consuming it (visibility 0)."""
    sqs = boto3.client("sqs")
    bodies = []
    for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", []):
        bodies.append(json.loads(m["Body"]))
    return bodies


def counts_from_stream(stream_arn: str | None, table_name: str) -> dict[str, int]:
    """Tasks by status once the stream's changes so far are counted, as route_task counts them.

    The whole stream is read from its start (a fresh reader) and applied in one batch: batches
    already counted are found by their markers, so calling it twice never counts twice.
    """
    from rekpipe.emulator.event_sources import StreamReader
    from rekpipe_shared.status_counts import StatusCounts

    dynamodb = boto3.client("dynamodb")
    stream_arn = stream_arn or dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    counts = StatusCounts(table_name, dynamodb)
    counts.apply(StreamReader(stream_arn).read())
    return counts.read()
