"""Recovery: the scheduled search for stuck tasks whose metrics feed the stuck-task alarms.

``find_stuck_tasks`` reads only the task table's sparse ``in_flight`` index and asks Step
Functions whether a video task's execution still runs. It changes nothing; the operator recovers
with ``rekpipe redrive --stuck``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from rekpipe_shared.schema import (
    IN_FLIGHT_INDEX,
    METRICS_NAMESPACE,
    PIPELINE_SETTINGS_ENV,
    RESULT_INDEX_TABLE_NAME_ENV,
    TASK_TABLE_NAME_ENV,
    VIDEO_STATE_MACHINE_ARN_ENV,
)
from stack.nag import acknowledge_resource
from stack.storage import QUERY, READ_ITEM, grant_table

if TYPE_CHECKING:
    from stack.functions import FunctionFactory, PipelineFunction
    from stack.storage import Storage

FIND_STUCK_EVERY = cdk.Duration.minutes(5)
FIND_STUCK_TIMEOUT = cdk.Duration.seconds(120)
SERVICE = "find_stuck_tasks"
STUCK_METRICS = {
    "StuckPendingTasks": "PENDING tasks older than stuck_pending_minutes: their stream record failed routing. "
                         "Recover with `rekpipe redrive --stuck --status PENDING`.",
    "StuckQueuedTasks": "QUEUED tasks older than stuck_queued_minutes: their queue message is presumed lost. "
                        "Recover with `rekpipe redrive --stuck --status QUEUED` (or redrive the DLQs first).",
    "StuckInProgressTasks": "IN_PROGRESS tasks with no live attempt (lease ran out, or execution not RUNNING). "
                            "Recover with `rekpipe redrive --stuck --status IN_PROGRESS`.",
}
"""Metric name -> alarm description; the function publishes one datapoint of each per run."""


class StuckTaskWatch(Construct):
    """The ``find_stuck_tasks`` function, its schedule and its metrics.

    Parameters
    ----------
    factory: FunctionFactory
    storage: Storage
    executions_arn: str
        ARN pattern of the video state machine's executions (DescribeExecution).

    Attributes
    ----------
    function: PipelineFunction
    metrics: dict[str, cloudwatch.Metric]
        Metric name -> the metric the function publishes (Maximum over the schedule's period).
    """

    def __init__(self, scope: Construct, id_: str, *, factory: FunctionFactory, storage: Storage,
                 executions_arn: str) -> None:
        super().__init__(scope, id_)
        self.function: PipelineFunction = factory.create(
            self, "FindStuckTasks", name=SERVICE, timeout=FIND_STUCK_TIMEOUT,
            description="Counts in-flight tasks with no live owner past their expected bound (for the alarms)",
            environment=(TASK_TABLE_NAME_ENV, VIDEO_STATE_MACHINE_ARN_ENV, RESULT_INDEX_TABLE_NAME_ENV,
                         PIPELINE_SETTINGS_ENV),
        )
        grant_table(self.function.function, storage.task_table, QUERY, indexes=[IN_FLIGHT_INDEX])
        # A video waiting on an identical video's lead: read the lead, then the leader's task.
        grant_table(self.function.function, storage.task_table, READ_ITEM)
        grant_table(self.function.function, storage.result_index_table, READ_ITEM)
        self.function.add_to_policy(iam.PolicyStatement(actions=["states:DescribeExecution"],
                                                        resources=[executions_arn]))
        acknowledge_resource(
            self.function.role, executions_arn,
            "find_stuck_tasks asks whether a long IN_PROGRESS video task's execution is still RUNNING; execution "
            "names are per task, so DescribeExecution is allowed on executions of this one state machine only.",
        )
        # No DLQ: a missed run changes nothing and the next one, minutes later, counts again.
        events.Rule(
            self, "FindStuckTasksSchedule",
            description="Counts stuck tasks for the stuck-task alarms",
            schedule=events.Schedule.rate(FIND_STUCK_EVERY),
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=0)],
        )
        self.metrics = {
            name: cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=name, dimensions_map={"service": SERVICE},
                                    statistic="Maximum", period=FIND_STUCK_EVERY)
            for name in STUCK_METRICS
        }
