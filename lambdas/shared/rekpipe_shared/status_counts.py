"""Counts of tasks by status, kept by the task table's stream, batched per invocation, exact.

A status change is one conditional write on the task alone (``rekpipe_shared.tasks``); the stream
carries it (old and new image) to ``route_task``, which sums the changes of its whole batch and
applies them in one small transaction: the batch's deltas (``ADD``) on one of 16 counter items, and
the batch's marker. So an image costs a few hundredths of a write for its counts instead of a
counter update inside every transition, and busy counters no longer conflict with task writes.

**Exactly once across retries and redeliveries.** Lambda reads each stream shard in order, one batch
at a time, and after a failure it retries from the checkpoint: the whole batch again after an error,
or from the first failed record when the function reports item failures (Lambda Developer Guide,
"Using Lambda with DynamoDB", "Configuring partial batch response"). So a batch always starts at a
record no earlier batch of its shard has counted past, and:

- only the records before the batch's first failed record are counted (the rest come back);
- the marker, keyed by the batch's first sequence number, keeps the last sequence number counted
  from there; a redelivered batch reads it and counts only the records after it;
- the marker and the deltas are written in one transaction, conditional on the marker still being
  what was read, so two deliveries of one batch never both count (a fence).

This needs the mapping's ``BisectBatchOnFunctionError`` off: a bisected retry would start mid-batch,
at a record the marker of the batch's first record already counted. ``route_task`` reports item
failures instead. A batch dropped to the on-failure destination after its retries is not counted
(its tasks are then found by the stuck-task watch, and the counts drift by those records).
Markers expire after the stream's 24-hour retention (TTL), when no redelivery is possible.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from rekpipe_shared.conflicts import is_cancelled_by_conflict, retry_on_conflict
from rekpipe_shared.schema import ALL_STATUSES, TTL_ATTR

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

COUNTER_PREFIX = "#COUNTS#"
COUNTER_SHARDS = 16
"""Spreads batches over items, so concurrent shards' batches rarely meet on one item."""
MARKER_PREFIX = "#BATCH#"
MARKER_TTL_SECONDS = 2 * 24 * 3600
"""Longer than the stream's 24-hour retention: a marker outlives every delivery of its batch."""
SEQUENCE_WIDTH = 40
"""Stream sequence numbers are decimal strings of up to 40 digits; padded, they compare as strings."""
CONFLICT_BACKOFF_SECONDS = 0.05
"""First bound of the jittered pause before a batch whose transaction lost a race reads its marker again."""


def is_bookkeeping_id(task_id: str) -> bool:
    """True for counter and marker items, which share the table with tasks."""
    return task_id.startswith("#")


def status_deltas(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Status -> change in count, from stream records (Lambda's DynamoDB shape) of task items."""
    deltas: dict[str, int] = {}
    for record in records:
        change = record.get("dynamodb", {})
        key = (change.get("Keys") or change.get("NewImage") or change.get("OldImage") or {}).get("task_id", {})
        if is_bookkeeping_id(str(key.get("S", "#"))):
            continue
        old = (change.get("OldImage") or {}).get("status", {}).get("S")
        new = (change.get("NewImage") or {}).get("status", {}).get("S")
        if old == new:
            continue
        if old:
            deltas[old] = deltas.get(old, 0) - 1
        if new:
            deltas[new] = deltas.get(new, 0) + 1
    return {status: delta for status, delta in deltas.items() if delta}


def sequence_key(sequence_number: str) -> str:
    return str(sequence_number).zfill(SEQUENCE_WIDTH)


class StatusCounts:
    """The stream-kept counters of one task table.

    Parameters
    ----------
    table_name: str
        The task table.
    client: Any
        A DynamoDB client.
    clock: Any
        Epoch seconds, for the markers' TTL.
    """

    def __init__(self, table_name: str, client: Any, *, clock: Any = time.time) -> None:
        self.table_name = table_name
        self.client = client
        self._clock = clock

    def read(self) -> dict[str, int]:
        """Tasks by status, summed over the counter items (16 reads, never a scan)."""
        totals = dict.fromkeys(ALL_STATUSES, 0)
        keys = [_key(f"{COUNTER_PREFIX}{shard:02d}") for shard in range(COUNTER_SHARDS)]
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = self.client.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(self.table_name, []):
                for status, value in item.items():
                    if status in totals and "N" in value:
                        totals[status] += int(value["N"])
            request = response.get("UnprocessedKeys") or {}
        return totals

    def apply(self, records: list[Mapping[str, Any]]) -> dict[str, int]:
        """Count one delivered batch (in stream order; only the records that are done with), exactly once.

        Returns the deltas applied by this call (empty when a redelivery found them counted already).
        """
        if not records:
            return {}
        first = sequence_key(records[0]["dynamodb"]["SequenceNumber"])
        last = sequence_key(records[-1]["dynamodb"]["SequenceNumber"])
        marker = _key(f"{MARKER_PREFIX}{first}")

        def attempt() -> dict[str, int]:
            seen = self.client.get_item(TableName=self.table_name, Key=marker, ConsistentRead=True,
                                        ProjectionExpression="counted_to").get("Item", {}).get("counted_to", {}).get("S")
            fresh = [r for r in records if seen is None or sequence_key(r["dynamodb"]["SequenceNumber"]) > seen]
            if not fresh:
                return {}
            deltas = status_deltas(fresh)
            self.client.transact_write_items(TransactItems=self._writes(marker, seen, last, first, deltas))
            return deltas

        # A lost fence (another delivery moved the marker) pauses with full jitter, then reads the marker again.
        return retry_on_conflict(attempt, is_conflict=is_cancelled_by_conflict,
                                 backoff_seconds=CONFLICT_BACKOFF_SECONDS)

    def _writes(self, marker: dict[str, Any], seen: str | None, last: str, first: str,
                deltas: dict[str, int]) -> list[dict[str, Any]]:
        condition = "attribute_not_exists(counted_to)" if seen is None else "counted_to = :seen"
        values: dict[str, Any] = {":last": {"S": last}, ":ttl": {"N": str(int(self._clock()) + MARKER_TTL_SECONDS)}}
        if seen is not None:
            values[":seen"] = {"S": seen}
        writes: list[dict[str, Any]] = [{"Update": {
            "TableName": self.table_name, "Key": marker, "ConditionExpression": condition,
            "UpdateExpression": "SET counted_to = :last, #ttl = :ttl",
            "ExpressionAttributeNames": {"#ttl": TTL_ATTR}, "ExpressionAttributeValues": values}}]
        if deltas:
            shard = int(hashlib.sha256(first.encode()).hexdigest()[:8], 16) % COUNTER_SHARDS
            names = {f"#s{i}": status for i, status in enumerate(deltas)}
            writes.append({"Update": {
                "TableName": self.table_name, "Key": _key(f"{COUNTER_PREFIX}{shard:02d}"),
                "UpdateExpression": "ADD " + ", ".join(f"#s{i} :d{i}" for i in range(len(deltas))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {f":d{i}": {"N": str(delta)} for i, delta in enumerate(deltas.values())},
            }})
        return writes


def _key(task_id: str) -> dict[str, Any]:
    return {"task_id": {"S": task_id}}
