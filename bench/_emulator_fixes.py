"""Bench-only correction of moto 5.2.5's TransactWriteItems, applied while a benchmark runs.

moto backs up every table a transaction touches with ``copy.deepcopy`` before each
TransactWriteItems and, when the transaction is cancelled (ConditionalCheckFailed, which the task
table uses on purpose for idempotent transitions), puts the *copy* back in place of the table.
Two consequences break a benchmark of the embedded runtime:

1. The copy has a new ``StreamShard``. The stream poller's shard iterator still points at the old
   one, so after the first cancelled transaction on the task table no stream record reaches
   ``route_task`` again: tasks stay PENDING forever (seen at 50 images: 16 of 50 stuck).
2. Every transaction deep-copies the whole table, so a run of N objects costs O(N^2) CPU under the
   DynamoDB lock, which would be measured as pipeline latency.

This replacement checks every condition first and writes only when all hold (which is what
DynamoDB's all-or-nothing semantics mean), so no table is copied or replaced. If a write still
fails half way (a malformed update expression), the items it touched and the stream records it
appended are restored. The lead should move this into ``rekpipe/emulator/moto_fixes.py``; the
benchmark applies it only if the runtime has not already replaced moto's method.
"""

from __future__ import annotations

import copy
from typing import Any

_ORIGINAL: Any = None


def install() -> bool:
    """Replace ``DynamoDBBackend.transact_write_items``; False if it was already replaced."""
    global _ORIGINAL
    from moto.dynamodb.models import DynamoDBBackend

    current = DynamoDBBackend.__dict__["transact_write_items"]
    if _ORIGINAL is not None or getattr(current, "__module__", "").split(".")[0] != "moto":
        return False
    _ORIGINAL = current
    DynamoDBBackend.transact_write_items = _transact_write_items
    return True


def uninstall() -> None:
    """Put moto's method back."""
    global _ORIGINAL
    if _ORIGINAL is None:
        return
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = _ORIGINAL
    _ORIGINAL = None


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import get_filter_expression

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    plan: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        table = self.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        marker = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if marker in seen:
            raise MultipleTransactionsException()
        seen.add(marker)
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        failed = False
        if condition is not None:
            check = get_filter_expression(condition, op.get("ExpressionAttributeNames"),
                                          op.get("ExpressionAttributeValues"))
            failed = not check.expr(current)
        if failed:
            old = current.to_json()["Attributes"] if (
                current is not None and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD") else None
            errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            errors.append((None, None, None))
        plan.append((op_type, op, key))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    _apply(self, plan)


def _apply(backend: Any, plan: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    """Write every planned action; on a failure part way, undo the ones already written."""
    saved = []
    for _, op, key in plan:
        table = backend.get_table(op["TableName"])
        shard = table.stream_shard
        saved.append((table, key, copy.deepcopy(backend.get_item(op["TableName"], key)),
                      shard, len(shard.items) if shard is not None else 0))
    try:
        for op_type, op, key in plan:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            condition = op.get("ConditionExpression")
            if op_type == "Put":
                backend.put_item(op["TableName"], op["Item"], condition_expression=condition,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                backend.delete_item(op["TableName"], key, condition_expression=condition,
                                    expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                    condition_expression=condition, expression_attribute_names=names,
                                    expression_attribute_values=values)
    except Exception:
        for table, key, item, shard, length in reversed(saved):
            hash_value, range_value = backend.get_keys_value(table, key)
            if item is None:
                if range_value is not None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                else:
                    table.items.pop(hash_value, None)
            elif range_value is not None:
                table.items[hash_value][range_value] = item
            else:
                table.items[hash_value] = item
            if shard is not None:
                del shard.items[length:]
        raise
