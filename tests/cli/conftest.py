"""Fixtures of the CLI tests: the pipeline's resources in moto, behind a CloudFormation stack's outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from stack.storage import BATCH_REPORT_PREFIX, INVENTORY_PREFIX, MANIFEST_PREFIX

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ACCOUNT = "123456789012"
STACK_NAME = "RekognitionPipeline"
INGEST_BATCH_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:RekognitionPipeline-IngestBatch"
BATCH_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/RekognitionPipeline-BatchOperationsRole"


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff waits up to seconds per retry; the CLI tests keep its shape, not its length."""
    import botocore.retries.standard

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def moto_aws(aws_env: None) -> Iterator[None]:
    """Every service mocked in-process; executions stay RUNNING (the CLI only lists them)."""
    from moto import mock_aws

    with mock_aws():
        yield


@dataclass
class Pipeline:
    """Names of the mocked resources and the stack outputs that point at them."""

    content_bucket: str = "rekpipe-content"
    existing_bucket: str = "rekpipe-existing"
    inventory_bucket: str = "rekpipe-inventory"
    output_bucket: str = "rekpipe-output"
    task_table: str = "rekpipe-tasks"
    semaphore_table: str = "rekpipe-semaphore"
    queues: dict[str, str] = field(default_factory=dict)
    state_machine_arn: str = ""
    ingest_batch_arn: str = INGEST_BATCH_ARN
    batch_role_arn: str = BATCH_ROLE_ARN
    account: str = ACCOUNT
    outputs: dict[str, str] = field(default_factory=dict)


def create_task_table(name: str) -> None:
    """The task table with the stack's schema: key ``task_id``, sparse GSIs ``attention`` and ``in_flight``, stream."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "task_id", "AttributeType": "S"},
            {"AttributeName": "attention_status", "AttributeType": "S"},
            {"AttributeName": "updated_at", "AttributeType": "S"},
            {"AttributeName": "in_flight_status", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": "attention",
            "KeySchema": [{"AttributeName": "attention_status", "KeyType": "HASH"},
                          {"AttributeName": "updated_at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }, {
            "IndexName": "in_flight",
            "KeySchema": [{"AttributeName": "in_flight_status", "KeyType": "HASH"},
                          {"AttributeName": "updated_at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def create_stack(outputs: dict[str, str], stack_name: str = STACK_NAME) -> None:
    """A CloudFormation stack whose outputs are the given literal values."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=stack_name, TemplateBody=json.dumps(template))


@pytest.fixture
def pipeline(moto_aws: None) -> Pipeline:
    """Buckets, tables, work queues with their DLQs, the video state machine, and the stack."""
    created = Pipeline()
    s3 = boto3.client("s3")
    for bucket in (created.content_bucket, created.existing_bucket, created.inventory_bucket, created.output_bucket):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=created.inventory_bucket, VersioningConfiguration={"Status": "Enabled"})
    create_task_table(created.task_table)
    boto3.client("dynamodb").create_table(
        TableName=created.semaphore_table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
    )
    sqs = boto3.client("sqs")
    for name in ("Image", "Video"):
        dlq_url = sqs.create_queue(QueueName=f"rekpipe-{name.lower()}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=f"rekpipe-{name.lower()}",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        )["QueueUrl"]
        created.queues[f"{name}Queue"] = queue_url
        created.queues[f"{name}Dlq"] = dlq_url
    # A DLQ of failed function invocations: no queue sends to it.
    created.queues["RouteTaskDlq"] = sqs.create_queue(QueueName="rekpipe-route-task-dlq")["QueueUrl"]
    created.state_machine_arn = boto3.client("stepfunctions").create_state_machine(
        name="rekpipe-video",
        definition=json.dumps({"StartAt": "Analyse", "States": {"Analyse": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/rekpipe-video",
    )["stateMachineArn"]
    created.outputs = {
        "ContentBucketName": created.content_bucket,
        "ExistingContentBucketName": created.existing_bucket,
        "InventoryBucketName": created.inventory_bucket,
        "ManifestBucketName": created.inventory_bucket,
        "ManifestPrefix": MANIFEST_PREFIX,
        "InventoryPrefix": INVENTORY_PREFIX,
        "BatchReportPrefix": BATCH_REPORT_PREFIX,
        "OutputBucketName": created.output_bucket,
        "TaskTableName": created.task_table,
        "SemaphoreTableName": created.semaphore_table,
        "ImageQueueUrl": created.queues["ImageQueue"],
        "VideoQueueUrl": created.queues["VideoQueue"],
        "ImageDlqUrl": created.queues["ImageDlq"],
        "VideoDlqUrl": created.queues["VideoDlq"],
        "RouteTaskDlqUrl": created.queues["RouteTaskDlq"],
        "VideoStateMachineArn": created.state_machine_arn,
        "VideoTopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:rekpipe-video-jobs",
        "BatchOperationsRoleArn": BATCH_ROLE_ARN,
        "IngestBatchFunctionArn": INGEST_BATCH_ARN,
    }
    create_stack(created.outputs)
    return created


@pytest.fixture
def put_objects() -> Callable[[str, dict[str, int]], None]:
    """Write objects of given sizes straight into moto's S3 backend (thousands in a fraction of a second)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    def put(bucket: str, sizes: dict[str, int]) -> None:
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, size in sizes.items():
            backend.put_object(bucket, key, b"\0" * size)

    return put


class RecordingS3Control:
    """Stands in for s3control (moto does not implement CreateJob): checks each request against
    the service model, as botocore would, and records it."""

    def __init__(self) -> None:
        import botocore.session

        self._input = botocore.session.get_session().get_service_model("s3control").operation_model(
            "CreateJob").input_shape
        self.requests: list[dict[str, Any]] = []

    def create_job(self, **request: Any) -> dict[str, Any]:
        from botocore.validate import validate_parameters

        validate_parameters(request, self._input)  # raises ParamValidationError like the real client
        self.requests.append(request)
        return {"JobId": f"job-{len(self.requests):04d}"}


@pytest.fixture
def s3control() -> RecordingS3Control:
    return RecordingS3Control()
