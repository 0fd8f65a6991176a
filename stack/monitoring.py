"""Monitoring: an alarm on every DLQ, on failed video executions and on image analysis errors,
all notifying one encrypted topic, plus a dashboard of the pipeline's Powertools metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from rekpipe_shared.schema import METRICS_NAMESPACE

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sqs as sqs
    from aws_cdk import aws_stepfunctions as sfn

ALARM_PERIOD = cdk.Duration.minutes(5)
DLQ_PERIOD = cdk.Duration.minutes(1)
POWERTOOLS_DIMENSION = "service"
"""Powertools Metrics adds the service name as this dimension."""
PIPELINE_METRICS = (
    ("ingest_s3", "TasksIngested"),
    ("ingest_batch", "TasksIngested"),
    ("route_task", "TasksRouted"),
    ("analyze_image", "ImagesAnalysed"),
    ("analyze_image", "Throttles"),
    ("start_video_workflow", "VideoExecutionsStarted"),
    ("collect_results", "ResultPagesWritten"),
)


class Monitoring(Construct):
    """Alarms, the topic they notify, and a dashboard.

    Parameters
    ----------
    dead_letter_queues: Mapping[str, sqs.IQueue]
        Every queue whose first message means something was given up on, by a PascalCase name.
    work_queues: Mapping[str, sqs.IQueue]
        Queues to chart (depth and age).
    state_machine: sfn.IStateMachine
    image_function: lambda_.IFunction
        ``analyze_image``, whose errors are alarmed.
    stuck_task_metrics: Mapping[str, tuple[cloudwatch.IMetric, str]] | None
        Alarm name -> (count of stuck tasks, what to do): alarmed when above 0.
    threshold_metrics: Mapping[str, tuple[cloudwatch.IMetric, str, float]] | None
        Alarm name -> (metric, what to do, threshold): alarmed when above the threshold.

    Attributes
    ----------
    alarm_topic: sns.Topic
        Subscribe an address or a chat channel to it.
    alarms: dict[str, cloudwatch.Alarm]
    dashboard: cloudwatch.Dashboard
    """

    def __init__(self, scope: Construct, id_: str, *, dead_letter_queues: Mapping[str, sqs.IQueue],
                 work_queues: Mapping[str, sqs.IQueue], state_machine: sfn.IStateMachine,
                 image_function: lambda_.IFunction,
                 stuck_task_metrics: Mapping[str, tuple[cloudwatch.IMetric, str]] | None = None,
                 threshold_metrics: Mapping[str, tuple[cloudwatch.IMetric, str, float]] | None = None) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, description="Encrypts the pipeline's alarm topic")
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.alarm_topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True,
                                     display_name="Rekognition pipeline alarms")
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm",
                                                                  resource_name="*",
                                                                  arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)},
                },
            )
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"{name}Messages",
                queue.metric_approximate_number_of_messages_visible(period=DLQ_PERIOD, statistic="Maximum"),
                f"{name} has messages: something was given up on. Fix the cause, then run `rekpipe redrive --dlq` "
                "(it handles each message or leaves it, with the reason).",
            )
        self._alarm("VideoExecutionsFailed", state_machine.metric_failed(period=ALARM_PERIOD, statistic="Sum"),
                    "A video state machine execution failed; its task stays IN_PROGRESS until redriven.")
        self._alarm("AnalyzeImageErrors", image_function.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
                    "analyze_image invocations failed (not throttling, which is retried inside the function).")
        for name, (metric, description) in (stuck_task_metrics or {}).items():
            self._alarm(name, metric, description)
        for name, (metric, description, threshold) in (threshold_metrics or {}).items():
            self._alarm(name, metric, description, threshold=threshold)
        self.dashboard = self._dashboard(dead_letter_queues, work_queues, state_machine)

    def _alarm(self, id_: str, metric: cloudwatch.IMetric, description: str, *, threshold: float = 0) -> None:
        alarm = cloudwatch.Alarm(
            self, id_, metric=metric, threshold=threshold, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING, alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.alarm_topic))
        self.alarms[id_] = alarm

    def _dashboard(self, dead_letter_queues: Mapping[str, sqs.IQueue], work_queues: Mapping[str, sqs.IQueue],
                   state_machine: sfn.IStateMachine) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        pipeline = [
            cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=metric,
                              dimensions_map={POWERTOOLS_DIMENSION: service}, statistic="Sum",
                              label=f"{service} {metric}", period=ALARM_PERIOD)
            for service, metric in PIPELINE_METRICS
        ]
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Pipeline (Powertools metrics)", left=pipeline, width=12),
            cloudwatch.GraphWidget(
                title="Video executions",
                left=[state_machine.metric_started(), state_machine.metric_succeeded(), state_machine.metric_failed()],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Work queues: visible messages",
                left=[q.metric_approximate_number_of_messages_visible(label=n) for n, q in work_queues.items()],
                right=[q.metric_approximate_age_of_oldest_message(label=f"{n} oldest (s)")
                       for n, q in work_queues.items()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[q.metric_approximate_number_of_messages_visible(label=n) for n, q in dead_letter_queues.items()],
                width=12,
            ),
        )
        return dashboard
