"""An idle stream poller asks moto whether anything is unread instead of making three stream calls."""

from __future__ import annotations

import boto3
from moto import mock_aws

from rekpipe.emulator.event_sources import StreamReader


def test_has_unread_follows_the_shard_and_the_records_read(aws_env):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        table = dynamodb.create_table(
            TableName="tasks", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "task_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        reader = StreamReader(table["LatestStreamArn"], region="us-east-1")
        # GIVEN an empty stream WHEN asked THEN nothing is unread
        assert reader.has_unread() is False
        # WHEN two items are written THEN records are unread, and one read takes both and leaves none
        for task in ("a", "b"):
            dynamodb.put_item(TableName="tasks", Item={"task_id": {"S": task}})
        assert reader.has_unread() is True
        assert [r["dynamodb"]["Keys"]["task_id"]["S"] for r in reader.read()] == ["a", "b"]
        assert reader.has_unread() is False
        # AND a later write is seen again
        dynamodb.delete_item(TableName="tasks", Key={"task_id": {"S": "a"}})
        assert reader.has_unread() is True
        assert [r["eventName"] for r in reader.read()] == ["REMOVE"]
