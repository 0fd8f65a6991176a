"""Partial batch responses for the SQS-triggered functions, with Powertools' batch processing.

A Powertools processor holds its batch (records, results, the invocation's context) while it runs, so
each invocation gets its own: Lambda runs one invocation per execution environment, but the embedded
runtime runs concurrent invocations of one function in one process, where a shared processor would mix
their batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


def process_sqs_batch(event: dict[str, Any], record_handler: Callable[..., Any],
                      context: LambdaContext) -> PartialItemFailureResponse:
    """Run ``record_handler`` on each record of an SQS batch; a record that raises is reported failed alone.

    A fully failed batch is reported item by item, not raised: the failures are expected, not bugs. A record
    handler with a ``lambda_context`` parameter is given the invocation's context.
    """
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
