"""The Rekognition pipeline stack: composes the parts and publishes what the CLI needs as outputs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from rekpipe_shared.schema import (
    IMAGE_QUEUE_URL_ENV,
    METRICS_NAMESPACE,
    OUTPUT_BUCKET_ENV,
    PIPELINE_SETTINGS_ENV,
    RATE_LIMIT_TABLE_NAME_ENV,
    REKOGNITION_ROLE_ARN_ENV,
    RESULT_INDEX_TABLE_NAME_ENV,
    SEMAPHORE_TABLE_NAME_ENV,
    SLOT_QUEUE_URL_ENV,
    TASK_TABLE_NAME_ENV,
    VIDEO_QUEUE_URL_ENV,
    VIDEO_STATE_MACHINE_ARN_ENV,
    VIDEO_TOPIC_ARN_ENV,
)
from stack.backfill import Backfill
from stack.functions import FunctionFactory
from stack.images import ANALYZE_IMAGE_TIMEOUT, ImageAnalysis
from stack.ingestion import Ingestion
from stack.layer import SharedLayer
from stack.monitoring import Monitoring
from stack.permissions import rekognition_statements
from stack.recovery import STUCK_METRICS, StuckTaskWatch
from stack.storage import BATCH_REPORT_PREFIX, INVENTORY_PREFIX, MANIFEST_PREFIX, Storage
from stack.videos import START_WORKFLOW_TIMEOUT, VideoAnalysis

if TYPE_CHECKING:
    from constructs import Construct

    from rekpipe_shared.settings import PipelineSettings

METRICS_NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
LOG_LEVEL_ENV = "POWERTOOLS_LOG_LEVEL"
LOG_LEVEL = "INFO"


class RekognitionPipelineStack(cdk.Stack):
    """Everything the pipeline runs on, built from validated settings.

    Parameters
    ----------
    settings: PipelineSettings
        Typed, validated settings; each part receives only the values it needs.
    **kwargs
        ``cdk.Stack`` options (``env``, ``description``...).
    """

    def __init__(self, scope: Construct, id_: str, *, settings: PipelineSettings, **kwargs: Any) -> None:
        kwargs.setdefault("description", "Analyses images and videos in S3 with Amazon Rekognition")
        super().__init__(scope, id_, **kwargs)
        self.settings = settings

        self.storage = Storage(self, "Storage", output_retention_days=settings.output_retention_days)
        self.layer = SharedLayer(self, "SharedLayer")
        self.functions = FunctionFactory(
            self, "Functions", layer=self.layer.layer, log_retention_days=settings.log_retention_days,
            environment={PIPELINE_SETTINGS_ENV: settings.to_json()},
            every_function={METRICS_NAMESPACE_ENV: METRICS_NAMESPACE, LOG_LEVEL_ENV: LOG_LEVEL},
        )
        self.ingestion = Ingestion(self, "Ingestion", factory=self.functions, storage=self.storage,
                                   image_consumer_timeout=ANALYZE_IMAGE_TIMEOUT,
                                   video_consumer_timeout=START_WORKFLOW_TIMEOUT)
        self.images = ImageAnalysis(
            self, "Images", factory=self.functions, storage=self.storage, queue=self.ingestion.image_queue,
            batch_size=settings.image_batch_size, max_concurrency=settings.image_max_concurrency,
            rekognition_statements=rekognition_statements(
                self, settings.all_image_operations, images=True,
                face_collection_id=settings.face_collection_id,
                custom_labels_project_version_arn=settings.custom_labels_project_version_arn,
            ),
        )
        self.videos = VideoAnalysis(
            self, "Videos", factory=self.functions, storage=self.storage, queue=self.ingestion.video_queue,
            operations=settings.video_operations, face_collection_id=settings.face_collection_id,
            slot_wait_seconds=settings.video_slot_wait_seconds, job_wait_seconds=settings.video_job_wait_seconds,
            heartbeat_seconds=settings.video_slot_heartbeat_seconds,
            get_retry_seconds=settings.video_get_retry_seconds,
            map_max_concurrency=settings.video_max_concurrency,
            log_retention=self.functions.log_retention, log_key=self.functions.log_key,
        )
        # route_task leaves videos in the backlog and nudges the slot dispatcher with a tick (SendMessage only).
        self.ingestion.route_task.add_to_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.videos.slots.queue.queue_arn]))
        self.recovery = StuckTaskWatch(self, "Recovery", factory=self.functions, storage=self.storage,
                                       executions_arn=self.videos.executions_arn)
        self.backfill = Backfill(self, "Backfill", ingest_batch=self.ingestion.ingest_batch.function,
                                 manifest_bucket=self.storage.inventory_bucket)

        # Each function that reads a variable gets the same value: the embedded runtime runs them in one process.
        for name, value in {
            TASK_TABLE_NAME_ENV: self.storage.task_table.table_name,
            SEMAPHORE_TABLE_NAME_ENV: self.storage.semaphore_table.table_name,
            RATE_LIMIT_TABLE_NAME_ENV: self.storage.rate_limit_table.table_name,
            RESULT_INDEX_TABLE_NAME_ENV: self.storage.result_index_table.table_name,
            OUTPUT_BUCKET_ENV: self.storage.output_bucket.bucket_name,
            IMAGE_QUEUE_URL_ENV: self.ingestion.image_queue.queue_url,
            VIDEO_QUEUE_URL_ENV: self.ingestion.video_queue.queue_url,
            VIDEO_STATE_MACHINE_ARN_ENV: self.videos.state_machine_arn,
            VIDEO_TOPIC_ARN_ENV: self.videos.topic.topic_arn,
            REKOGNITION_ROLE_ARN_ENV: self.videos.rekognition_role.role_arn,
            SLOT_QUEUE_URL_ENV: self.videos.slots.queue.queue_url,
        }.items():
            self.functions.set_environment(name, value)

        self.dead_letter_queues = {
            "ImageDlq": self.ingestion.image_dlq,
            "VideoDlq": self.ingestion.video_dlq,
            "IngestS3Dlq": self.ingestion.ingest_dlq,
            "RouteTaskFailures": self.ingestion.route_failures,
            "JobCompletedDlq": self.videos.job_completed_dlq,
            "VideoEventsDlq": self.videos.events_dlq,
            "SlotDlq": self.videos.slots.dlq,
        }
        self.monitoring = Monitoring(
            self, "Monitoring", dead_letter_queues=self.dead_letter_queues,
            work_queues={"ImageQueue": self.ingestion.image_queue, "VideoQueue": self.ingestion.video_queue,
                         "JobCompletedQueue": self.videos.job_completed_queue},
            state_machine=self.videos.state_machine, image_function=self.images.analyze_image.function,
            stuck_task_metrics={name: (self.recovery.metrics[name], description)
                                for name, description in STUCK_METRICS.items()},
            threshold_metrics=self.videos.slots.alarm_metrics,
        )
        self._outputs()

    def _outputs(self) -> None:
        storage, ingestion, videos = self.storage, self.ingestion, self.videos
        outputs = {
            "ContentBucketName": (storage.content_bucket.bucket_name, "Upload images and videos here"),
            "ExistingContentBucketName": (storage.existing_content_bucket.bucket_name, "Backfill source bucket"),
            "InventoryBucketName": (storage.inventory_bucket.bucket_name,
                                    "Manifests, S3 Inventory, Batch Operations reports and access logs"),
            "ManifestBucketName": (storage.inventory_bucket.bucket_name, "Where the CLI uploads backfill manifests"),
            "ManifestPrefix": (MANIFEST_PREFIX, "Key prefix for CSV manifests (the Batch Operations role reads it)"),
            "InventoryPrefix": (INVENTORY_PREFIX, "Key prefix of S3 Inventory reports of the existing-content bucket"),
            "BatchReportPrefix": (BATCH_REPORT_PREFIX, "Key prefix for Batch Operations completion reports"),
            "OutputBucketName": (storage.output_bucket.bucket_name, "Analysis results and manifests"),
            "TaskTableName": (storage.task_table.table_name, "One item per object version"),
            "SemaphoreTableName": (storage.semaphore_table.table_name, "Rekognition Video job slots (the slot dispatcher's state)"),
            "RateLimitTableName": (storage.rate_limit_table.table_name,
                                   "Per-second Get* call counts shared under the TPS quota"),
            "ResultIndexTableName": (storage.result_index_table.table_name,
                                     "Stored results by content identity, operation and options (reuse)"),
            "ImageQueueUrl": (ingestion.image_queue.queue_url, "Image tasks"),
            "VideoQueueUrl": (ingestion.video_queue.queue_url, "Video tasks"),
            "ImageDlqUrl": (ingestion.image_dlq.queue_url, "Image tasks given up on"),
            "VideoDlqUrl": (ingestion.video_dlq.queue_url, "Video tasks given up on"),
            "IngestS3DlqUrl": (ingestion.ingest_dlq.queue_url, "S3 notices ingest_s3 failed on"),
            "RouteTaskFailuresUrl": (ingestion.route_failures.queue_url, "Stream batches route_task failed on"),
            "JobCompletedQueueUrl": (videos.job_completed_queue.queue_url, "Rekognition completion notices"),
            "JobCompletedDlqUrl": (videos.job_completed_dlq.queue_url, "Completion notices given up on"),
            "VideoEventsDlqUrl": (videos.events_dlq.queue_url, "Slot clean-up events given up on"),
            "SlotQueueUrl": (videos.slots.queue.queue_url,
                             "The slot dispatcher's FIFO queue (`rekpipe slots --limit N` sends set_limit here)"),
            "SlotDlqUrl": (videos.slots.dlq.queue_url, "Slot messages the dispatcher gave up on"),
            "VideoStateMachineArn": (videos.state_machine.state_machine_arn, "One execution per video"),
            "VideoTopicArn": (videos.topic.topic_arn, "Rekognition Video completion notices"),
            "RekognitionRoleArn": (videos.rekognition_role.role_arn, "Role Rekognition publishes notices with"),
            "BatchOperationsRoleArn": (self.backfill.role.role_arn, "Role for S3 Batch Operations backfill jobs"),
            "IngestBatchFunctionArn": (ingestion.ingest_batch.function.function_arn,
                                       "Function S3 Batch Operations invokes"),
            "IngestS3FunctionArn": (ingestion.ingest_s3.function.function_arn,
                                    "Function `rekpipe redrive --dlq` re-ingests failed S3 notices with"),
            "RecordEndedExecutionFunctionArn": (
                videos.functions["record_ended_execution"].function.function_arn,
                "Function `rekpipe redrive --dlq` re-runs failed records of ended video executions with"),
            "StuckTaskBounds": (json.dumps(self.settings.stuck_after_seconds, sort_keys=True),
                                "Seconds after which a PENDING, QUEUED or IN_PROGRESS task counts as stuck"),
            "AlarmTopicArn": (self.monitoring.alarm_topic.topic_arn, "Subscribe to receive the pipeline's alarms"),
            "DashboardName": (self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard of the pipeline"),
        }
        for id_, (value, description) in outputs.items():
            cdk.CfnOutput(self, id_, value=value, description=description)
