"""Admission: the tick sends QUEUED videos from the task table's video backlog to the video queue, so
open executions stay near ``limit + headroom`` for a backlog of any size (the task table keeps a backlog
durably for any time, where SQS keeps a message 14 days at most).

A video is sent, then marked admitted (``tasks.VIDEO_ADMITTED``): a crash in between sends it again later,
a no-op for start_video_workflow's claim. Admitted videos count against the room until they are claimed,
so a slow or failing start_video_workflow never makes admission send more; one still unclaimed after
:data:`RESEND_AFTER_SECONDS` is sent again (its message was lost or went to the video DLQ). Admission runs on
every tick and whenever room is made for an execution (one ended, the limit changed, an orphan's job ended),
so slots do not idle until the next tick while a backlog exists; between a claim and its ``want`` (a second or two) a
video is counted nowhere, which can admit one more now and then, as a waiter.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.aws import error_code
from rekpipe_shared.routing import send_to_queue
from rekpipe_shared.schema import MEDIA_VIDEO, STATUS_IN_PROGRESS

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.tasks import TaskTable

logger = logging.getLogger(__name__)


RESEND_AFTER_SECONDS = 300
"""An admitted video unclaimed this long is sent again: start_video_workflow claims within seconds."""


class Admission:
    """Send up to n videos, oldest first, from the backlog to the video queue.

    Parameters
    ----------
    tasks: TaskTable
        The task table (its ``in_flight`` index partitions ``VIDEO_BACKLOG`` and ``VIDEO_ADMITTED``).
    sqs: Any
        An SQS client.
    video_queue_url: str
        The video work queue, consumed by start_video_workflow.
    clock: Callable[[], float]
        Wall-clock seconds (``updated_at`` is wall-clock time).
    """

    def __init__(self, tasks: TaskTable, sqs: Any, video_queue_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.tasks, self.sqs, self.queues, self.clock = tasks, sqs, {MEDIA_VIDEO: video_queue_url}, clock

    def __call__(self, count: int, *, cap: int | None = None) -> int:
        """Admit up to ``count`` minus the videos admitted and not yet claimed, and never so many that more
        than ``cap`` video executions are open (IN_PROGRESS videos, whose ``want`` may still be on its way,
        plus the admitted); returns how many were sent."""
        admitted = list(self.tasks.iter_video_admitted())
        stale_before = datetime.fromtimestamp(self.clock() - RESEND_AFTER_SECONDS, UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")  # the format of updated_at (tasks.now_iso)
        for task in admitted:
            if str(task.get("updated_at", "")) < stale_before:
                self._send(task, again=True)
        room = count - len(admitted)
        if cap is not None and room > 0:
            room = min(room, cap - self.tasks.count_in_flight(STATUS_IN_PROGRESS, media_type=MEDIA_VIDEO)
                       - len(admitted))
        sent = 0
        if room <= 0:
            return 0
        for task in self.tasks.iter_video_backlog(page_size=max(1, min(room, 100))):
            if sent >= room:
                break
            sent += self._send(task, again=False)
        return sent

    def _send(self, task: dict[str, Any], *, again: bool) -> int:
        try:  # mark_queued counted this run already
            send_to_queue(self.sqs, self.queues, task, run=int(task.get("run", 1)))
        except (ClientError, BotoCoreError) as error:  # one task's failure never stops the others (D8)
            logger.warning("admission of %s failed: %s", task["task_id"],
                           error_code(error) if isinstance(error, ClientError) else error)
            return 0
        try:
            self.tasks.mark_admitted(task["task_id"], again=again)
        except (ClientError, BotoCoreError) as error:  # sent but not marked: the next admission sends it again
            logger.warning("admitted %s but could not mark it: %s", task["task_id"], error)
        return 1
