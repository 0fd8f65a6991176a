"""retry_on_conflict: a lost race is tried again from a fresh read, a bounded number of times."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from rekpipe_shared.conflicts import (
    MAX_CONFLICT_ATTEMPTS,
    WriteConflict,
    is_cancelled_by_conflict,
    retry_on_conflict,
)


def _cancelled(*reasons: str) -> ClientError:
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": [{"Code": reason} for reason in reasons]}, "TransactWriteItems")


def test_retry_on_conflict_tries_again_until_the_write_wins():
    # GIVEN an attempt that loses two races, then wins
    calls = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise WriteConflict("moved")
        return "written"

    # WHEN it is retried on conflict
    result = retry_on_conflict(attempt)

    # THEN the third attempt's result is returned
    assert result == "written"
    assert len(calls) == 3


def test_retry_on_conflict_raises_the_last_conflict_after_every_attempt_lost():
    # GIVEN an attempt that always loses
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise WriteConflict("moved")

    # WHEN it is retried on conflict, THEN the last conflict propagates after the bounded attempts
    with pytest.raises(WriteConflict):
        retry_on_conflict(attempt)
    assert len(calls) == MAX_CONFLICT_ATTEMPTS


def test_retry_on_conflict_other_errors_propagate_at_once():
    # GIVEN an attempt that fails for another reason
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise _cancelled("ValidationError")

    # WHEN it is retried on transaction conflicts, THEN the error propagates on the first attempt
    with pytest.raises(ClientError):
        retry_on_conflict(attempt, is_conflict=is_cancelled_by_conflict, backoff_seconds=0.001)
    assert len(calls) == 1


def test_is_cancelled_by_conflict_only_for_lost_races():
    # GIVEN cancelled transactions and another error, THEN only the lost races are conflicts
    assert is_cancelled_by_conflict(_cancelled("ConditionalCheckFailed", "None"))
    assert is_cancelled_by_conflict(_cancelled("TransactionConflict"))
    assert not is_cancelled_by_conflict(_cancelled("ConditionalCheckFailed", "ValidationError"))
    assert not is_cancelled_by_conflict(ClientError({"Error": {"Code": "ThrottlingException"}}, "TransactWriteItems"))
    assert not is_cancelled_by_conflict(WriteConflict("moved"))
