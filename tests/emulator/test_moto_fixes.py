"""The emulator's corrections to moto: each behaves as AWS does, and fails loudly if moto changes."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from rekpipe.emulator import moto_fixes


@pytest.fixture
def fixed(aws):
    undo = moto_fixes.install()
    yield
    undo()


def _table_with_stream() -> str:
    boto3.client("dynamodb").create_table(
        TableName="t", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return "t"


def test_moto_fixes_patched_functions_still_exist():
    # GIVEN moto 5.2.5's internals the fixes replace
    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3 import notifications
    from moto.stepfunctions.responses import StepFunctionResponse

    # THEN each is where the fixes expect it
    assert callable(notifications._get_s3_event)
    assert callable(StepFunctionResponse.send_task_failure)
    assert "transact_write_items" in DynamoDBBackend.__dict__


def test_moto_fixes_s3_notice_carries_version_id(fixed):
    # GIVEN a versioned bucket that notifies a queue
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    queue = sqs.create_queue(QueueName="notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="media")
    s3.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket="media", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})

    # WHEN an object is uploaded
    version = s3.put_object(Bucket="media", Key="a b.jpg", Body=b"x")["VersionId"]

    # THEN the notice names the version, as AWS's does
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    [record] = [b["Records"][0] for b in bodies if "Records" in b]
    assert record["s3"]["object"]["versionId"] == version
    assert record["s3"]["object"]["sequencer"]


def test_moto_fixes_cancelled_transaction_keeps_table_and_stream(fixed):
    # GIVEN a table with a stream and one item
    ddb = boto3.client("dynamodb")
    _table_with_stream()
    ddb.put_item(TableName="t", Item={"id": {"S": "a"}, "n": {"N": "1"}})
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table("t")
    shard, records = table.stream_shard, len(table.stream_shard.items)

    # WHEN a transaction is cancelled by its second action's condition
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"id": {"S": "b"}}}},
            {"Update": {"TableName": "t", "Key": {"id": {"S": "a"}}, "UpdateExpression": "SET n = :two",
                        "ConditionExpression": "n = :zero",
                        "ExpressionAttributeValues": {":two": {"N": "2"}, ":zero": {"N": "0"}}}},
        ])

    # THEN nothing was written, the reasons are AWS's, and the table and its stream are the same objects
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert "Item" not in ddb.get_item(TableName="t", Key={"id": {"S": "b"}})
    assert dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table("t") is table
    assert table.stream_shard is shard and len(shard.items) == records

    # WHEN the same transaction can succeed
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "t", "Item": {"id": {"S": "b"}}}},
        {"Update": {"TableName": "t", "Key": {"id": {"S": "a"}}, "UpdateExpression": "SET n = :two",
                    "ConditionExpression": "n = :one",
                    "ExpressionAttributeValues": {":two": {"N": "2"}, ":one": {"N": "1"}}}},
    ])

    # THEN both writes landed, each with its stream record
    assert ddb.get_item(TableName="t", Key={"id": {"S": "a"}})["Item"]["n"] == {"N": "2"}
    assert len(shard.items) == records + 2
