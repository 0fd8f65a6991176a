"""Stuck tasks: which in-flight tasks have no live owner, and how each is put back on its way.

A task can be left PENDING (its stream record failed routing and expired), QUEUED (its message
was lost after its retries) or IN_PROGRESS (the attempt died, or its execution ended without
recording an outcome). The sparse ``in_flight`` index lists such tasks oldest first without a
scan; this module judges each one and never touches a task that is really still running:

* PENDING: never routed. Send its queue message (as route_task would), then mark it QUEUED.
* QUEUED: its message is presumed lost. Send the message again; the consumer's claim makes a
  duplicate a no-op. A video parked behind an identical video's analysis (``waiting_for``) is alive
  while that lead stands and its leader's execution is RUNNING. When the lead is gone (the leader
  ended but did not wake it), it is sent again; when the leader's execution ended without a result
  (aborted, timed out, never started), the dead lead is broken and it is sent again, to analyse itself.
* IN_PROGRESS: an image whose lease is still running, or a video whose execution is RUNNING, is
  alive and left alone. Otherwise the task goes back to PENDING (conditional on its lease and on
  being unchanged since it was examined) and the table's stream routes it as a new run.

Used by the ``find_stuck_tasks`` function (metrics and alarms) and by ``rekpipe redrive --stuck``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from rekpipe_shared.aws import error_code
from rekpipe_shared.result_index import STATE_LEADING
from rekpipe_shared.reuse import wake_waiters
from rekpipe_shared.routing import send_to_queue
from rekpipe_shared.schema import (
    MEDIA_VIDEO,
    STATUS_IN_PROGRESS,
    STATUS_PENDING,
    STATUS_QUEUED,
)
from rekpipe_shared.tasks import WAITING_FOR_ATTR, execution_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from rekpipe_shared.result_index import ResultIndex
    from rekpipe_shared.tasks import TaskTable

ACTION_ROUTE = "route"
ACTION_RESEND = "resend"
ACTION_RESET = "reset"
ACTION_TAKEOVER = "takeover"
ACTION_NONE = "leave"


@dataclass(frozen=True)
class Verdict:
    """What one in-flight task needs: ``stuck`` with an ``action``, or left alone with the ``reason``."""

    task: dict[str, Any]
    stuck: bool
    reason: str
    action: str = ACTION_NONE

    @property
    def task_id(self) -> str:
        return str(self.task["task_id"])

    @property
    def uri(self) -> str:
        return f"s3://{self.task.get('bucket', '?')}/{self.task.get('object_key', '?')}"


def iso_before(seconds: float, clock: Callable[[], float] = time.time) -> str:
    """The ISO 8601 UTC time ``seconds`` ago, in the task table's ``updated_at`` format."""
    moment = datetime.fromtimestamp(clock() - seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StuckTaskInspector:
    """Judges in-flight tasks against their lease or their execution.

    Parameters
    ----------
    tasks: TaskTable
    sfn_client: Any
        Step Functions client, for DescribeExecution of video tasks (None: videos are never judged stuck).
    state_machine_arn: str | None
        The video state machine, to name a video task's execution when the task has no ``execution_arn``.
    index: ResultIndex | None
        The result index, to judge a video waiting on an identical video's lead (None: such a task
        is judged like any QUEUED task, and sent again).
    clock: Callable[[], float]
        Epoch seconds (leases).
    """

    def __init__(self, tasks: TaskTable, *, sfn_client: Any = None, state_machine_arn: str | None = None,
                 index: ResultIndex | None = None, clock: Callable[[], float] = time.time) -> None:
        self.tasks = tasks
        self.sfn = sfn_client
        self.state_machine_arn = state_machine_arn
        self.index = index
        self._clock = clock

    def candidates(self, status: str, *, older_than_seconds: float) -> Iterator[Verdict]:
        """Verdicts on every task of ``status`` not updated for ``older_than_seconds``, oldest first."""
        for task in self.tasks.iter_in_flight(status, updated_before=iso_before(older_than_seconds, self._clock)):
            yield self.examine(task)

    def examine(self, task: dict[str, Any]) -> Verdict:
        status = task.get("status")
        if status == STATUS_PENDING:
            return Verdict(task, True, "never routed to its queue (its stream record failed or expired)", ACTION_ROUTE)
        if status == STATUS_QUEUED:
            if task.get(WAITING_FOR_ATTR) and self.index is not None:
                return self._examine_waiter(task)
            return Verdict(task, True, "queued but never picked up: its queue message is presumed lost", ACTION_RESEND)
        if status != STATUS_IN_PROGRESS:
            return Verdict(task, False, f"{status}: not in flight any more")
        if task.get("media_type") == MEDIA_VIDEO:
            return self._examine_video(task)
        lease = int(task.get("lease_until") or 0)
        if lease >= self._clock():
            return Verdict(task, False, f"held by a live attempt (lease until {_epoch_iso(lease)})")
        return Verdict(task, True, "its attempt died: the lease ran out and no retry took it", ACTION_RESET)

    def _examine_video(self, task: dict[str, Any]) -> Verdict:
        execution = self.execution_arn(task)
        if execution is None or self.sfn is None:
            return Verdict(task, False, "cannot tell whether its execution runs (no state machine known)")
        try:
            status = self.sfn.describe_execution(executionArn=execution)["status"]
        except ClientError as error:
            if error_code(error) != "ExecutionDoesNotExist":
                return Verdict(task, False, f"could not check its execution ({error_code(error)}); left alone")
            return Verdict(task, True, "its execution was never started", ACTION_RESET)
        if status == "RUNNING":
            return Verdict(task, False, "its execution is RUNNING")
        return Verdict(task, True, f"its execution ended {status} without recording an outcome", ACTION_RESET)

    def _examine_waiter(self, task: dict[str, Any]) -> Verdict:
        """A video parked behind an identical video's analysis: alive while that lead's execution runs."""
        assert self.index is not None
        waiting = task[WAITING_FOR_ATTR]
        leader_id = str(waiting.get("leader_task_id"))
        lead = self.index.lead(str(waiting.get("reuse_key")))
        if lead is None or lead["state"] != STATE_LEADING or lead["task_id"] != leader_id:
            return Verdict(task, True, "its leader's analysis ended but it was not woken", ACTION_RESEND)
        leader = self.tasks.get(leader_id)
        if leader is not None and leader.get("status") == STATUS_IN_PROGRESS and self.sfn is not None:
            execution = self.execution_arn(leader)
            try:
                running = execution is not None and self.sfn.describe_execution(
                    executionArn=execution)["status"] == "RUNNING"
            except ClientError as error:
                if error_code(error) != "ExecutionDoesNotExist":
                    return Verdict(task, False, f"could not check its leader's execution ({error_code(error)})")
                running = False
            if running:
                return Verdict(task, False, f"waiting for {leader_id}, whose execution is RUNNING")
        return Verdict(task, True, f"its leader {leader_id} holds the lead but its execution ended without a "
                                   "result", ACTION_TAKEOVER)

    def execution_arn(self, task: dict[str, Any]) -> str | None:
        """The task's execution: recorded on the task, else named from its run (start died before recording)."""
        if task.get("execution_arn"):
            return str(task["execution_arn"])
        if not self.state_machine_arn:
            return None
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        return f"{prefix}:{execution_name(str(task['task_id']), int(task.get('run') or 0))}"


class StuckTaskRecovery:
    """Puts stuck tasks back on their way (the CLI's side: it sends queue messages).

    Parameters
    ----------
    tasks: TaskTable
    sqs_client: Any
    queues: Mapping[str, str]
        Media type -> work queue URL.
    index: ResultIndex | None
        The result index, to break the lead of a video whose execution ended without a result.
    """

    def __init__(self, tasks: TaskTable, *, sqs_client: Any, queues: Mapping[str, str],
                 index: ResultIndex | None = None) -> None:
        self.tasks = tasks
        self.sqs = sqs_client
        self.queues = queues
        self.index = index

    def recover(self, verdict: Verdict) -> str:
        """Apply the verdict's action; returns what happened, in a few words."""
        task = verdict.task
        if verdict.action == ACTION_ROUTE:
            send_to_queue(self.sqs, self.queues, task, run=int(task.get("run") or 0) + 1)
            queued = self.tasks.mark_queued(verdict.task_id)
            return "routed" if queued else "routed (it was routed meanwhile; the duplicate is a no-op)"
        if verdict.action == ACTION_RESEND:
            send_to_queue(self.sqs, self.queues, task, run=int(task.get("run") or 0))
            self.tasks.mark_resent(task)
            return "message sent again"
        if verdict.action == ACTION_TAKEOVER:
            waiting = task[WAITING_FOR_ATTR]
            others: list[str] = []
            if self.index is not None:
                lead = self.index.lead(str(waiting["reuse_key"]))
                broken = self.index.break_lead(str(waiting["reuse_key"]), str(waiting["leader_task_id"]),
                                               lead["claimed_at"] if lead else None)
                others = [w for w in broken or [] if w.rpartition(":")[0] != verdict.task_id]
            send_to_queue(self.sqs, self.queues, task, run=int(task.get("run") or 0))
            self.tasks.mark_resent(task)
            if others:
                wake_waiters(self.sqs, self.queues[MEDIA_VIDEO], others)
            return f"dead lead dropped; sent again to analyse itself (and {len(others)} other waiter(s))"
        if verdict.action == ACTION_RESET:
            media = task.get("media_type")
            reset = self.tasks.reset_stuck(task, f"stuck: {verdict.reason}", lease_must_be_expired=media != MEDIA_VIDEO)
            return "re-queued as a new run" if reset else "changed meanwhile; left alone"
        return "left alone"


def _epoch_iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = ["StuckTaskInspector", "StuckTaskRecovery", "Verdict", "iso_before"]
