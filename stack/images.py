"""Images: ``analyze_image`` drains the image queue at a rate set by batch size and concurrency."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from rekpipe_shared.schema import (
    IMAGE_QUEUE_URL_ENV,
    OUTPUT_BUCKET_ENV,
    PIPELINE_SETTINGS_ENV,
    RATE_LIMIT_TABLE_NAME_ENV,
    RESULT_INDEX_TABLE_NAME_ENV,
    SYNC_OUTPUT_PREFIX,
    TASK_TABLE_NAME_ENV,
)
from stack.ingestion import READ_OBJECT_ACTIONS
from stack.nag import acknowledge, acknowledge_objects, wildcard_resource
from stack.permissions import (
    REKOGNITION_STAR_REASON,
    SERVICE_QUOTAS_STAR_REASON,
    object_statement,
    service_quotas_statement,
)
from stack.storage import DELETE_ITEM, PUT_ITEM, READ_ITEM, UPDATE_ITEM, grant_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_sqs as sqs

    from stack.functions import FunctionFactory
    from stack.storage import Storage

ANALYZE_IMAGE_TIMEOUT = cdk.Duration.seconds(120)
ANALYZE_IMAGE_MEMORY = 128
"""analyze_image never holds an image (Rekognition reads it from S3): it mostly waits for its place
under the quota and for Rekognition, and that wait is billed per GB-second, so it gets the least."""


class ImageAnalysis(Construct):
    """``analyze_image`` and its SQS event source.

    Parameters
    ----------
    factory: FunctionFactory
    storage: Storage
    queue: sqs.IQueue
        The image work queue.
    batch_size: int
        Messages per invocation.
    max_concurrency: int
        Most concurrent invocations the event source starts (no reserved concurrency needed).
    rekognition_statements: Sequence[iam.PolicyStatement]
        The image APIs of the configured analyses (see ``stack.permissions``).

    Attributes
    ----------
    analyze_image: PipelineFunction
    """

    def __init__(self, scope: Construct, id_: str, *, factory: FunctionFactory, storage: Storage,
                 queue: sqs.IQueue, batch_size: int, max_concurrency: int,
                 rekognition_statements: Sequence[iam.PolicyStatement]) -> None:
        super().__init__(scope, id_)
        self.analyze_image = factory.create(
            self, "AnalyzeImage", name="analyze_image", timeout=ANALYZE_IMAGE_TIMEOUT,
            memory_size=ANALYZE_IMAGE_MEMORY, description="Runs the configured Rekognition image analyses",
            environment=(TASK_TABLE_NAME_ENV, OUTPUT_BUCKET_ENV, IMAGE_QUEUE_URL_ENV, RATE_LIMIT_TABLE_NAME_ENV,
                         RESULT_INDEX_TABLE_NAME_ENV, PIPELINE_SETTINGS_ENV),
        )
        function = self.analyze_image.function
        function.add_event_source(
            sources.SqsEventSource(queue, batch_size=batch_size, max_concurrency=max_concurrency,
                                   report_batch_item_failures=True)
        )
        grant_table(function, storage.task_table, READ_ITEM + UPDATE_ITEM)
        # Every image call takes its place in the shared per-second windows (rekpipe_shared.pacing).
        grant_table(function, storage.rate_limit_table, UPDATE_ITEM)
        # Result reuse: look up, claim (PutItem with a condition), withdraw a lead (DeleteItem), count (UpdateItem).
        grant_table(function, storage.result_index_table, READ_ITEM + PUT_ITEM + DELETE_ITEM + UPDATE_ITEM)
        self.analyze_image.add_to_policy(*rekognition_statements, service_quotas_statement())
        reasons = [SERVICE_QUOTAS_STAR_REASON]
        if any("*" in statement.resources for statement in rekognition_statements):
            reasons.insert(0, REKOGNITION_STAR_REASON)
        acknowledge(self.analyze_image.role, wildcard_resource("*"), " ".join(reasons))
        # Rekognition reads the image from S3 with the caller's permissions.
        for bucket in storage.content_buckets:
            self.analyze_image.add_to_policy(object_statement(READ_OBJECT_ACTIONS, bucket.bucket_arn))
            acknowledge_objects(self.analyze_image.role, bucket.bucket_arn,
                                 "Rekognition reads each image with the caller's permissions; the keys are "
                                 "whatever is uploaded or backfilled, so any key of this one bucket is readable "
                                 "(GetObject/GetObjectVersion only).")
        # GetObject: the source of a CopyObject that reuses an identical image's stored result.
        self.analyze_image.add_to_policy(
            object_statement(["s3:GetObject", "s3:PutObject"], storage.output_bucket.bucket_arn,
                             f"{SYNC_OUTPUT_PREFIX}/")
        )
        acknowledge_objects(self.analyze_image.role, storage.output_bucket.bucket_arn,
                             "Image results, manifests and latest.json pointers are written under "
                             "sync/<bucket>/<key>/..., keys known only at run time; a reused result is copied "
                             "(CopyObject reads the source) from another image's results there. GetObject and "
                             "PutObject only, and only under the sync/ prefix.", f"{SYNC_OUTPUT_PREFIX}/")

