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
    from moto.s3 import models, responses, utils

    assert all(callable(getattr(module, "compute_checksum", None)) for module in (utils, models, responses))
    assert callable(responses.S3Response._get_checksum)
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    assert callable(Environment.set_stop)
    from moto.sqs.models import SQSBackend

    assert "receive_message" in SQSBackend.__dict__
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    assert "notify_heartbeat" in CallbackEndpoint.__dict__


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


def test_moto_fixes_s3_checksums_crc64nvme_as_aws(aws):
    # GIVEN the S3 checksum fix, a client that sends no checksum and the default client (CRC32)
    from botocore.config import Config

    from rekpipe.emulator.s3_checksums import crc64nvme, crc64nvme_base64, s3_checksums_as_aws

    undo = s3_checksums_as_aws()
    try:
        plain = boto3.client("s3", config=Config(request_checksum_calculation="when_required"))
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="sums")
        body = bytes(range(256)) * 20_481  # just over 5 MiB: two parts
        # WHEN the bytes are uploaded in one part with no checksum, in two parts with a full-object
        # CRC64NVME, and a small object with the default client
        plain.put_object(Bucket="sums", Key="single", Body=body)
        upload = plain.create_multipart_upload(Bucket="sums", Key="multi", ChecksumAlgorithm="CRC64NVME",
                                               ChecksumType="FULL_OBJECT")
        parts = [{"PartNumber": n, "ETag": plain.upload_part(Bucket="sums", Key="multi", UploadId=upload["UploadId"],
                                                              PartNumber=n, Body=chunk)["ETag"]}
                 for n, chunk in ((1, body[:5 * 1024 * 1024]), (2, body[5 * 1024 * 1024:]))]
        plain.complete_multipart_upload(Bucket="sums", Key="multi", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": parts})
        s3.put_object(Bucket="sums", Key="crc32", Body=b"abc")
        heads = {key: s3.head_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
                 for key in ("single", "multi", "crc32")}
    finally:
        undo()
    # THEN the CRC-64/NVME is the real one (its published check value), S3 added it to the upload that
    # carried none, and the multipart upload's full-object value is the same
    assert crc64nvme(b"123456789") == 0xAE8B14860A799888
    assert heads["single"]["ChecksumCRC64NVME"] == crc64nvme_base64(body)
    assert heads["multi"]["ChecksumCRC64NVME"] == crc64nvme_base64(body)
    assert heads["multi"]["ChecksumType"] == "FULL_OBJECT" and heads["multi"]["ETag"].endswith('-2"')
    # AND an upload that carried a checksum keeps only its own
    assert "ChecksumCRC64NVME" not in heads["crc32"] and heads["crc32"]["ChecksumCRC32"]


def test_moto_fixes_stop_ends_an_execution_waiting_on_a_task_token(fixed):
    # GIVEN an execution parked on a task token for an hour (an SQS waitForTaskToken state)
    import time

    sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
    queue = sqs.create_queue(QueueName="wants")["QueueUrl"]
    definition = {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "TimeoutSeconds": 3600,
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, "End": True}}}
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition),
                                       roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    deadline = time.monotonic() + 30
    while not sqs.receive_message(QueueUrl=queue).get("Messages"):
        assert time.monotonic() < deadline, "the execution never sent its message"

    # WHEN it is stopped
    sfn.stop_execution(executionArn=execution, error="Operator", cause="test")

    # THEN it leaves RUNNING at once, not when the token's timeout fires
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the stopped execution stayed RUNNING"
        time.sleep(0.05)


def _two_long_polls_on_one_group() -> list[list[str]]:
    """Two consumers long-poll an empty FIFO queue; then two messages of one group arrive."""
    import threading
    import time

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="slots.fifo", Attributes={"FifoQueue": "true",
                                                               "ContentBasedDeduplication": "true"})["QueueUrl"]
    got: list[list[str]] = []

    def consume() -> None:
        messages = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=3,
                                                       VisibilityTimeout=30).get("Messages", [])
        got.append([m["Body"] for m in messages])

    consumers = [threading.Thread(target=consume) for _ in range(2)]
    for consumer in consumers:
        consumer.start()
    time.sleep(0.3)  # both are inside their long poll, the queue empty
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    for consumer in consumers:
        consumer.join()
    return got


def test_moto_fixes_fifo_group_goes_to_one_consumer_at_a_time(fixed):
    # GIVEN two consumers long-polling one FIFO queue
    # WHEN two messages of one group arrive
    got = _two_long_polls_on_one_group()
    # THEN only one consumer gets a message: the group is in flight until that one is deleted
    assert sorted(got) == [[], ["first"]]


def test_moto_fixes_fifo_long_poll_bug_is_still_in_moto(aws):
    # GIVEN moto without the fix / WHEN the same happens
    got = _two_long_polls_on_one_group()
    # THEN both consumers hold the group at once (this test fails when moto fixes it: drop fix 7 then)
    assert sorted(got) == [["first"], ["second"]]


def _heartbeat_silence_errors() -> list[str]:
    """Run a token wait with HeartbeatSeconds 1 that nobody answers; the errors of its TaskTimedOut events."""
    import time

    sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    definition = {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "HeartbeatSeconds": 1, "TimeoutSeconds": 60,
        "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "End": True}}}
    machine = sfn.create_state_machine(name="silent", definition=json.dumps(definition),
                                       roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    events = sfn.get_execution_history(executionArn=execution)["events"]
    return [e["taskTimedOutEventDetails"]["error"] for e in events if e["type"] == "TaskTimedOut"]


def test_moto_fixes_heartbeat_timeout_is_states_heartbeat_timeout(fixed):
    # GIVEN / WHEN a token wait whose heartbeats stop
    # THEN it fails with States.HeartbeatTimeout, which its Retry matches: two attempts, both timed out so
    assert _heartbeat_silence_errors() == ["States.HeartbeatTimeout", "States.HeartbeatTimeout"]


def test_moto_fixes_heartbeat_timeout_bug_is_still_in_moto(aws):
    # GIVEN moto without the fix / WHEN the same happens
    # THEN it says States.Timeout and the Retry never matches (this fails once moto fixes it: drop fix 8 then)
    assert _heartbeat_silence_errors() == ["States.Timeout"]


def _heartbeat_before_the_timer_is_armed() -> bool:
    """What moto's callback pool answers to a heartbeat for a token registered by a Task state that has sent
    its message (the token is in the pool) but not yet set up its heartbeat endpoint."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager

    pool = CallbackPoolManager(activity_store={})
    pool.add("token-1")
    return pool.heartbeat(callback_id="token-1")


def test_moto_fixes_heartbeat_right_after_the_send_is_accepted(fixed):
    # GIVEN a token whose message was sent a moment ago / WHEN its consumer heartbeats at once
    # THEN the heartbeat succeeds, as in AWS, so the consumer does not take the token for closed
    assert _heartbeat_before_the_timer_is_armed() is True
    # AND a token nobody registered is still unknown
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager

    assert CallbackPoolManager(activity_store={}).heartbeat(callback_id="unknown") is False


def test_moto_fixes_heartbeat_before_the_timer_bug_is_still_in_moto(aws):
    # GIVEN moto without the fix / WHEN the same happens
    # THEN the heartbeat is refused (InvalidToken at the API); this fails once moto fixes it: drop fix 10 then
    assert _heartbeat_before_the_timer_is_armed() is False


def test_moto_fixes_undo_restores_every_replaced_attribute():
    # GIVEN the attributes of moto the ten fixes replace, as moto defines them
    from moto.core.base_backend import BackendDict
    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3 import models, notifications, responses, utils
    from moto.sqs.models import SQSBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    replaced = [(notifications, "_get_s3_event"), (StepFunctionResponse, "send_task_failure"),
                (DynamoDBBackend, "transact_write_items"), (BackendDict, "_create_account_specific_backend"),
                (utils, "compute_checksum"), (models, "compute_checksum"), (responses, "compute_checksum"),
                (responses.S3Response, "_get_checksum"), (Environment, "set_stop"), (SQSBackend, "receive_message"),
                (StateTask, "_from_error"), (StepFunctionsParserBackend, "_get_executions"),
                (CallbackEndpoint, "notify_heartbeat")]
    before = [vars(owner).get(name) for owner, name in replaced]

    # WHEN the fixes are installed, then undone
    undo = moto_fixes.install()
    during = [vars(owner).get(name) for owner, name in replaced]
    undo()

    # THEN each attribute was replaced, and is moto's own again
    assert all(now is not then for now, then in zip(during, before, strict=True))
    assert all(now is then for now, then in zip([vars(owner).get(name) for owner, name in replaced], before,
                                                strict=True))
