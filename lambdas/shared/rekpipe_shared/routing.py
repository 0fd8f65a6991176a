"""The message that sends a task to its work queue: one shape for the router and the operator CLI.

route_task sends it when a task becomes PENDING; ``rekpipe redrive --stuck`` sends the same message
for a task whose stream record or queue message was lost. The consumer's claim makes a duplicate
message a no-op, so sending it twice is always safe; not sending it loses the task.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


def route_message(task: Mapping[str, Any], *, run: int) -> dict[str, Any]:
    """The work-queue message body of one run of a task."""
    return {
        "task_id": task["task_id"],
        "bucket": task["bucket"],
        "key": task["object_key"],
        "version_id": task.get("version_id"),
        "media_type": task["media_type"],
        "run": run,
    }


def send_to_queue(sqs: Any, queues: Mapping[str, str], task: Mapping[str, Any], *, run: int) -> str:
    """Send one task's message to the queue of its media type; returns the queue URL.

    Raises
    ------
    ValueError
        The task's media type has no queue (nothing is sent).
    """
    queue_url = queues.get(str(task.get("media_type")))
    if queue_url is None:
        raise ValueError(f"task {task['task_id']} has unknown media type {task.get('media_type')!r}")
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(route_message(task, run=run)))
    return queue_url


STREAM_FILTER_PATTERNS: tuple[dict[str, Any], ...] = (
    {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"media_type": {"S": [{"exists": True}]}}}},
    {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"prev_status": {"S": [{"exists": True}]}}}},
)
"""The task-table stream records route_task acts on: a new task (tasks alone carry ``media_type``;
counter and marker items do not), or a change of status (only such a write leaves ``prev_status``
on the item, ``rekpipe_shared.tasks``). Everything else (a recorded output, a lease renewal, the
counters' own writes) never invokes it. Patterns are ORed; the syntax is Lambda's event filtering
("Control which events Lambda sends to your function", Lambda Developer Guide: DynamoDB records
are filtered on their ``dynamodb`` JSON, with ``exists`` on a leaf)."""
