"""Optimistic writes: read, write on condition that nothing changed, and on a lost race read again.

The task table's claim (``rekpipe_shared.tasks``) and the status counts' fenced transaction
(``rekpipe_shared.status_counts``) both follow a read with a write conditional on what was read; when
another writer got there first the condition fails and the attempt is made again from a fresh read, a
bounded number of times. :func:`retry_on_conflict` is that loop, once.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

MAX_CONFLICT_ATTEMPTS = 8
"""Attempts of one read-then-conditional-write before the conflict is the caller's to answer."""

TRANSACTION_CONFLICT_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict", "None", None})
"""Cancellation reasons of a transaction that lost a race (a condition no longer holds, a concurrent
transaction, or an item that was not the cause): reading again can succeed. Any other reason cannot."""


class WriteConflict(Exception):
    """A conditional write lost a race with another writer: read again and retry."""


def is_lost_race(error: Exception) -> bool:
    """The default conflict test: the attempt raised :class:`WriteConflict`."""
    return isinstance(error, WriteConflict)


def is_cancelled_by_conflict(error: Exception) -> bool:
    """A ``TransactionCanceledException`` whose every reason is a lost race (``TRANSACTION_CONFLICT_REASONS``)."""
    if not isinstance(error, ClientError) or error.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    return {reason.get("Code") for reason in error.response.get("CancellationReasons", [])} <= \
        TRANSACTION_CONFLICT_REASONS


def retry_on_conflict(
    attempt: Callable[[], T], *, is_conflict: Callable[[Exception], bool] = is_lost_race,
    attempts: int = MAX_CONFLICT_ATTEMPTS, backoff_seconds: float = 0.0,
) -> T:
    """Run ``attempt`` (a fresh read and a conditional write) until it returns, at most ``attempts`` times.

    An exception that ``is_conflict`` calls a lost race starts the next attempt, after a full-jitter pause of
    up to ``backoff_seconds * 2**n`` (none when 0); the last attempt's conflict, and any other exception,
    propagate.
    """
    for n in range(attempts):
        try:
            return attempt()
        except Exception as error:
            if n == attempts - 1 or not is_conflict(error):
                raise
            if backoff_seconds:
                time.sleep(random.uniform(0, backoff_seconds * 2**n))
    raise ValueError(f"attempts must be at least 1, not {attempts}")
