"""SQS queues as the pipeline uses them: SSE, TLS only, and a DLQ sized to the consumer."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stack.nag import acknowledge

DLQ_RETENTION = cdk.Duration.days(14)
"""The longest SQS keeps a message: time for a person to look and redrive."""
VISIBILITY_FACTOR = 6
"""Lambda's guidance: visibility timeout at least six times the consumer's timeout."""


def secure_queue(scope: Construct, id_: str, *, retention: cdk.Duration | None = None,
                 visibility_timeout: cdk.Duration | None = None,
                 dead_letter_queue: sqs.DeadLetterQueue | None = None) -> sqs.Queue:
    """A queue encrypted with SQS-managed keys (which SNS and EventBridge may write to) that denies non-TLS."""
    return sqs.Queue(
        scope,
        id_,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention,
        visibility_timeout=visibility_timeout,
        dead_letter_queue=dead_letter_queue,
    )


def failure_destination_queue(scope: Construct, id_: str, *, used_by: str) -> sqs.Queue:
    """A queue that *is* a dead-letter destination, though not an SQS redrive target cdk-nag can see."""
    queue = secure_queue(scope, id_, retention=DLQ_RETENTION)
    acknowledge(
        queue, "SQS3",
        f"This queue is itself the dead-letter destination of {used_by}, which cdk-nag only "
        "recognises for SQS redrive policies and Lambda DeadLetterConfig. Nothing consumes it "
        "automatically; an alarm fires on its first message and operators redrive from it.",
    )
    return queue


class WorkQueue(Construct):
    """A work queue and its DLQ, with a visibility timeout that a slow consumer cannot outrun.

    Parameters
    ----------
    consumer_timeout: cdk.Duration
        The timeout of the Lambda function that consumes the queue.
    max_receive_count: int
        Deliveries before a message moves to the DLQ.

    Attributes
    ----------
    queue, dlq: sqs.Queue
    """

    def __init__(self, scope: Construct, id_: str, *, consumer_timeout: cdk.Duration, max_receive_count: int) -> None:
        super().__init__(scope, id_)
        self.dlq = secure_queue(self, "Dlq", retention=DLQ_RETENTION)
        self.queue = secure_queue(
            self,
            "Queue",
            visibility_timeout=cdk.Duration.seconds(VISIBILITY_FACTOR * consumer_timeout.to_seconds()),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=max_receive_count),
        )
