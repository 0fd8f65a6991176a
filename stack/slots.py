"""The video slots' single writer: a FIFO queue with one message group, the slot_dispatcher that
consumes it, the tick's schedule, the execution status-change rule that sends ``cancel``, and their alarms.

Messages of one FIFO message group "are always processed one at a time, in strict order" (SQS Developer
Guide, https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagegroupid-property.html),
which serialises every slot decision; the rules' version fence covers the rare second writer (a redrive).
A Scheduler or EventBridge target on a FIFO queue needs content-based deduplication on the queue
(EventBridge Scheduler API Reference, https://docs.aws.amazon.com/scheduler/latest/APIReference/API_SqsParameters.html;
EventBridge's Target.SqsParameters says the same).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from rekpipe_shared.schema import (
    PIPELINE_SETTINGS_ENV,
    REKOGNITION_ROLE_ARN_ENV,
    SEMAPHORE_TABLE_NAME_ENV,
    SLOT_MESSAGE_GROUP,
    SLOT_QUEUE_URL_ENV,
    TASK_TABLE_NAME_ENV,
    VIDEO_QUEUE_URL_ENV,
    VIDEO_TOPIC_ARN_ENV,
)
from stack.queues import DLQ_RETENTION, VISIBILITY_FACTOR

if TYPE_CHECKING:
    from stack.functions import FunctionFactory, PipelineFunction

DISPATCHER_TIMEOUT = cdk.Duration.seconds(60)
"""Short: a batch is at most 10 messages, each a few DynamoDB writes and AWS calls."""
MAX_RECEIVE_COUNT = 5
TICK_EVERY = cdk.Duration.minutes(1)
OLDEST_MESSAGE_ALARM_SECONDS = 60
TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class SlotDispatch(Construct):
    """The slot queue (FIFO, content-based deduplication, FIFO DLQ), its consumer, the tick and the cancel rule.

    Parameters
    ----------
    factory: FunctionFactory
        Builds the slot_dispatcher function.
    state_machine_arn: str
        The video state machine, whose terminal status changes become ``cancel`` messages.
    events_dlq: sqs.IQueue
        Where the rule and the schedule put what they could not deliver.

    Attributes
    ----------
    queue, dlq: sqs.Queue
    dispatcher: PipelineFunction
    alarm_metrics: dict[str, tuple[cloudwatch.IMetric, str, float]]
        Name -> (metric, what to do, threshold), for the pipeline's Monitoring.
    """

    def __init__(
        self, scope: Construct, id_: str, *, factory: FunctionFactory, state_machine_arn: str, events_dlq: sqs.IQueue
    ) -> None:
        super().__init__(scope, id_)
        self.dlq = sqs.Queue(
            self, "Dlq", fifo=True, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        self.queue = sqs.Queue(
            self, "Queue", fifo=True, content_based_deduplication=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(VISIBILITY_FACTOR * DISPATCHER_TIMEOUT.to_seconds()),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT),
        )
        self.dispatcher: PipelineFunction = factory.create(
            self, "SlotDispatcher", name="slot_dispatcher", timeout=DISPATCHER_TIMEOUT,
            description="The single writer of the video slots: grants, starts jobs, frees slots, admits executions",
            environment=(SEMAPHORE_TABLE_NAME_ENV, SLOT_QUEUE_URL_ENV, VIDEO_TOPIC_ARN_ENV, REKOGNITION_ROLE_ARN_ENV,
                         TASK_TABLE_NAME_ENV, VIDEO_QUEUE_URL_ENV, PIPELINE_SETTINGS_ENV),
        )
        self.dispatcher.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True)
        )
        scheduler.Schedule(
            self, "TickSchedule", schedule=scheduler.ScheduleExpression.rate(TICK_EVERY),
            description="The slot tick: reconciles holders and waiters, heartbeats tokens, admits from the backlog",
            target=scheduler_targets.SqsSendMessage(
                self.queue, message_group_id=SLOT_MESSAGE_GROUP, dead_letter_queue=events_dlq,
                input=scheduler.ScheduleTargetInput.from_object(
                    {"kind": "tick", "at": scheduler.ContextAttribute.scheduled_time}
                ),
            ),
        )
        events.Rule(
            self, "CancelRule",
            description="Sends a cancel to the slot dispatcher when a video execution ends",
            event_pattern=events.EventPattern(
                source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [state_machine_arn], "status": list(TERMINAL_STATUSES)},
            ),
            targets=[targets.SqsQueue(self.queue, message_group_id=SLOT_MESSAGE_GROUP, dead_letter_queue=events_dlq)],
        )
        self.alarm_metrics: dict[str, tuple[cloudwatch.IMetric, str, float]] = {
            "SlotQueueOldestMessage": (
                self.queue.metric_approximate_age_of_oldest_message(period=cdk.Duration.minutes(1),
                                                                    statistic="Maximum"),
                "A slot message waits over a minute: the dispatcher is failing or throttled, so slots are neither "
                "granted nor freed. Check slot_dispatcher's errors and `rekpipe slots`.",
                OLDEST_MESSAGE_ALARM_SECONDS,
            ),
            "SlotDispatcherErrors": (
                self.dispatcher.function.metric_errors(period=cdk.Duration.minutes(5), statistic="Sum"),
                "slot_dispatcher failed whole batches (its store failed); the messages are redelivered.",
                0,
            ),
        }
