"""The slot state in DynamoDB: one partition, a header item fenced on ``version``, one item per holder,
waiter, finished holder and cancel tombstone, and a quarantine item per message that broke a rule.

A commit is one TransactWriteItems whose header Put carries ``version = :expected``; if another writer
moved the version, DynamoDB cancels the whole transaction: TransactionCanceledException, whose reasons
name ConditionalCheckFailed, "when a condition in one of the condition expressions is not met" (DynamoDB
API Reference, https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html,
which also caps a transaction at 100 actions). The rules keep every commit far below that (one message touches a handful of items).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG, error_code
from rekpipe_shared.schema import SLOT_PK_ATTR as PK_ATTR
from rekpipe_shared.schema import SLOT_SK_ATTR as SK_ATTR
from rekpipe_shared.schema import TTL_ATTR
from rekpipe_shared.slots.exceptions import FenceError
from rekpipe_shared.slots.state import FinishedItem, Header, HolderItem, ItemLookup, Snapshot, WaiterItem
from rekpipe_shared.slots.store import SlotStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.slots.state import Changes

DEFAULT_POOL = "video-jobs"
HEADER_SK = "HEADER"
_PREFIXES = {"holders": "HOLDER#", "waiters": "WAITER#", "finished": "FINISHED#", "tombstones": "CANCEL#"}
QUARANTINE_PREFIX = "QUARANTINE#"
QUARANTINE_TTL_SECONDS = 14 * 24 * 3600
MAX_TRANSACTION_ITEMS = 100


class DynamoDBSlotStore(SlotStore):
    """The slot state in the slot table (``pk``/``sk`` strings, TTL on ``expires_at``).

    Parameters
    ----------
    table_name: str
        The slot table.
    default_limit: int
        The limit a store that was never written reads as (the deployed default); ``set_limit`` stores one.
    pool: str
        The partition; one per independent limit.
    boto3_client: Any
        A DynamoDB client; one with the pipeline's retry settings is built if none is given.
    """

    def __init__(
        self, table_name: str, *, default_limit: int, pool: str = DEFAULT_POOL, boto3_client: Any = None
    ) -> None:
        self.table_name = table_name
        self.default_limit = default_limit
        self.pk = f"SLOTS#{pool}"
        self.client = boto3_client or boto3.client("dynamodb", config=DEFAULT_CONFIG)

    # --- SlotStore ------------------------------------------------------------------------------
    def load(self) -> Snapshot:
        """One Query for the header, the holders and the waiters (sort keys ``HEADER`` to ``WAITER#...``, which
        leaves out the finished items and tombstones, sorted before ``HEADER``); those are read by key later."""
        parts: dict[str, dict[str, Any]] = {"holders": {}, "waiters": {}}
        header = Header(limit=self.default_limit)
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :first AND :last",
            "FilterExpression": "NOT begins_with(#sk, :quarantine)",
            "ExpressionAttributeNames": {"#pk": PK_ATTR, "#sk": SK_ATTR},
            "ExpressionAttributeValues": {":pk": {"S": self.pk}, ":first": {"S": HEADER_SK},
                                          ":last": {"S": _PREFIXES["waiters"] + "\U0010ffff"},
                                          ":quarantine": {"S": QUARANTINE_PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**request)
            for item in page.get("Items", []):
                sk = item[SK_ATTR]["S"]
                if sk == HEADER_SK:
                    header = _header_of(item)
                    continue
                for name in parts:
                    if sk.startswith(_PREFIXES[name]):
                        key, value = _value_of(name, item)
                        parts[name][key] = value
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return Snapshot(header=header, finished=ItemLookup(self._getter("finished")),
                        tombstones=ItemLookup(self._getter("tombstones")), **parts)

    def _getter(self, name: str) -> Callable[[str], Any]:
        """A strongly consistent GetItem of one finished holder or tombstone; None if there is none."""
        def get(key: str) -> Any:
            item = self.client.get_item(
                TableName=self.table_name, ConsistentRead=True,
                Key={PK_ATTR: {"S": self.pk}, SK_ATTR: {"S": _PREFIXES[name] + key}},
            ).get("Item")
            return None if item is None else _value_of(name, item)[1]
        return get

    def commit(self, base: Snapshot, changes: Changes) -> Snapshot:
        expected_version = base.header.version
        after = changes.apply(base)
        header_item = _header_item(self.pk, after)
        if expected_version == 0:
            condition = {"ConditionExpression": "attribute_not_exists(#pk) OR #v = :v"}
        else:
            condition = {"ConditionExpression": "#v = :v"}
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": header_item,
                    "ExpressionAttributeNames": {
                        "#v": "version",
                        **({"#pk": PK_ATTR} if expected_version == 0 else {}),
                    },
                    "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
                    **condition,
                }
            }
        ]
        for name, prefix in _PREFIXES.items():
            for key, value in getattr(changes, name).items():
                item_key = {PK_ATTR: {"S": self.pk}, SK_ATTR: {"S": prefix + key}}
                if value is None:
                    actions.append({"Delete": {"TableName": self.table_name, "Key": item_key}})
                else:
                    actions.append(
                        {"Put": {"TableName": self.table_name, "Item": {**item_key, **_item_of(name, key, value)}}}
                    )
        if len(actions) > MAX_TRANSACTION_ITEMS:
            raise ValueError(
                f"a slot commit of {len(actions)} items exceeds TransactWriteItems' {MAX_TRANSACTION_ITEMS}"
            )
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException":
                reasons = error.response.get("CancellationReasons") or []
                if not reasons or (reasons[0].get("Code") == "ConditionalCheckFailed"):
                    raise FenceError(expected_version) from error
            raise
        return after

    # --- outside the rules ----------------------------------------------------------------------
    def quarantine(self, message_id: str, body: str, error: str) -> None:
        """Keep a message that broke a rule (for a human), outside the fence: it changes no slot."""
        self.client.put_item(
            TableName=self.table_name,
            Item={
                PK_ATTR: {"S": self.pk},
                SK_ATTR: {"S": QUARANTINE_PREFIX + message_id},
                "body": {"S": body[:300_000]},
                "error": {"S": error[:2000]},
                "at": {"N": str(int(time.time()))},
                TTL_ATTR: {"N": str(int(time.time()) + QUARANTINE_TTL_SECONDS)},
            },
        )

    def quarantined(self) -> list[dict[str, str]]:
        """Quarantined messages, for the CLI and tests."""
        page = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :q)",
            ExpressionAttributeNames={"#pk": PK_ATTR, "#sk": SK_ATTR},
            ExpressionAttributeValues={":pk": {"S": self.pk}, ":q": {"S": QUARANTINE_PREFIX}},
            ConsistentRead=True,
        )
        return [
            {"id": i[SK_ATTR]["S"][len(QUARANTINE_PREFIX) :], "body": i["body"]["S"], "error": i["error"]["S"]}
            for i in page.get("Items", [])
        ]

    def header(self) -> dict[str, int]:
        """The stored limit and the counts the header keeps, for ``rekpipe status``."""
        item = self.client.get_item(
            TableName=self.table_name, Key={PK_ATTR: {"S": self.pk}, SK_ATTR: {"S": HEADER_SK}}, ConsistentRead=True
        ).get("Item")
        if not item:  # never written: the limit the dispatcher was deployed with
            return {"limit": self.default_limit, "holders": 0, "waiters": 0, "version": 0, "quota_limit": 0}
        return {name: int(item.get(name, {}).get("N", "0"))
                for name in ("limit", "holders", "waiters", "version", "quota_limit")}


# --- item codecs -------------------------------------------------------------------------------
def _header_item(pk: str, snap: Snapshot) -> dict[str, Any]:
    header = snap.header
    return {
        PK_ATTR: {"S": pk},
        SK_ATTR: {"S": HEADER_SK},
        "limit": {"N": str(header.limit)},
        "version": {"N": str(header.version)},
        "next_seq": {"N": str(header.next_seq)},
        "backoff_until": {"N": repr(header.backoff_until)},
        "backoff_seconds": {"N": repr(header.backoff_seconds)},
        "quota_limit": {"N": str(header.quota_limit)},
        "holders": {"N": str(len(snap.holders))},
        "waiters": {"N": str(len(snap.waiters))},
    }


def _header_of(item: dict[str, Any]) -> Header:
    return Header(
        limit=int(item["limit"]["N"]),
        version=int(item["version"]["N"]),
        next_seq=int(item["next_seq"]["N"]),
        backoff_until=float(item["backoff_until"]["N"]),
        backoff_seconds=float(item["backoff_seconds"]["N"]),
        quota_limit=int(item.get("quota_limit", {}).get("N", "0")),
    )


def _item_of(name: str, key: str, value: Any) -> dict[str, Any]:
    if name == "tombstones":
        return {"data": {"S": json.dumps({"expires_at": value})}, TTL_ATTR: {"N": str(int(value) + 3600)}}
    item = {"data": {"S": json.dumps(asdict(value), sort_keys=True)}}
    if isinstance(value, FinishedItem):
        item[TTL_ATTR] = {"N": str(int(value.expires_at) + 3600)}  # DynamoDB's TTL sweep is a backstop only
    return item


def _value_of(name: str, item: dict[str, Any]) -> tuple[str, Any]:
    key = item[SK_ATTR]["S"][len(_PREFIXES[name]) :]
    data = json.loads(item["data"]["S"])
    if name == "tombstones":
        return key, float(data["expires_at"])
    cls = {"holders": HolderItem, "waiters": WaiterItem, "finished": FinishedItem}[name]
    return key, cls(**data)
