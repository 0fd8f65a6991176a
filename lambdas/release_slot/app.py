"""Release a video slot, handing it straight to the oldest parked execution.

Invoked by Step Functions with ``arn:aws:states:::lambda:invoke`` after the job, and on every Catch path.
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

SERVICE = "release_slot"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

semaphore = semaphore_from_environment()


class ReleaseSlotEvent(DictWrapper):
    """``{"holder": ...}``."""

    @property
    def holder(self) -> str:
        return self["holder"]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return release_slot(ReleaseSlotEvent(event))


@tracer.capture_method
def release_slot(event: ReleaseSlotEvent) -> dict[str, Any]:
    """Release the holder's slot; a repeated release is a no-op.

    Returns
    -------
    dict
        ``{"holder": str, "released": bool, "handedOffTo": str | None}``.
    """
    outcome = semaphore.release(event.holder)
    logger.info(
        "slot released",
        extra={"holder": event.holder, "released": outcome.released, "handed_off_to": outcome.handed_off_to},
    )
    metrics.add_metric(name="SlotReleased", unit=MetricUnit.Count, value=int(outcome.released))
    metrics.add_metric(name="SlotHandedOff", unit=MetricUnit.Count, value=int(outcome.handed_off_to is not None))
    return {"holder": event.holder, "released": outcome.released, "handedOffTo": outcome.handed_off_to}
