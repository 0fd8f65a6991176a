"""The result index: which stored result answers (these bytes, this operation, these options).

One item per reuse key. An item is either a *lead* (a task is analysing those bytes now, until
its lease runs out) or a *result* (where the first analysis stored its output, from which model
version). The key hashes the content identity (``rekpipe_shared.content_identity``), the API and
every request option that changes the answer (MinConfidence, MaxLabels, attributes or segment
types, collection, project version), so a task under other settings never matches.

Races: the first task claims the key with a conditional write and a lease. Another task with the
same bytes finds the lead and waits; when the result lands it copies it. An image follower's queue
message comes back later. A video follower (whose leader may run for hours) registers in the lead's
``waiters`` set, parks its task QUEUED with ``waiting_for`` and acknowledges its message; the leader
wakes every waiter (sends its message again) when it indexes its result or withdraws its lead. A lead
whose task failed is withdrawn, and one whose Lambda died runs out (or, for a video whose execution
ended without a result, is broken by ``rekpipe redrive --stuck``): the follower then claims the key
itself and runs its own analysis, so no task is lost.

Counters (``#STATS#nn`` items, sharded) sum the objects and operations served from the index and
the Rekognition list price they did not pay, so ``rekpipe status`` reads them without a scan.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from rekpipe_shared.schema import REUSE_KEY_ATTR
from rekpipe_shared.tasks import now_iso

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mypy_boto3_dynamodb import DynamoDBClient

    from rekpipe_shared.content_identity import ContentIdentity
    from rekpipe_shared.operations import Operation
    from rekpipe_shared.settings import PipelineSettings

STATE_LEADING = "LEADING"
STATE_DONE = "DONE"
WAITERS_ATTR = "waiters"
"""On a lead: the video followers (``<task id>:<run>``) to wake when it ends, with a result or without."""
STATS_PREFIX = "#STATS#"
STATS_SHARDS = 8
MICRO_USD = 1_000_000
_VIDEO_REQUEST_ONLY = ("Video", "ClientRequestToken", "JobTag", "NotificationChannel")


def request_options(op: Operation, settings: PipelineSettings, *, video: bool) -> dict[str, Any]:
    """The request options that change an answer: the request minus the object and the plumbing."""
    if video:
        request = op.video_start_request("b", "k", None, settings=settings, job_tag="t", client_request_token="t",
                                         topic_arn="t", role_arn="t")
        return {k: v for k, v in request.items() if k not in _VIDEO_REQUEST_ONLY}
    request = op.image_request("b", "k", None, settings)
    request.pop("Image")
    return request


def reuse_key(api: str, identity: ContentIdentity, options: dict[str, Any]) -> str:
    """The index key of (bytes, API, options): a SHA-256, so any option value fits."""
    text = json.dumps([api, identity.token, options], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def model_version_of(response: dict[str, Any]) -> str | None:
    """``LabelModelVersion``, ``ModerationModelVersion``, ``FaceModelVersion``...: whichever the API returns."""
    for name, value in response.items():
        if name.endswith("ModelVersion") and value:
            return str(value)
    return None


@dataclass(frozen=True)
class IndexedResult:
    """A stored result that answers a reuse key.

    Parameters
    ----------
    source_task_id: str
        The task whose analysis produced it.
    result_uri: str
        ``s3://`` URI of the result (an image API's JSON, or a video operation's folder).
    model_version: str | None
        The Rekognition model that answered.
    """

    source_task_id: str
    result_uri: str
    model_version: str | None


@dataclass(frozen=True)
class Claim:
    """What :meth:`ResultIndex.claim` found: lead it, reuse a result, or wait for a live lead."""

    lead: bool
    result: IndexedResult | None = None
    wait_seconds: float = 0.0
    leader_task_id: str | None = None


class ResultIndex:
    """Conditional access to the result index table.

    Parameters
    ----------
    table_name: str
    boto3_client: DynamoDBClient | None
        Injected client (tests); a default one otherwise.
    clock: Callable[[], float]
        Epoch seconds, for leases.
    """

    def __init__(self, table_name: str, *, boto3_client: DynamoDBClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.table_name = table_name
        self.client = boto3_client or boto3.client(
            "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5}))
        self._clock = clock

    def find(self, keys: Iterable[str]) -> IndexedResult | None:
        """The first stored result under any of these keys (strongly consistent reads)."""
        for key in keys:
            item = self._get(key)
            if item and item.get("state", {}).get("S") == STATE_DONE:
                return _result(item)
        return None

    def claim(self, key: str, task_id: str, *, lease_seconds: int, identity: ContentIdentity, api: str) -> Claim:
        """Lead the analysis of a key, unless a result exists or another task's lease is live.

        An update, not a put: the ``waiters`` a lead carries (video followers) survive a re-claim by the
        same task (a redelivered message, a new run) or a take-over after the lease ran out.
        """
        now = self._clock()
        for _ in range(3):
            try:
                self.client.update_item(
                    TableName=self.table_name, Key={REUSE_KEY_ATTR: {"S": key}},
                    UpdateExpression="SET #state = :leading, task_id = :me, lease_until = :lease, api = :api, "
                                     "#identity = :identity, claimed_at = :at",
                    ConditionExpression="attribute_not_exists(reuse_key) OR (#state = :leading AND "
                                        "(lease_until < :now OR task_id = :me))",
                    ExpressionAttributeNames={"#state": "state", "#identity": "identity"},
                    ExpressionAttributeValues={":leading": {"S": STATE_LEADING}, ":now": {"N": str(int(now))},
                                               ":me": {"S": task_id}, ":lease": {"N": str(int(now + lease_seconds))},
                                               ":api": {"S": api}, ":identity": {"S": identity.token},
                                               ":at": {"S": now_iso()}},
                )
                return Claim(lead=True)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            item = self._get(key)
            if item is None:
                continue  # the lead was withdrawn between the write and the read
            if item["state"]["S"] == STATE_DONE:
                return Claim(lead=False, result=_result(item))
            return Claim(lead=False, wait_seconds=max(0.0, int(item["lease_until"]["N"]) - now),
                         leader_task_id=item["task_id"]["S"])
        return Claim(lead=False, wait_seconds=1.0)

    def add_waiter(self, key: str, leader_task_id: str, waiter: str) -> bool:
        """Register ``waiter`` (``<task id>:<run>``) on a live lead of ``leader_task_id``.

        A set: a redelivered follower registers once. False when the lead is gone, done or another
        task's now; the follower then decides again (reuse the result, or lead).
        """
        try:
            self.client.update_item(
                TableName=self.table_name, Key={REUSE_KEY_ATTR: {"S": key}},
                UpdateExpression="ADD #waiters :me",
                ConditionExpression="#state = :leading AND task_id = :leader",
                ExpressionAttributeNames={"#state": "state", "#waiters": WAITERS_ATTR},
                ExpressionAttributeValues={":leading": {"S": STATE_LEADING}, ":leader": {"S": leader_task_id},
                                           ":me": {"SS": [waiter]}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def lead(self, key: str) -> dict[str, Any] | None:
        """The item under a key, as plain values (``state``, ``task_id``, ``lease_until``, ``waiters``)."""
        item = self._get(key)
        if item is None:
            return None
        return {"state": item["state"]["S"], "task_id": item["task_id"]["S"],
                "lease_until": int(item.get("lease_until", {}).get("N", 0)),
                "claimed_at": item.get("claimed_at", {}).get("S"), "waiters": _waiters(item)}

    def break_lead(self, key: str, leader_task_id: str, claimed_at: str | None) -> list[str] | None:
        """Drop a lead whose leader is known dead (its execution ended without a result); returns its
        waiters, or None when the lead changed meanwhile (the leader came back, or it finished)."""
        condition = "#state = :leading AND task_id = :leader"
        values = {":leading": {"S": STATE_LEADING}, ":leader": {"S": leader_task_id}}
        if claimed_at:
            condition += " AND claimed_at = :at"
            values[":at"] = {"S": claimed_at}
        try:
            response = self.client.delete_item(
                TableName=self.table_name, Key={REUSE_KEY_ATTR: {"S": key}}, ConditionExpression=condition,
                ExpressionAttributeNames={"#state": "state"}, ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        return _waiters(response.get("Attributes") or {})

    def record(self, keys: Iterable[str], *, task_id: str, api: str, result_uri: str, model_version: str | None,
               options: dict[str, Any], identities: Iterable[ContentIdentity]) -> list[str]:
        """Store a finished analysis under every key of its object: later copies reuse it.

        Unconditional: a newer analysis (``redrive --force``, a model upgrade) replaces the older one.
        Returns the waiters the replaced lead carried, for the caller to wake.
        """
        waiters: list[str] = []
        tokens = [identity.token for identity in identities]
        for key, token in zip(keys, tokens, strict=True):
            item = {REUSE_KEY_ATTR: {"S": key}, "state": {"S": STATE_DONE}, "task_id": {"S": task_id},
                    "api": {"S": api}, "result_uri": {"S": result_uri}, "identity": {"S": token},
                    "options": {"S": json.dumps(options, sort_keys=True, default=str)},
                    "recorded_at": {"S": now_iso()}}
            if model_version:
                item["model_version"] = {"S": model_version}
            old = self.client.put_item(TableName=self.table_name, Item=item, ReturnValues="ALL_OLD")
            waiters += [w for w in _waiters(old.get("Attributes") or {}) if w not in waiters]
        return waiters

    def withdraw(self, key: str, task_id: str) -> list[str]:
        """Drop this task's lead (its analysis failed), so a waiting follower runs its own at once.

        Returns the waiters the lead carried (video followers), for the caller to wake."""
        try:
            response = self.client.delete_item(
                TableName=self.table_name, Key={REUSE_KEY_ATTR: {"S": key}},
                ConditionExpression="#state = :leading AND task_id = :me",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":leading": {"S": STATE_LEADING}, ":me": {"S": task_id}},
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return []
        return _waiters(response.get("Attributes") or {})

    def forget(self, key: str, result_uri: str) -> None:
        """Drop a result whose stored output is gone (expired by the retention rule)."""
        try:
            self.client.delete_item(
                TableName=self.table_name, Key={REUSE_KEY_ATTR: {"S": key}},
                ConditionExpression="result_uri = :uri", ExpressionAttributeValues={":uri": {"S": result_uri}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def count_reuse(self, task_id: str, *, operations: int, saved_usd: float) -> None:
        """Count one object served (partly or wholly) from the index, and the price it did not pay."""
        shard = int(hashlib.sha256(task_id.encode()).hexdigest()[:8], 16) % STATS_SHARDS
        self.client.update_item(
            TableName=self.table_name, Key={REUSE_KEY_ATTR: {"S": f"{STATS_PREFIX}{shard:02d}"}},
            UpdateExpression="ADD reused_objects :one, reused_operations :ops, saved_micro_usd :saved",
            ExpressionAttributeValues={":one": {"N": "1"}, ":ops": {"N": str(operations)},
                                       ":saved": {"N": str(round(saved_usd * MICRO_USD))}},
        )

    def stats(self) -> dict[str, float]:
        """Objects and operations reused so far, and the dollars saved (sum of the shards)."""
        totals = {"reused_objects": 0, "reused_operations": 0, "saved_usd": 0.0}
        keys = [{REUSE_KEY_ATTR: {"S": f"{STATS_PREFIX}{shard:02d}"}} for shard in range(STATS_SHARDS)]
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = self.client.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(self.table_name, []):
                totals["reused_objects"] += int(item.get("reused_objects", {}).get("N", 0))
                totals["reused_operations"] += int(item.get("reused_operations", {}).get("N", 0))
                totals["saved_usd"] += float(Decimal(item.get("saved_micro_usd", {}).get("N", "0")) / MICRO_USD)
            request = response.get("UnprocessedKeys") or {}
        return totals

    def _get(self, key: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.table_name, Key={REUSE_KEY_ATTR: {"S": key}},
                                        ConsistentRead=True)
        return response.get("Item")


def _waiters(item: dict[str, Any]) -> list[str]:
    return sorted(item.get(WAITERS_ATTR, {}).get("SS", []))


def _result(item: dict[str, Any]) -> IndexedResult:
    return IndexedResult(source_task_id=item["task_id"]["S"], result_uri=item["result_uri"]["S"],
                         model_version=item.get("model_version", {}).get("S"))


__all__ = ["Claim", "IndexedResult", "ResultIndex", "model_version_of", "request_options", "reuse_key"]
