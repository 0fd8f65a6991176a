"""Turning "an object version exists" into a task: shared by the S3-event and Batch Operations paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rekpipe_shared.media import media_type_for, precheck_failure, skip_reason
from rekpipe_shared.operations import operations_for
from rekpipe_shared.schema import MEDIA_IMAGE
from rekpipe_shared.tasks import NewTask

if TYPE_CHECKING:
    from rekpipe_shared.settings import PipelineSettings
    from rekpipe_shared.tasks import TaskTable


S3_TEST_EVENT = "s3:TestEvent"


def is_s3_test_event(event: Any) -> bool:
    """True for the message S3 sends when a notification configuration is created or changed.

    It is ``{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time", "Bucket", "RequestId", "HostId"}``,
    with no ``Records`` (Amazon S3 User Guide, "Event message structure"): nothing to ingest.
    """
    return isinstance(event, dict) and "Records" not in event and event.get("Event") == S3_TEST_EVENT


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one object version: ``created``, ``duplicate``, ``rejected`` or ``skipped``."""

    outcome: str
    reason: str
    task_id: str | None = None


def ingest_object(
    tasks: TaskTable,
    settings: PipelineSettings,
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str | None,
    size: int,
    source: str,
) -> IngestOutcome:
    """Write the task of one object version, once.

    Unsupported objects are skipped with the reason; objects that would certainly fail (empty,
    too large) are recorded FAILED at once, so nothing is lost and nothing is billed.
    """
    reason = skip_reason(key, size)
    if reason:
        return IngestOutcome("skipped", reason)
    media_type = media_type_for(key)
    assert media_type is not None  # skip_reason covers unsupported types
    if media_type == MEDIA_IMAGE:
        operations = operations_for(key, settings.image_operations, settings.image_prefix_operations)
    else:
        operations = tuple(settings.video_operations)
    task = NewTask(bucket=bucket, key=key, version_id=version_id, etag=etag, size=size,
                   media_type=media_type, operations=operations, source=source)
    if not operations:
        return IngestOutcome("skipped", f"no {media_type} operations are configured", task.task_id)
    failure = precheck_failure(media_type, size)
    if failure:
        created = tasks.create_failed(task, *failure)
        return IngestOutcome("rejected" if created else "duplicate", failure[1], task.task_id)
    if tasks.create(task):
        return IngestOutcome("created", f"{media_type} task for {', '.join(operations)}", task.task_id)
    return IngestOutcome("duplicate", "this object version is already known; not analysed again", task.task_id)
