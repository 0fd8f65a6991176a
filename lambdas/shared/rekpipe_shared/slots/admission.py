"""Admission: the tick starts executions from the QUEUED backlog in the task table, so open executions
stay near ``limit + headroom`` for a backlog of any size (the task table keeps a backlog durably for
any time, where SQS keeps a message 14 days at most)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from rekpipe_shared.aws import error_code
from rekpipe_shared.constants import MEDIA_VIDEO, STATUS_QUEUED
from rekpipe_shared.tasks import execution_name

if TYPE_CHECKING:
    from rekpipe_shared.tasks import TaskTable

logger = logging.getLogger(__name__)
VIDEO_LEASE_SECONDS = 7 * 24 * 3600
"""A video task is owned by its execution; the lease only stops the image-style reclaim."""


def execution_input(task: dict[str, Any], run: int) -> dict[str, Any]:
    """The video state machine's input for one claimed task."""
    return {
        "task": {
            "task_id": task["task_id"], "bucket": task["bucket"], "key": task["object_key"],
            "version_id": task.get("version_id"), "etag": task.get("etag"), "run": run,
        },
        "operations": list(task["operations"]),
    }


class Admission:
    """Start up to n video executions, oldest QUEUED task first.

    Parameters
    ----------
    tasks: TaskTable
        The task table (its sparse ``in_flight`` index lists QUEUED tasks oldest first).
    sfn: Any
        A Step Functions client.
    state_machine_arn: str
        The video state machine.
    """

    def __init__(self, tasks: TaskTable, sfn: Any, state_machine_arn: str) -> None:
        self.tasks, self.sfn, self.state_machine_arn = tasks, sfn, state_machine_arn

    def __call__(self, count: int) -> int:
        started = 0
        for task in self.tasks.iter_in_flight(STATUS_QUEUED):
            if started >= count:
                break
            if task.get("media_type") != MEDIA_VIDEO:
                continue
            try:
                started += self.start(task["task_id"])
            except ClientError as error:  # one task's failure never stops admission of the others (D8)
                logger.warning("admission of %s failed: %s", task["task_id"], error_code(error))
        return started

    def start(self, task_id: str) -> int:
        """Claim one task and start its execution; 0 if another admission claimed it first."""
        task = self.tasks.claim(task_id, lease_seconds=VIDEO_LEASE_SECONDS)
        if task is None:
            return 0
        run = int(task.get("run", 1))
        try:
            response = self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=execution_name(task_id, run),
                input=json.dumps(execution_input(task, run)),
            )
        except ClientError as error:
            if error_code(error) != "ExecutionAlreadyExists":
                raise
            return 0
        self.tasks.set_attributes(task_id, execution_arn=response["executionArn"])
        return 1
