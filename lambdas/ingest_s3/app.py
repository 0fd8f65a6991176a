"""ingest_s3: turns S3 ObjectCreated notices into tasks, one per object version.

Every record of the event is handled (S3 may batch several); a duplicate notice finds the task
already there and changes nothing, so an object is never analysed or billed twice. The
``s3:TestEvent`` S3 sends when a notification is configured has no records: it is logged and
acknowledged, so it never lands in the DLQ as a false alarm.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source

from rekpipe_shared.ingestion import ingest_object, is_s3_test_event
from rekpipe_shared.schema import METRICS_NAMESPACE, TASK_TABLE_NAME_ENV
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.tasks import TaskTable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "ingest_s3"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

settings = PipelineSettings.from_environment()
tasks = TaskTable(os.environ[TASK_TABLE_NAME_ENV])


@tracer.capture_method
def ingest_records(event: S3Event) -> dict[str, int]:
    """Create the task of every object in the notice; returns counts by outcome."""
    counts: dict[str, int] = {}
    for record in event.records:
        if not record.event_name.startswith("ObjectCreated"):
            logger.info("Ignoring event", extra={"event_name": record.event_name})
            continue
        s3 = record.s3
        # S3 URL-encodes keys in notices ('+' for space, %XX for the rest); Powertools' per-record
        # S3Object.key is the raw value, so decode it here.
        key = unquote_plus(s3.get_object.key)
        outcome = ingest_object(
            tasks,
            settings,
            bucket=s3.bucket.name,
            key=key,
            version_id=s3.get_object.version_id,
            etag=s3.get_object.etag,
            size=int(s3.get_object.size or 0),
            source="s3-event",
        )
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
        logger.info(
            f"Object {outcome.outcome}: {outcome.reason}",
            extra={"bucket": s3.bucket.name, "key": key, "task_id": outcome.task_id},
        )
    if counts.get("created"):
        metrics.add_metric(name="TasksIngested", unit=MetricUnit.Count, value=counts["created"])
    if counts.get("rejected"):
        metrics.add_metric(name="TasksRejected", unit=MetricUnit.Count, value=counts["rejected"])
    if counts.get("duplicate"):
        metrics.add_metric(name="DuplicateNotices", unit=MetricUnit.Count, value=counts["duplicate"])
    return counts


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_s3_test_event(event):
        logger.info("Ignoring S3 test event", extra={"bucket": event.get("Bucket"), "event": event.get("Event")})
        return {"ignored": 1}
    return _ingest(event, context)


@event_source(data_class=S3Event)
def _ingest(event: S3Event, context: LambdaContext) -> dict[str, int]:
    return ingest_records(event)
