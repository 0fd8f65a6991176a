"""Ingestion: S3 events and Batch Operations write tasks; the table's stream routes them to queues."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from rekpipe_shared.routing import STREAM_FILTER_PATTERNS
from rekpipe_shared.schema import (
    IMAGE_QUEUE_URL_ENV,
    PIPELINE_SETTINGS_ENV,
    SLOT_QUEUE_URL_ENV,
    TASK_TABLE_NAME_ENV,
    VIDEO_QUEUE_URL_ENV,
)
from stack.functions import RUNTIME
from stack.nag import acknowledge, acknowledge_objects, wildcard_resource
from stack.permissions import object_statement
from stack.queues import DLQ_RETENTION, WorkQueue, failure_destination_queue, secure_queue
from stack.storage import PUT_ITEM, READ_ITEM, UPDATE_ITEM, grant_table

if TYPE_CHECKING:
    from stack.functions import FunctionFactory
    from stack.storage import Storage

IMAGE_MAX_RECEIVE_COUNT = 10
"""Throttled images are handed back to the queue, so they get more deliveries than videos."""
VIDEO_MAX_RECEIVE_COUNT = 5
ROUTE_BATCH_SIZE = 100
ROUTE_BATCHING_WINDOW = cdk.Duration.seconds(5)
"""Gathers a busy stream's changes into batches of up to 100, so routing and counting cost one
invocation and one small transaction per batch, not per change; a new task waits at most 5 s more."""
ROUTE_RETRY_ATTEMPTS = 10
ROUTE_MAX_RECORD_AGE = cdk.Duration.hours(24)
"""A stream keeps records 24 hours; older ones are gone anyway."""
INGEST_RETRY_ATTEMPTS = 2
INGEST_MAX_EVENT_AGE = cdk.Duration.hours(6)

READ_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")


class Ingestion(Construct):
    """``ingest_s3``, ``ingest_batch``, ``route_task`` and the image and video work queues.

    ``ingest_s3`` receives every ObjectCreated notice of the content bucket, with no suffix
    filter: S3 filters are case-sensitive and cannot say "any of", so ``photo.JPG`` or
    ``clip.Mov`` would slip past a ``.jpg``/``.mov`` filter. The function skips unsupported types
    itself (``rekpipe_shared.media``), at the cost of one short invocation per skipped object.

    Parameters
    ----------
    factory: FunctionFactory
    storage: Storage
    image_consumer_timeout, video_consumer_timeout: cdk.Duration
        Timeouts of the queues' consumers, which size the queues' visibility timeouts.

    Attributes
    ----------
    ingest_s3, ingest_batch, route_task: PipelineFunction
    image_queue, image_dlq, video_queue, video_dlq: sqs.Queue
    ingest_dlq: sqs.Queue
        Events ``ingest_s3`` failed on after its retries.
    route_failures: sqs.Queue
        Stream batches ``route_task`` could not route after its retries (on-failure destination).
    """

    def __init__(self, scope: Construct, id_: str, *, factory: FunctionFactory, storage: Storage,
                 image_consumer_timeout: cdk.Duration, video_consumer_timeout: cdk.Duration) -> None:
        super().__init__(scope, id_)
        images = WorkQueue(self, "ImageQueue", consumer_timeout=image_consumer_timeout,
                           max_receive_count=IMAGE_MAX_RECEIVE_COUNT)
        videos = WorkQueue(self, "VideoQueue", consumer_timeout=video_consumer_timeout,
                           max_receive_count=VIDEO_MAX_RECEIVE_COUNT)
        self.image_queue, self.image_dlq = images.queue, images.dlq
        self.video_queue, self.video_dlq = videos.queue, videos.dlq

        # --- ingest_s3: asynchronous S3 notices, retried twice, then kept in a DLQ ----------------
        self.ingest_dlq = secure_queue(self, "IngestS3Dlq", retention=DLQ_RETENTION)
        self.ingest_s3 = factory.create(
            self, "IngestS3", name="ingest_s3", timeout=cdk.Duration.seconds(30),
            description="Turns S3 ObjectCreated notices into tasks",
            environment=(TASK_TABLE_NAME_ENV, PIPELINE_SETTINGS_ENV),
            dead_letter_queue=self.ingest_dlq, retry_attempts=INGEST_RETRY_ATTEMPTS,
            max_event_age=INGEST_MAX_EVENT_AGE,
        )
        grant_table(self.ingest_s3.function, storage.task_table, PUT_ITEM + UPDATE_ITEM)
        storage.content_bucket.add_event_notification(s3.EventType.OBJECT_CREATED,
                                                      s3n.LambdaDestination(self.ingest_s3.function))
        _harden_notifications_handler(cdk.Stack.of(self))

        # --- ingest_batch: S3 Batch Operations' LambdaInvoke --------------------------------------
        self.ingest_batch = factory.create(
            self, "IngestBatch", name="ingest_batch", timeout=cdk.Duration.seconds(60),
            description="Turns S3 Batch Operations tasks (backfill) into tasks",
            environment=(TASK_TABLE_NAME_ENV, PIPELINE_SETTINGS_ENV),
        )
        grant_table(self.ingest_batch.function, storage.task_table, PUT_ITEM + UPDATE_ITEM)
        for bucket in storage.content_buckets:
            # HeadObject needs GetObject (GetObjectVersion with a version id); ListBucket makes a
            # missing object a 404 (PermanentFailure "not found") instead of a misleading 403.
            self.ingest_batch.add_to_policy(
                object_statement(READ_OBJECT_ACTIONS, bucket.bucket_arn),
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]),
            )
            acknowledge_objects(
                self.ingest_batch.role, bucket.bucket_arn,
                "ingest_batch checks (HeadObject) whichever object a backfill manifest lists, so it "
                "reads any key of this one bucket; only GetObject/GetObjectVersion are granted.",
            )

        # --- route_task: the task table's stream --------------------------------------------------
        self.route_failures = failure_destination_queue(self, "RouteTaskFailures",
                                                        used_by="route_task's DynamoDB stream event source")
        self.route_task = factory.create(
            self, "RouteTask", name="route_task", timeout=cdk.Duration.seconds(60),
            description="Sends new and re-queued tasks from the task table's stream to the image or video queue",
            environment=(TASK_TABLE_NAME_ENV, IMAGE_QUEUE_URL_ENV, VIDEO_QUEUE_URL_ENV, SLOT_QUEUE_URL_ENV),
        )
        self.route_task.function.add_event_source(
            sources.DynamoEventSource(
                storage.task_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=ROUTE_BATCH_SIZE,
                max_batching_window=ROUTE_BATCHING_WINDOW,
                # Off: a bisected retry would start mid-batch and defeat the exactly-once counts
                # (rekpipe_shared.status_counts); route_task reports item failures instead.
                bisect_batch_on_error=False,
                report_batch_item_failures=True,
                filters=[lambda_.FilterCriteria.filter(pattern) for pattern in STREAM_FILTER_PATTERNS],
                retry_attempts=ROUTE_RETRY_ATTEMPTS,
                max_record_age=ROUTE_MAX_RECORD_AGE,
                on_failure=sources.SqsDlq(self.route_failures),
            )
        )
        acknowledge(
            self.route_task.role, wildcard_resource("*"),
            "dynamodb:ListStreams (granted by the DynamoDB event source for the stream mapping) does not "
            "support resource-level permissions; the stream read actions are scoped to the table's stream.",
        )
        grant_table(self.route_task.function, storage.task_table, READ_ITEM + UPDATE_ITEM)
        self.image_queue.grant_send_messages(self.route_task.function)
        self.video_queue.grant_send_messages(self.route_task.function)


def _harden_notifications_handler(stack: cdk.Stack) -> None:
    """The deploy-time function CDK adds to apply bucket notifications (one per stack).

    Its runtime is raised to the pipeline's (CDK pins an older Python; the inline handler only uses
    boto3 and the standard library), and its managed policy is acknowledged.
    """
    for child in stack.node.children:
        if not child.node.id.startswith("BucketNotificationsHandler"):
            continue
        resource = child.node.try_find_child("Resource")
        if isinstance(resource, cdk.CfnResource):
            resource.add_property_override("Runtime", RUNTIME.name)
        acknowledge(
            child, "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's own deploy-time handler for Custom::S3BucketNotifications (aws-s3), whose role CDK "
            "creates: the managed policy only lets it write its own logs, and its one other permission is "
            "s3:PutBucketNotification on the content bucket. It never touches objects or pipeline data.",
        )
