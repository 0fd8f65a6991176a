"""Take a video slot or park the calling execution until a release hands one over.

Invoked by Step Functions with ``arn:aws:states:::lambda:invoke.waitForTaskToken``: the task resumes when
this function (slot free) or a later release (slot handed over) calls SendTaskSuccess on the token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.common import DictWrapper

from rekpipe_shared.constants import METRICS_NAMESPACE
from rekpipe_shared.semaphore import semaphore_from_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "acquire_slot"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

semaphore = semaphore_from_environment()


class AcquireSlotEvent(DictWrapper):
    """``{"holder": ..., "executionArn": ..., "taskToken": ..., "limit"?: int}``."""

    @property
    def holder(self) -> str:
        """``<execution name>#<operation>``."""
        return self["holder"]

    @property
    def execution_arn(self) -> str:
        return self["executionArn"]

    @property
    def task_token(self) -> str:
        return self["taskToken"]

    @property
    def limit(self) -> int | None:
        """Overrides ``VIDEO_SLOT_LIMIT`` when present."""
        value = self.get("limit")
        return int(value) if value is not None else None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return acquire_slot(AcquireSlotEvent(event))


@tracer.capture_method
def acquire_slot(event: AcquireSlotEvent) -> dict[str, Any]:
    """Acquire or park; the Step Functions task ignores this return value and waits for its token.

    Returns
    -------
    dict
        ``{"holder": str, "acquired": bool}``; ``acquired`` False means the execution is parked.
    """
    acquired = semaphore.acquire(event.holder, event.execution_arn, event.task_token, limit=event.limit)
    logger.info("slot acquired" if acquired else "slot busy, parked", extra={"holder": event.holder})
    metrics.add_metric(name="SlotAcquired" if acquired else "SlotParked", unit=MetricUnit.Count, value=1)
    return {"holder": event.holder, "acquired": acquired}
