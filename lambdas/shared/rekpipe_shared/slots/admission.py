"""Admission: the tick sends QUEUED videos from the task table's video backlog to the video queue, so
open executions stay near ``limit + headroom`` for a backlog of any size (the task table keeps a backlog
durably for any time, where SQS keeps a message 14 days at most).

A video leaves the backlog only when start_video_workflow claims it (then starts its execution, or
finishes it from reused results). Until then each tick sends it again, oldest first, instead of newer
ones: a slow or failing start_video_workflow therefore admits nothing new, and the duplicates are
no-ops for its claim. Admission runs on every tick and whenever room is made (a job ended, an execution
was cancelled, the limit changed), so slots do not idle until the next tick while a backlog exists. Room
made twice within one start's latency (a second or two, from claim to ``want``) can admit a video more than
its share; such extra executions only wait, as waiters, and stay bounded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.aws import error_code
from rekpipe_shared.constants import MEDIA_VIDEO
from rekpipe_shared.routing import send_to_queue

if TYPE_CHECKING:
    from rekpipe_shared.tasks import TaskTable

logger = logging.getLogger(__name__)


class Admission:
    """Send up to n backlog videos, oldest first, to the video queue.

    Parameters
    ----------
    tasks: TaskTable
        The task table (its ``in_flight`` index partition ``VIDEO_BACKLOG`` lists them oldest first).
    sqs: Any
        An SQS client.
    video_queue_url: str
        The video work queue, consumed by start_video_workflow.
    """

    def __init__(self, tasks: TaskTable, sqs: Any, video_queue_url: str) -> None:
        self.tasks, self.sqs, self.queues = tasks, sqs, {MEDIA_VIDEO: video_queue_url}

    def __call__(self, count: int) -> int:
        sent = 0
        for task in self.tasks.iter_video_backlog(page_size=max(1, min(count, 100))):
            if sent >= count:
                break
            try:  # mark_queued counted this run already
                send_to_queue(self.sqs, self.queues, task, run=int(task.get("run", 1)))
                sent += 1
            except (ClientError, BotoCoreError) as error:  # one task's failure never stops the others (D8)
                logger.warning("admission of %s failed: %s", task["task_id"],
                               error_code(error) if isinstance(error, ClientError) else error)
        return sent

