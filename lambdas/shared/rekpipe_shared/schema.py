"""The pipeline's schema: environment names, table keys and indexes, statuses, manifest formats and limits.

The one module the stack imports from the layer (it imports no boto3, and ``tests/infra`` checks that the stack
loads no boto3-facing module), so the stack that creates a table or sets a variable and the handler that reads it
can never disagree, and every value here is defined once.
Every variable except ``POWERTOOLS_SERVICE_NAME`` has the same value in every function of a stack,
which is what lets the embedded runtime run all the handlers in one process.
"""

from __future__ import annotations

# --- environment variable names -------------------------------------------------------------
TASK_TABLE_NAME_ENV = "TASK_TABLE_NAME"
SEMAPHORE_TABLE_NAME_ENV = "SEMAPHORE_TABLE_NAME"
OUTPUT_BUCKET_ENV = "OUTPUT_BUCKET"
IMAGE_QUEUE_URL_ENV = "IMAGE_QUEUE_URL"
VIDEO_QUEUE_URL_ENV = "VIDEO_QUEUE_URL"
VIDEO_STATE_MACHINE_ARN_ENV = "VIDEO_STATE_MACHINE_ARN"
VIDEO_TOPIC_ARN_ENV = "VIDEO_TOPIC_ARN"
REKOGNITION_ROLE_ARN_ENV = "REKOGNITION_ROLE_ARN"
RESULT_INDEX_TABLE_NAME_ENV = "RESULT_INDEX_TABLE_NAME"
"""Table of stored results by (content identity, operation, options): ``rekpipe_shared.result_index``."""
PIPELINE_SETTINGS_ENV = "PIPELINE_SETTINGS"
"""JSON of the runtime part of :class:`rekpipe_shared.settings.PipelineSettings`."""
SERVICE_NAME_ENV = "POWERTOOLS_SERVICE_NAME"
"""Also names the function's folder under ``lambdas/``; the embedded runtime dispatches on it."""

METRICS_NAMESPACE = "RekognitionPipeline"

# --- task statuses -----------------------------------------------------------------------------
STATUS_PENDING = "PENDING"
STATUS_QUEUED = "QUEUED"
STATUS_IN_PROGRESS = "IN_PROGRESS"
STATUS_SUCCEEDED = "SUCCEEDED"
STATUS_FAILED = "FAILED"
STATUS_PARTIAL = "PARTIAL"
TERMINAL_STATUSES = frozenset({STATUS_SUCCEEDED, STATUS_FAILED, STATUS_PARTIAL})
IN_FLIGHT_STATUSES = (STATUS_PENDING, STATUS_QUEUED, STATUS_IN_PROGRESS)
"""Statuses listed by the sparse ``in_flight`` index of the task table, in pipeline order."""
ATTENTION_STATUSES = frozenset({STATUS_FAILED, STATUS_PARTIAL})
"""Statuses listed by the sparse ``attention`` index of the task table."""
ALL_STATUSES = (STATUS_PENDING, STATUS_QUEUED, STATUS_IN_PROGRESS, STATUS_SUCCEEDED, STATUS_FAILED, STATUS_PARTIAL)

# --- media -------------------------------------------------------------------------------------
MEDIA_IMAGE = "image"
MEDIA_VIDEO = "video"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov"})
MAX_IMAGE_BYTES_S3 = 15 * 1024 * 1024
MAX_VIDEO_BYTES = 10 * 1024 * 1024 * 1024

# --- output layout -----------------------------------------------------------------------------
SYNC_OUTPUT_PREFIX = "sync"
ASYNC_OUTPUT_PREFIX = "async"
MANIFEST_NAME = "manifest.json"
LATEST_POINTER_NAME = "latest.json"
LONG_KEYS_SEGMENT = "_long-keys"
"""Where keys too long for the readable layout go; not a valid bucket name, so never a bucket's folder."""
MAX_S3_KEY_BYTES = 1024

# --- video -------------------------------------------------------------------------------------
RATE_LIMIT_TABLE_NAME_ENV = "RATE_LIMIT_TABLE_NAME"
"""Per-second call counters that every Get* caller shares, so together they stay under the TPS quota."""
SLOT_QUEUE_URL_ENV = "SLOT_QUEUE_URL"
"""The slot dispatcher's FIFO queue: want, done, cancel, tick and set_limit messages, one message group."""
SLOT_MESSAGE_GROUP = "video-slots"
"""The one MessageGroupId of the slot queue: Lambda hands one batch of a group at a time to one consumer."""

# --- task table ----------------------------------------------------------------------------------
TASK_ID_ATTR = "task_id"
UPDATED_AT_ATTR = "updated_at"
ATTENTION_INDEX = "attention"
"""Sparse GSI (``attention_status``, ``updated_at``): only FAILED and PARTIAL tasks carry ``attention_status``."""
ATTENTION_ATTR = "attention_status"
IN_FLIGHT_INDEX = "in_flight"
"""Sparse GSI (``in_flight_status``, ``updated_at``): only PENDING, QUEUED and IN_PROGRESS tasks carry
``in_flight_status``, so it stays as small as the work in progress while millions succeed, and the
oldest task of each status is one query away."""
IN_FLIGHT_ATTR = "in_flight_status"
PREV_STATUS_ATTR = "prev_status"
"""Set (to the status left) by a write that changes the status, removed by every other write."""
TTL_ATTR = "expires_at"
"""The TTL attribute of every table that has one (tasks' bookkeeping items, slots, rate counters)."""

# --- slot table ----------------------------------------------------------------------------------
SLOT_PK_ATTR = "pk"
SLOT_SK_ATTR = "sk"

# --- Get* rate counters and result index -----------------------------------------------------------
RATE_KEY_ATTR = "window"
REUSE_KEY_ATTR = "reuse_key"

# --- S3 Batch Operations manifests ------------------------------------------------------------------
CSV_MANIFEST_FORMAT = "S3BatchOperations_CSV_20180820"
INVENTORY_MANIFEST_FORMAT = "S3InventoryReport_CSV_20161130"
MANIFEST_FORMATS = (CSV_MANIFEST_FORMAT, INVENTORY_MANIFEST_FORMAT)
"""The manifest formats the backfill writes and the local Batch Operations runner reads (S3 Control API
Reference, JobManifestSpec)."""
BATCH_REPORT_FORMAT = "Report_CSV_20180820"
BATCH_INVOCATION_SCHEMA_VERSION = "2.0"
"""The Lambda invocation schema ``ingest_batch`` reads (S3 User Guide, "Using Lambda with Batch Operations")."""

# --- limits --------------------------------------------------------------------------------------
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
"""The values CloudWatch Logs accepts for a retention period (CloudWatch Logs API Reference, PutRetentionPolicy)."""
