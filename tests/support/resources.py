"""The pipeline's data resources in moto, with the tables built from the synthesized template.

Tables come from the template's own key schemas, indexes and streams, so a test can never pass
against a table the stack would not create.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from rekpipe_shared import schema as c
from rekpipe_shared.settings import PipelineSettings


@dataclass(frozen=True)
class PipelineResources:
    """Names of what a test's handlers use."""

    content_bucket: str
    existing_bucket: str
    output_bucket: str
    inventory_bucket: str
    task_table: str
    semaphore_table: str
    rate_limit_table: str
    result_index_table: str
    image_queue_url: str
    video_queue_url: str
    task_stream_arn: str
    video_topic_arn: str
    slot_queue_url: str = ""

    def environment(self, settings: PipelineSettings | None = None) -> dict[str, str]:
        """The common environment the stack gives every function."""
        return {
            c.TASK_TABLE_NAME_ENV: self.task_table,
            c.SEMAPHORE_TABLE_NAME_ENV: self.semaphore_table,
            c.RATE_LIMIT_TABLE_NAME_ENV: self.rate_limit_table,
            c.RESULT_INDEX_TABLE_NAME_ENV: self.result_index_table,
            c.OUTPUT_BUCKET_ENV: self.output_bucket,
            c.IMAGE_QUEUE_URL_ENV: self.image_queue_url,
            c.VIDEO_QUEUE_URL_ENV: self.video_queue_url,
            c.VIDEO_TOPIC_ARN_ENV: self.video_topic_arn,
            c.REKOGNITION_ROLE_ARN_ENV: "arn:aws:iam::123456789012:role/RekognitionServiceRole",
            c.SLOT_QUEUE_URL_ENV: self.slot_queue_url,
            c.PIPELINE_SETTINGS_ENV: (settings or PipelineSettings()).to_json(),
        }


def table_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """CreateTable arguments for every table in a CloudFormation template, by output name."""
    resources = template["Resources"]
    by_logical_id: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        props = resource["Properties"]
        args: dict[str, Any] = {
            "TableName": logical_id,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        ttl = props.get("TimeToLiveSpecification")
        args["_ttl"] = ttl
        by_logical_id[logical_id] = args
    named: dict[str, dict[str, Any]] = {}
    for output_name, output in template.get("Outputs", {}).items():
        ref = output.get("Value", {})
        if isinstance(ref, dict) and ref.get("Ref") in by_logical_id:
            named[output_name] = by_logical_id[ref["Ref"]]
    return named


def create_resources(template: dict[str, Any]) -> PipelineResources:
    """Create tables (from the template), buckets, queues and the video topic in moto."""
    dynamodb = boto3.client("dynamodb")
    tables = table_definitions(template)
    stream_arn = ""
    for output_name, args in tables.items():
        args = dict(args)
        ttl = args.pop("_ttl")
        description = dynamodb.create_table(**args)["TableDescription"]
        if ttl:
            dynamodb.update_time_to_live(TableName=args["TableName"], TimeToLiveSpecification=ttl)
        if output_name == "TaskTableName":
            stream_arn = description["LatestStreamArn"]
    s3 = boto3.client("s3")
    buckets = {name: f"rekpipe-{name}" for name in ("content", "existing", "output", "inventory")}
    for bucket in buckets.values():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    sqs = boto3.client("sqs")
    topic_arn = boto3.client("sns").create_topic(Name="rekpipe-video-jobs")["TopicArn"]
    return PipelineResources(
        content_bucket=buckets["content"],
        existing_bucket=buckets["existing"],
        output_bucket=buckets["output"],
        inventory_bucket=buckets["inventory"],
        task_table=tables["TaskTableName"]["TableName"],
        semaphore_table=tables["SemaphoreTableName"]["TableName"],
        rate_limit_table=tables["RateLimitTableName"]["TableName"],
        result_index_table=tables["ResultIndexTableName"]["TableName"],
        image_queue_url=sqs.create_queue(QueueName="rekpipe-images")["QueueUrl"],
        video_queue_url=sqs.create_queue(QueueName="rekpipe-videos")["QueueUrl"],
        task_stream_arn=stream_arn,
        video_topic_arn=topic_arn,
        slot_queue_url=sqs.create_queue(
            QueueName="rekpipe-slots.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"],
    )
