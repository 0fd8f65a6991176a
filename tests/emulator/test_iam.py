"""The emulator's IAM enforcement, service by service, on plain moto (no deployed stack)."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from rekpipe.emulator.iam import AssumeRoleDeniedError, IamEnforcement, acting_as, current_credentials
from rekpipe.emulator.iam.resource_policies import Decision, PolicyRequest, evaluate, principal_arn

if TYPE_CHECKING:
    from collections.abc import Iterator

ACCOUNT, REGION = "123456789012", "us-east-1"
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture
def enforcement(aws_env) -> Iterator[IamEnforcement]:
    with mock_aws():
        enforced = IamEnforcement(ACCOUNT, REGION).install()
        try:
            yield enforced
        finally:
            enforced.uninstall()


def _role(name: str, statements: list[dict], trust: dict = LAMBDA_TRUST) -> str:
    iam = boto3.client("iam", region_name=REGION)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="grants",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return arn


def _session(enforcement: IamEnforcement, role_arn: str):
    return enforcement.service_session(role_arn, "lambda.amazonaws.com", session_name="my-function").credentials


def test_iam_role_without_grants_is_refused_by_every_service_in_its_own_words(enforcement):
    # GIVEN a function role with no policy at all
    credentials = _session(enforcement, _role("bare", []))
    calls = {
        "s3": lambda: boto3.client("s3", region_name=REGION).put_object(Bucket="bucket-x", Key="k", Body=b"x"),
        "dynamodb": lambda: boto3.client("dynamodb", region_name=REGION).get_item(TableName="t", Key={"k": {"S": "v"}}),
        "sns": lambda: boto3.client("sns", region_name=REGION).publish(
            TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:t", Message="x"),
        "stepfunctions": lambda: boto3.client("stepfunctions", region_name=REGION).describe_execution(
            executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:m:e"),
        "lambda": lambda: boto3.client("lambda", region_name=REGION).invoke(FunctionName="f"),
        "sqs": lambda: boto3.client("sqs", region_name=REGION).list_queues(),
    }
    expected = {"s3": ("AccessDenied", "s3:PutObject", "arn:aws:s3:::bucket-x/k"),
                "dynamodb": ("AccessDeniedException", "dynamodb:GetItem", "table/t"),
                "sns": ("AuthorizationError", "sns:Publish", f"arn:aws:sns:{REGION}:{ACCOUNT}:t"),
                "stepfunctions": ("AccessDeniedException", "states:DescribeExecution", "execution:m:e"),
                "lambda": ("AccessDeniedException", "lambda:InvokeFunction", "function:f"),
                "sqs": ("AccessDenied", "sqs:ListQueues", "*")}

    # WHEN it calls each service
    for service, call in calls.items():
        with acting_as(credentials), pytest.raises(ClientError) as refused:
            call()

        # THEN each refusal has the service's code and AWS's message, naming the session, action and resource
        code, action, resource = expected[service]
        error = refused.value.response["Error"]
        assert error["Code"] == code, service
        assert error["Message"].startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/bare/my-function is not "
                                           f"authorized to perform: {action} on resource: "), service
        assert resource in error["Message"] and "because no identity-based policy allows" in error["Message"]
    assert len(enforcement.all_refusals()) == len(calls)


def test_iam_grant_on_a_table_arn_allows_that_table_only_and_each_transaction_item_is_checked(enforcement):
    # GIVEN two tables, and a role allowed PutItem/UpdateItem on the first one's ARN only
    ddb = boto3.client("dynamodb", region_name=REGION)
    for name in ("granted", "other"):
        ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
    granted = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/granted"
    credentials = _session(enforcement, _role("writer", [
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"], "Resource": granted}]))

    with acting_as(credentials):
        # WHEN it writes the granted table, THEN it may (moto alone would check "*" and refuse)
        ddb.put_item(TableName="granted", Item={"k": {"S": "a"}})
        # WHEN a transaction also touches the other table, THEN the whole transaction is refused for that item
        with pytest.raises(ClientError) as refused:
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "granted", "Item": {"k": {"S": "b"}}}},
                {"Update": {"TableName": "other", "Key": {"k": {"S": "c"}}, "UpdateExpression": "SET v = :v",
                            "ExpressionAttributeValues": {":v": {"S": "1"}}}}])
    assert "dynamodb:UpdateItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/other" in str(refused.value)
    assert [item["k"]["S"] for item in ddb.scan(TableName="granted")["Items"]] == ["a"]


def test_iam_sns_to_sqs_delivery_needs_the_queue_policy(enforcement):
    # GIVEN a topic with a queue subscribed, and no queue policy yet
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="notices")["TopicArn"]
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    # WHEN a notice is published, THEN SNS may not deliver it: it is dropped and the refusal recorded
    sns.publish(TopicArn=topic, Message="first")
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    [refusal] = enforcement.delivery_refusals
    assert (refusal.service, refusal.action, refusal.resource, refusal.source) == (
        "sns.amazonaws.com", "sqs:SendMessage", queue_arn, topic)

    # WHEN the queue policy lets the topic send (as the stack's does), THEN the next notice arrives
    enforcement.load_resource_policies({queue_arn: [{"Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]}]})
    sns.publish(TopicArn=topic, Message="second")
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert json.loads(message["Body"])["Message"] == "second"


def test_iam_a_role_is_assumed_only_by_the_service_it_trusts(enforcement):
    # GIVEN a role that trusts Lambda
    role = _role("fn-role", [])

    # WHEN Rekognition tries to assume it, THEN it is refused with the reason
    with pytest.raises(AssumeRoleDeniedError) as refused:
        enforcement.service_session(role, "rekognition.amazonaws.com", session_name="rekognition")
    assert "rekognition.amazonaws.com is not authorized to perform: sts:AssumeRole" in str(refused.value)
    # AND Lambda may
    assert enforcement.service_session(role, "lambda.amazonaws.com", session_name="f").arn.endswith("fn-role/f")


def test_iam_topic_policy_deny_refuses_anyone_but_the_allowed_role(enforcement):
    # GIVEN a topic whose policy denies publishing to every principal but one role, as the stack's does
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="jobs")["TopicArn"]
    publish = [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}]
    allowed, other = _role("publisher", publish), _role("intruder", publish)
    enforcement.load_resource_policies({topic: [{"Statement": [{
        "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sns:Publish", "Resource": topic,
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": allowed}}}]}]})

    # WHEN both publish, THEN the role's session passes (aws:PrincipalArn is the role, not the session)
    with acting_as(_session(enforcement, allowed)):
        sns.publish(TopicArn=topic, Message="ok")
    # AND the other role, allowed by its own policy, is refused by the topic's explicit deny
    with acting_as(_session(enforcement, other)), pytest.raises(ClientError) as refused:
        sns.publish(TopicArn=topic, Message="no")
    assert "with an explicit deny in a resource-based policy" in refused.value.response["Error"]["Message"]


def test_iam_acting_as_is_per_thread_and_restored():
    # GIVEN no identity on this thread
    assert current_credentials() is None
    seen: list[object] = []
    marker = object()

    # WHEN a block acts as someone and starts a thread
    with acting_as(marker):  # type: ignore[arg-type]
        worker = threading.Thread(target=lambda: seen.append(current_credentials()))
        worker.start()
        worker.join()
        inside = current_credentials()

    # THEN the block saw it, the thread did not inherit it, and it is gone after the block
    assert inside is marker and seen == [None] and current_credentials() is None


def test_iam_policy_evaluation_rules():
    # GIVEN a trust policy with conditions, and policies mixing Allow, Deny and NotAction
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:states:*:123:stateMachine:*"},
                                          "StringEquals": {"aws:SourceAccount": "123"}}}]}
    ok = PolicyRequest("sts:AssumeRole", service_principal="states.amazonaws.com",
                       context={"AWS:SourceArn": "arn:aws:states:us-east-1:123:stateMachine:m",
                                "aws:sourceaccount": "123"})
    wrong_account = PolicyRequest("sts:AssumeRole", service_principal="states.amazonaws.com",
                                  context={"aws:SourceArn": "arn:aws:states:us-east-1:123:stateMachine:m",
                                           "aws:SourceAccount": "999"})
    both = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
                          {"Effect": "Deny", "Principal": "*", "NotAction": "s3:GetObject", "Resource": "*"}]}

    # THEN conditions are compared case-insensitively by key, and a Deny beats an Allow
    assert evaluate(trust, ok) is Decision.ALLOW
    assert evaluate(trust, wrong_account) is Decision.IMPLICIT_DENY
    assert evaluate(both, PolicyRequest("s3:GetObject", resource="arn:aws:s3:::b/k")) is Decision.ALLOW
    assert evaluate(both, PolicyRequest("s3:PutObject", resource="arn:aws:s3:::b/k")) is Decision.EXPLICIT_DENY
    assert principal_arn("arn:aws:sts::123:assumed-role/Role/session") == "arn:aws:iam::123:role/Role"


def test_iam_sqs_batch_calls_are_authorized_as_their_single_action(enforcement):
    # GIVEN a consumer role allowed ReceiveMessage and DeleteMessage on one queue (what CDK grants a consumer)
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=url, MessageBody="job")
    credentials = _session(enforcement, _role("consumer", [
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"], "Resource": arn}]))

    # WHEN it deletes what it received with DeleteMessageBatch, as Lambda's poller does
    with acting_as(credentials):
        [message] = sqs.receive_message(QueueUrl=url)["Messages"]
        deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "1", "ReceiptHandle": message["ReceiptHandle"]}])

    # THEN IAM's sqs:DeleteMessage covers it (there is no sqs:DeleteMessageBatch action), and nothing was refused
    assert [entry["Id"] for entry in deleted["Successful"]] == ["1"]
    assert enforcement.all_refusals() == []


def test_iam_uninstall_leaves_moto_as_it_was(aws_env):
    # GIVEN moto's Step Functions client factory as every loaded module holds it
    import sys

    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    # WHEN enforcement is installed, a module is imported meanwhile, and enforcement is removed
    with mock_aws():
        enforced = IamEnforcement(ACCOUNT, REGION).install()
        import moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils  # noqa: F401
        enforced.uninstall()

    # THEN no module keeps the emulator's replacement
    holders = [name for name, module in list(sys.modules.items())
               if name.startswith("moto.stepfunctions") and hasattr(module, "boto_client_for")]
    assert holders and all(sys.modules[name].boto_client_for is original for name in holders)


def test_iam_get_queue_url_is_authorized_on_the_queue_it_names(enforcement):
    # GIVEN a role allowed GetQueueUrl on one queue only (as CDK's consume grant gives it)
    sqs = boto3.client("sqs", region_name=REGION)
    for name in ("mine", "theirs"):
        sqs.create_queue(QueueName=name)
    credentials = _session(enforcement, _role("url-reader", [
        {"Effect": "Allow", "Action": "sqs:GetQueueUrl", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:mine"}]))

    with acting_as(credentials):
        # WHEN it asks for its queue's URL, THEN it gets it
        assert sqs.get_queue_url(QueueName="mine")["QueueUrl"].endswith("/mine")
        # AND another queue's URL is refused
        with pytest.raises(ClientError) as refused:
            sqs.get_queue_url(QueueName="theirs")
    assert f"sqs:GetQueueUrl on resource: arn:aws:sqs:{REGION}:{ACCOUNT}:theirs" in str(refused.value)


def test_iam_unused_actions_lists_grants_no_session_needed_including_the_simulators_checks(enforcement):
    # GIVEN a role allowed to read and write one bucket and to call DetectLabels
    from rekpipe.emulator.iam.simulator_access import Caller, SimulatorAccess

    role_arn = _role("reader", [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::bucket-u/*"},
        {"Effect": "Allow", "Action": ["rekognition:DetectLabels"], "Resource": "*"}])
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="bucket-u")
    boto3.client("s3", region_name=REGION).put_object(Bucket="bucket-u", Key="k", Body=b"x")
    credentials = _session(enforcement, role_arn)
    # WHEN its session reads the object, and the Rekognition simulator authorizes its DetectLabels
    with acting_as(credentials):
        boto3.client("s3", region_name=REGION).get_object(Bucket="bucket-u", Key="k")
    from moto.iam.models import iam_backends

    policies = [json.loads(doc) for doc in iam_backends[ACCOUNT]["aws"].get_role("reader").policies.values()]
    caller = Caller(arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/my-function", credentials=credentials)
    SimulatorAccess(enforcement)._check(caller, [json.dumps(p) for p in policies], "rekognition:DetectLabels", "*")
    # THEN only the write is reported unused
    assert enforcement.unused_actions()["reader"] == ["s3:PutObject"]
