"""Periodically free video slots whose holder's execution is no longer RUNNING.

Scheduled by EventBridge; catches what the status-change cleanup cannot see, such as a late Acquire
that lands after the cleanup or an execution that SUCCEEDED without releasing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from rekpipe_shared.constants import METRICS_NAMESPACE
from rekpipe_shared.semaphore import semaphore_from_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "reconcile_slots"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

semaphore = semaphore_from_environment()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return reconcile_slots()


@tracer.capture_method
def reconcile_slots() -> dict[str, Any]:
    """Release holders of executions that are not RUNNING (a missing execution counts as not running).

    Returns
    -------
    dict
        ``{"released": [holder, ...], "holders": int, "waiters": int}``, counts read after reconciling.
    """
    released = semaphore.reconcile(semaphore.execution_is_running)
    holders, waiters = semaphore.snapshot()
    logger.info("reconciled slots", extra={"released": released, "holders": len(holders), "waiters": len(waiters)})
    metrics.add_metric(name="SlotReleasedByReconciler", unit=MetricUnit.Count, value=len(released))
    metrics.add_metric(name="SlotHolders", unit=MetricUnit.Count, value=len(holders))
    metrics.add_metric(name="SlotWaiters", unit=MetricUnit.Count, value=len(waiters))
    return {"released": released, "holders": len(holders), "waiters": len(waiters)}
