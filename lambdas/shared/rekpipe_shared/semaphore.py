"""The video semaphore: a counting semaphore in DynamoDB whose waiters park on Step Functions task tokens.

Each Rekognition stored-video operation holds one slot while its job runs, so the pipeline never exceeds
the account's concurrent-job quota. A holder that finds the semaphore full parks its execution on a task
token, costing nothing, and is woken by the release that frees a slot. The protocol is the one in
ARCHITECTURE.md ("The video semaphore"), with three refinements that keep its properties:

* a releaser that finds the woken waiter's token dead releases that slot again only if the waiter's
  execution is no longer RUNNING. A RUNNING execution whose token is dead either has already received
  ``acquired`` from its own double-check (a second SendTaskSuccess on a token also fails) or will re-run
  Acquire after its fallback timeout and find the slot it owns. Either way it keeps the slot, so a woken
  execution never loses it and no confirming Acquire is needed after a wake;
* a hand-off never goes to a waiter that already holds (its own double-check won a freed slot), and such a
  stale waiter item is deleted, so a release is never wasted on it;
* a release that finds no waiter removes its holder and then wakes waiters while there is room. This
  closes the window where a holder parks and double-checks between the releaser's look-up of waiters
  and its removal.

Layout, all in partition ``SEMAPHORE#<name>`` of the table:

* ``sk = "SEMAPHORE"``: ``holders`` (map holder id -> ``{"at": ISO time, "execution": execution ARN}``)
  and ``limit``;
* ``sk = "WAIT#<first-enqueued-at>#<holder>"``: one waiter item per parked holder, with ``holder``,
  ``token``, ``execution``, ``enqueued_at`` and the TTL attribute ``expires_at``. The fixed-width ISO time
  sorts the waiters first-in, first-out;
* ``sk = "WAITREF#<holder>"``: the first-enqueued time of a parked holder, so that a holder parking again
  (after its fallback timeout) finds and keeps its place with one write instead of a scan of the queue.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
from botocore.exceptions import ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG, error_code

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# --- configuration ----------------------------------------------------------------------------
DEFAULT_SEMAPHORE_NAME = "video-jobs"
DEFAULT_WAITER_TTL_SECONDS = 24 * 3600
"""A parked holder refreshes its waiter item at each fallback re-check; the TTL only collects items of
executions that vanished without cleanup."""

SEMAPHORE_SK = "SEMAPHORE"
WAITER_SK_PREFIX = "WAIT#"
WAITER_REF_SK_PREFIX = "WAITREF#"

# Errors SendTaskSuccess returns when the token's task no longer waits (it finished, timed out or its
# execution ended). Step Functions does not say which, hence the execution status check on this path.
DEAD_TOKEN_ERRORS = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})
_MISSING_EXECUTION_ERRORS = frozenset({"ExecutionDoesNotExist", "InvalidArn"})
_RUNNING = "RUNNING"
_MAX_CONFLICT_RETRIES = 8

logger = logging.getLogger(__name__)


# --- errors -----------------------------------------------------------------------------------
class SemaphoreError(Exception):
    """Base class of the video semaphore's errors."""


class SemaphoreContentionError(SemaphoreError):
    """A hand-off or wake-up kept losing races to other writers and gave up; retrying is safe."""

    def __init__(self, holder: str, attempts: int):
        super().__init__(f"gave up releasing {holder!r} after {attempts} lost races; retry the release")
        self.holder = holder
        self.attempts = attempts


# --- values -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Holder:
    """A granted slot."""

    holder: str
    execution_arn: str
    granted_at: str


@dataclass(frozen=True)
class Waiter:
    """A parked holder, woken through its current task token."""

    holder: str
    execution_arn: str
    task_token: str
    enqueued_at: str
    sort_key: str


class SemaphoreSnapshot(NamedTuple):
    """Holders and waiters (oldest first) read at one moment, for status pages and tests."""

    holders: dict[str, Holder]
    waiters: list[Waiter]


@dataclass(frozen=True)
class ReleaseOutcome:
    """What a release did.

    Parameters
    ----------
    holder: str
        The holder asked to release.
    released: bool
        False when it did not hold (a repeated release is a no-op).
    handed_off_to: str | None
        The waiter that received the slot, if any.
    """

    holder: str
    released: bool
    handed_off_to: str | None = None


class VideoSemaphore:
    """Counting semaphore whose waiters are Step Functions executions parked on task tokens.

    Parameters
    ----------
    table_name: str
        DynamoDB table with partition key ``pk`` (S), sort key ``sk`` (S) and TTL attribute ``expires_at``.
    name: str
        Semaphore name; one table can hold several semaphores.
    limit: int
        Number of slots granted by ``acquire`` (the ``limit`` stored in the item serves wake-ups).
    boto3_session: boto3.session.Session, optional
        Session to build the default clients from.
    dynamodb_client, sfn_client: optional
        Clients to use instead of the defaults (tests inject fakes here).
    waiter_ttl_seconds: int
        Lifetime of a waiter item after its last refresh.
    max_lost_races: int
        Conditional failures tolerated by one release or wake-up before it raises
        :class:`SemaphoreContentionError`.

    Example
    -------
    >>> semaphore = VideoSemaphore("semaphore-table", limit=20)
    >>> if not semaphore.acquire("task-1#LabelDetection", execution_arn, task_token):
    ...     pass  # parked: a release will call SendTaskSuccess on task_token
    """

    def __init__(
        self,
        table_name: str,
        *,
        name: str = DEFAULT_SEMAPHORE_NAME,
        limit: int,
        boto3_session: boto3.session.Session | None = None,
        dynamodb_client: Any | None = None,
        sfn_client: Any | None = None,
        waiter_ttl_seconds: int = DEFAULT_WAITER_TTL_SECONDS,
        max_lost_races: int = 50,
    ):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.table_name = table_name
        self.name = name
        self.limit = limit
        self.waiter_ttl_seconds = waiter_ttl_seconds
        self.max_lost_races = max_lost_races
        # boto3.client uses the default session, whose loaded service models are shared; a new Session
        # would load them again.
        make_client = boto3_session.client if boto3_session is not None else boto3.client
        if dynamodb_client is None:
            dynamodb_client = make_client("dynamodb", config=DEFAULT_CONFIG)
        if sfn_client is None:
            sfn_client = make_client("stepfunctions", config=DEFAULT_CONFIG)
        self._ddb = dynamodb_client
        self._sfn = sfn_client
        self._pk = f"SEMAPHORE#{name}"
        self._key = {"pk": {"S": self._pk}, "sk": {"S": SEMAPHORE_SK}}
        self._item_ready = False

    # --- public API ---------------------------------------------------------------------------
    def acquire(self, holder: str, execution_arn: str, task_token: str, *, limit: int | None = None) -> bool:
        """Take a slot, or park the caller's execution on ``task_token`` until a release hands one over.

        Idempotent: a holder that already holds succeeds again. On success SendTaskSuccess(task_token,
        ``{"acquired": true, ...}``) is called; on failure the execution stays parked.

        Parameters
        ----------
        holder: str
            ``<execution name>#<operation>``.
        execution_arn: str
            The execution that waits on ``task_token``.
        task_token: str
            Token of the ``.waitForTaskToken`` task that invoked the caller.
        limit: int, optional
            Overrides the instance's limit for this call.

        Returns
        -------
        bool
            True if the slot was granted now, False if the execution is parked.
        """
        limit = limit or self.limit
        if self._try_take(holder, execution_arn, limit):
            self._notify(holder, task_token, via="acquire")
            return True
        waiter = self._park(holder, execution_arn, task_token)
        # Double-check: a release that ran between the first try and the waiter write saw no waiter.
        if self._try_take(holder, execution_arn, limit):
            self._delete_waiter(waiter)
            self._notify(holder, task_token, via="acquire")
            return True
        logger.info("semaphore full, parked", extra={"holder": holder, "waiter": waiter.sort_key})
        return False

    def release(self, holder: str, *, execution_arn: str | None = None) -> ReleaseOutcome:
        """Release ``holder``'s slot, handing it to the oldest waiter if there is one.

        Parameters
        ----------
        holder: str
            The holder to release; releasing a holder that does not hold is a no-op.
        execution_arn: str, optional
            Release only if the slot was granted to this execution (cleanup paths use it so that a
            stale decision can never release a slot granted since).

        Returns
        -------
        ReleaseOutcome
        """
        current, current_execution = holder, execution_arn
        released, handed_off_to, lost_races = False, None, 0
        while True:
            if lost_races > self.max_lost_races:
                raise SemaphoreContentionError(holder, lost_races)
            holders = self._read_state()[0]
            entry = holders.get(current)
            if entry is None or (current_execution is not None and entry.execution_arn != current_execution):
                if lost_races:
                    # A write of ours may have landed before its reply was lost, or a concurrent cleanup
                    # released the holder: either way a slot may be free with nobody told.
                    self.wake()
                break
            waiter = self._next_waiter(holders)
            if waiter is None:
                if self._remove_holder(current, current_execution):
                    released = True
                    self.wake()
                    break
                lost_races += 1
                continue
            if not self._transfer(current, current_execution, waiter):
                lost_races += 1
                _backoff(lost_races)
                continue
            released = True
            if self._notify(waiter.holder, waiter.task_token, via="handoff") or self.execution_is_running(
                waiter.execution_arn
            ):
                # A RUNNING execution with a dead token keeps the slot: see the module docstring.
                handed_off_to = waiter.holder
                break
            logger.info("woken waiter is gone, releasing its slot again", extra={"holder": waiter.holder})
            current, current_execution = waiter.holder, waiter.execution_arn
        return ReleaseOutcome(holder=holder, released=released, handed_off_to=handed_off_to)

    def wake(self) -> list[str]:
        """Grant free slots to the oldest waiters.

        Releases call this after removing a holder with no waiter in sight; the reconciler calls it to
        recover from lost wake-ups.

        Returns
        -------
        list[str]
            Holders that were granted a slot.
        """
        woken: list[str] = []
        lost_races = 0
        while lost_races <= self.max_lost_races:
            holders, limit = self._read_state()
            if len(holders) >= limit:
                break
            waiter = self._next_waiter(holders)
            if waiter is None:
                break
            if not self._promote(waiter, limit):
                lost_races += 1
                _backoff(lost_races)
                continue
            if self._notify(waiter.holder, waiter.task_token, via="wake") or self.execution_is_running(
                waiter.execution_arn
            ):
                woken.append(waiter.holder)
            else:
                self._remove_holder(waiter.holder, waiter.execution_arn)
        return woken

    def release_execution(self, execution: str) -> list[str]:
        """Release every slot of an execution and delete its waiter items.

        Parameters
        ----------
        execution: str
            An execution ARN, or a bare execution name (matches holders ``<name>#...``).

        Returns
        -------
        list[str]
            The holders released.
        """

        def belongs(holder: str, execution_arn: str) -> bool:
            if execution.startswith("arn:"):
                return execution_arn == execution
            return holder.startswith(f"{execution}#") or execution_arn.rsplit(":", 1)[-1] == execution

        snapshot = self.snapshot()
        # Waiters first, so that the releases below cannot hand a slot to this execution.
        for waiter in snapshot.waiters:
            if belongs(waiter.holder, waiter.execution_arn):
                self._delete_waiter(waiter, only_token=waiter.task_token)
        released = []
        for entry in snapshot.holders.values():
            if belongs(entry.holder, entry.execution_arn) and self._release_for_cleanup(entry):
                released.append(entry.holder)
        return released

    def reconcile(self, is_running: Callable[[str], bool] | None = None) -> list[str]:
        """Release every holder whose execution is no longer RUNNING and drop waiters of dead executions.

        Parameters
        ----------
        is_running: Callable[[str], bool], optional
            Tells whether an execution ARN is RUNNING; defaults to :meth:`execution_is_running`.

        Returns
        -------
        list[str]
            The holders released.
        """
        check = is_running or self.execution_is_running
        known: dict[str, bool] = {}

        def alive(execution_arn: str) -> bool:
            if execution_arn not in known:
                known[execution_arn] = check(execution_arn)
            return known[execution_arn]

        snapshot = self.snapshot()
        for waiter in snapshot.waiters:
            if not alive(waiter.execution_arn):
                self._delete_waiter(waiter, only_token=waiter.task_token)
        released = []
        for entry in snapshot.holders.values():
            if not alive(entry.execution_arn) and self._release_for_cleanup(entry):
                released.append(entry.holder)
        self.wake()
        return released

    def snapshot(self) -> SemaphoreSnapshot:
        """Read the holders and the waiters, oldest waiter first."""
        holders = self._read_state()[0]
        waiters = [_waiter_from_item(item) for item in self._query_waiters()]
        return SemaphoreSnapshot(holders=holders, waiters=waiters)

    def execution_is_running(self, execution_arn: str) -> bool:
        """Tell whether an execution is RUNNING; a missing execution is not."""
        if not execution_arn:
            return False
        try:
            return self._sfn.describe_execution(executionArn=execution_arn)["status"] == _RUNNING
        except ClientError as error:
            if error_code(error) in _MISSING_EXECUTION_ERRORS:
                return False
            raise

    def _release_for_cleanup(self, entry: Holder) -> bool:
        return self.release(entry.holder, execution_arn=entry.execution_arn).released

    # --- DynamoDB operations ----------------------------------------------------------------------
    def _ensure_item(self) -> None:
        # The take condition needs `holders` to exist (DynamoDB evaluates size() of a missing attribute as
        # false, but moto 5.2.5 raises ValueError), so create the item once per instance.
        if self._item_ready:
            return
        self._write(
            "update_item",
            TableName=self.table_name,
            Key=self._key,
            UpdateExpression="SET holders = if_not_exists(holders, :empty), #limit = if_not_exists(#limit, :limit)",
            ExpressionAttributeNames={"#limit": "limit"},
            ExpressionAttributeValues={":empty": {"M": {}}, ":limit": {"N": str(self.limit)}},
        )
        self._item_ready = True

    def _try_take(self, holder: str, execution_arn: str, limit: int) -> bool:
        for _ in range(2):
            self._ensure_item()
            try:
                self._write(
                    "update_item",
                    TableName=self.table_name,
                    Key=self._key,
                    UpdateExpression="SET holders.#h = if_not_exists(holders.#h, :grant), #limit = :limit",
                    ConditionExpression=(
                        "(size(holders) < :limit AND attribute_not_exists(holders.#h)) OR attribute_exists(holders.#h)"
                    ),
                    ExpressionAttributeNames={"#h": holder, "#limit": "limit"},
                    ExpressionAttributeValues={":grant": _grant(execution_arn), ":limit": {"N": str(limit)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return True
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                if "holders" in error.response.get("Item", {}):
                    return False
                self._item_ready = False  # the item was deleted under us: create it and try again
        return False

    def _park(self, holder: str, execution_arn: str, task_token: str) -> Waiter:
        expires_at = {"N": str(int(time.time()) + self.waiter_ttl_seconds)}
        ref = self._write(
            "update_item",
            TableName=self.table_name,
            Key=self._ref_key(holder),
            UpdateExpression="SET enqueued_at = if_not_exists(enqueued_at, :now), expires_at = :expires",
            ExpressionAttributeValues={":now": {"S": _now_iso()}, ":expires": expires_at},
            ReturnValues="ALL_NEW",
        )
        enqueued_at = ref["Attributes"]["enqueued_at"]["S"]
        waiter = Waiter(
            holder=holder,
            execution_arn=execution_arn,
            task_token=task_token,
            enqueued_at=enqueued_at,
            sort_key=f"{WAITER_SK_PREFIX}{enqueued_at}#{holder}",
        )
        self._write(
            "put_item",
            TableName=self.table_name,
            Item={
                "pk": {"S": self._pk},
                "sk": {"S": waiter.sort_key},
                "holder": {"S": holder},
                "execution": {"S": execution_arn},
                "token": {"S": task_token},
                "enqueued_at": {"S": enqueued_at},
                "expires_at": expires_at,
            },
        )
        return waiter

    def _read_state(self) -> tuple[dict[str, Holder], int]:
        item = self._ddb.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True).get("Item", {})
        holders = {
            name: Holder(
                holder=name,
                execution_arn=value["M"].get("execution", {}).get("S", ""),
                granted_at=value["M"].get("at", {}).get("S", ""),
            )
            for name, value in item.get("holders", {}).get("M", {}).items()
        }
        limit = int(item["limit"]["N"]) if "limit" in item else self.limit
        return holders, limit

    def _query_waiters(self, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield waiter items oldest first, page by page."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": self._pk}, ":prefix": {"S": WAITER_SK_PREFIX}},
            "ConsistentRead": True,
        }
        if page_size:
            kwargs["Limit"] = page_size
        while True:
            page = self._ddb.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _next_waiter(self, holders: dict[str, Holder]) -> Waiter | None:
        for item in self._query_waiters(page_size=25):
            waiter = _waiter_from_item(item)
            if waiter.holder not in holders:
                return waiter
            # Its own double-check won a slot; its Lambda deletes this item unless it crashed first.
            self._delete_waiter(waiter, only_token=waiter.task_token)
        return None

    def _transfer(self, holder: str, execution_arn: str | None, waiter: Waiter) -> bool:
        condition = "attribute_exists(holders.#me) AND attribute_not_exists(holders.#w)"
        names = {"#me": holder, "#w": waiter.holder}
        values: dict[str, Any] = {":grant": _grant(waiter.execution_arn)}
        if execution_arn is not None:
            condition += " AND holders.#me.#execution = :execution"
            names["#execution"] = "execution"
            values[":execution"] = {"S": execution_arn}
        update = {
            "TableName": self.table_name,
            "Key": self._key,
            "UpdateExpression": "REMOVE holders.#me SET holders.#w = :grant",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        return self._transact_grant(update, waiter)

    def _promote(self, waiter: Waiter, limit: int) -> bool:
        update = {
            "TableName": self.table_name,
            "Key": self._key,
            "UpdateExpression": "SET holders.#w = :grant",
            "ConditionExpression": "size(holders) < :limit AND attribute_not_exists(holders.#w)",
            "ExpressionAttributeNames": {"#w": waiter.holder},
            "ExpressionAttributeValues": {":grant": _grant(waiter.execution_arn), ":limit": {"N": str(limit)}},
        }
        return self._transact_grant(update, waiter)

    def _transact_grant(self, update: dict[str, Any], waiter: Waiter) -> bool:
        """Apply ``update`` to the semaphore and consume ``waiter`` atomically; False if a condition failed."""
        try:
            self._write(
                "transact_write_items",
                TransactItems=[
                    {"Update": update},
                    {"Delete": self._delete_waiter_request(waiter, only_token=waiter.task_token)},
                    {"Delete": {"TableName": self.table_name, "Key": self._ref_key(waiter.holder)}},
                ],
            )
            return True
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            logger.debug("grant transaction cancelled", extra={"waiter": waiter.holder, "reasons": reasons})
            return False

    def _remove_holder(self, holder: str, execution_arn: str | None) -> bool:
        condition = "attribute_exists(holders.#me)"
        names = {"#me": holder}
        kwargs: dict[str, Any] = {}
        if execution_arn is not None:
            condition += " AND holders.#me.#execution = :execution"
            names["#execution"] = "execution"
            kwargs["ExpressionAttributeValues"] = {":execution": {"S": execution_arn}}
        try:
            self._write(
                "update_item",
                TableName=self.table_name,
                Key=self._key,
                UpdateExpression="REMOVE holders.#me",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                **kwargs,
            )
            return True
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return False

    def _delete_waiter(self, waiter: Waiter, *, only_token: str | None = None) -> None:
        """Delete a waiter item and its place reference; with ``only_token``, only if not re-parked since."""
        try:
            self._write(
                "transact_write_items",
                TransactItems=[
                    {"Delete": self._delete_waiter_request(waiter, only_token=only_token)},
                    {"Delete": {"TableName": self.table_name, "Key": self._ref_key(waiter.holder)}},
                ],
            )
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise

    def _delete_waiter_request(self, waiter: Waiter, *, only_token: str | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": self._pk}, "sk": {"S": waiter.sort_key}},
        }
        if only_token is not None:
            request["ConditionExpression"] = "#token = :token"
            request["ExpressionAttributeNames"] = {"#token": "token"}
            request["ExpressionAttributeValues"] = {":token": {"S": only_token}}
        return request

    def _ref_key(self, holder: str) -> dict[str, Any]:
        return {"pk": {"S": self._pk}, "sk": {"S": f"{WAITER_REF_SK_PREFIX}{holder}"}}

    def _write(self, operation: str, **kwargs: Any) -> Any:
        """Call a DynamoDB write, retrying while a transaction holds one of its items.

        botocore does not retry TransactionConflictException, which a plain write gets when it touches an item
        that a concurrent hand-off transaction is changing.
        """
        conflicts = 0
        while True:
            try:
                return getattr(self._ddb, operation)(**kwargs)
            except ClientError as error:
                conflicts += 1
                if error_code(error) != "TransactionConflictException" or conflicts >= _MAX_CONFLICT_RETRIES:
                    raise
                _backoff(conflicts)

    # --- Step Functions ------------------------------------------------------------------------
    def _notify(self, holder: str, task_token: str, *, via: str) -> bool:
        """SendTaskSuccess(acquired); False if the token is dead."""
        output = json.dumps({"acquired": True, "holder": holder, "via": via}, separators=(",", ":"))
        try:
            self._sfn.send_task_success(taskToken=task_token, output=output)
            return True
        except ClientError as error:
            if error_code(error) in DEAD_TOKEN_ERRORS:
                logger.info("task token is dead", extra={"holder": holder, "error": error_code(error)})
                return False
            raise


def _grant(execution_arn: str) -> dict[str, Any]:
    return {"M": {"at": {"S": _now_iso()}, "execution": {"S": execution_arn}}}


def _waiter_from_item(item: dict[str, Any]) -> Waiter:
    return Waiter(
        holder=item["holder"]["S"],
        execution_arn=item.get("execution", {}).get("S", ""),
        task_token=item["token"]["S"],
        enqueued_at=item.get("enqueued_at", {}).get("S", ""),
        sort_key=item["sk"]["S"],
    )


def _now_iso() -> str:
    # Fixed width (microseconds, Z) so that the lexical order of waiter keys is the time order.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))


def semaphore_from_environment() -> VideoSemaphore:
    """The semaphore a function was deployed with, from its environment (fails fast if unset)."""
    import os

    import boto3

    from rekpipe_shared.aws import DEFAULT_CONFIG
    from rekpipe_shared.constants import SEMAPHORE_TABLE_NAME_ENV, VIDEO_SLOT_LIMIT_ENV

    return VideoSemaphore(
        os.environ[SEMAPHORE_TABLE_NAME_ENV],
        limit=int(os.environ[VIDEO_SLOT_LIMIT_ENV]),
        dynamodb_client=boto3.client("dynamodb", config=DEFAULT_CONFIG),
        sfn_client=boto3.client("stepfunctions", config=DEFAULT_CONFIG),
    )
