"""The task table: one item per object version, the source of truth for what happened to it.

Every status change is a single conditional write of the task item, so a duplicate event or a
retried handler is a no-op (never a second bill). Counts by status are kept from the table's stream
(``rekpipe_shared.status_counts``) and read from 16 small items instead of a scan of millions. A write
that changes the status sets ``prev_status``; every other write removes it, which is what lets the
stream's filter hand ``route_task`` status changes only.

Over 400 lines, on purpose: every write of a task item lives here, beside the invariants (``prev_status``, the
sparse index attributes, the claim's lease) that each write keeps; split apart, a write could forget one.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from rekpipe_shared.conflicts import WriteConflict, retry_on_conflict
from rekpipe_shared.schema import (
    ATTENTION_INDEX,
    ATTENTION_STATUSES,
    IN_FLIGHT_ATTR,
    IN_FLIGHT_INDEX,
    IN_FLIGHT_STATUSES,
    PREV_STATUS_ATTR,
    STATUS_FAILED,
    STATUS_IN_PROGRESS,
    STATUS_PARTIAL,
    STATUS_PENDING,
    STATUS_QUEUED,
    STATUS_SUCCEEDED,
    TASK_ID_ATTR,
    TERMINAL_STATUSES,
)
from rekpipe_shared.status_counts import StatusCounts, is_bookkeeping_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from mypy_boto3_dynamodb import DynamoDBClient

VIDEO_BACKLOG = "QUEUED#video"
"""The ``in_flight_status`` of a QUEUED video that waits for the slot dispatcher's admission (no message
was sent for it). Its own index partition keeps admission O(admitted) while millions of images are
QUEUED, and keeps a long backlog out of the stuck-QUEUED scan: waiting there is normal."""
VIDEO_ADMITTED = "QUEUED#admitted"
"""The ``in_flight_status`` of a QUEUED video the dispatcher sent to the video queue, until start_video_workflow
claims it: admission counts these, so a slow start never makes it admit more."""
WAITING_FOR_ATTR = "waiting_for"
"""On a QUEUED video task parked behind an identical video's analysis (``rekpipe_shared.reuse``)."""

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def task_id_for(bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
    """Derive the task id of one object version, so every source of the same version agrees.

    The version id identifies a version in a versioned bucket; without one, the ETag stands in.
    """
    identity = f"v:{version_id}" if version_id and version_id != "null" else f"e:{(etag or '').strip(chr(34))}"
    return hashlib.sha256(f"{bucket}\x00{key}\x00{identity}".encode()).hexdigest()[:40]


def execution_name(task_id: str, run: int) -> str:
    """The video execution of one run of a task: unique per run (Standard workflows refuse a reused
    name for 90 days) and at most 80 characters."""
    return f"{task_id}-{run}"


def task_id_of_execution(execution: str) -> str:
    """The task behind an execution name or ARN."""
    return execution.rsplit(":", 1)[-1].rsplit("-", 1)[0]


def is_counter_id(task_id: str) -> bool:
    """True for the counter and marker items that share the table with tasks."""
    return is_bookkeeping_id(task_id)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NewTask:
    """What ingestion knows about an object version when it first sees it."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int
    media_type: str
    operations: tuple[str, ...]
    source: str
    task_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.task_id:
            object.__setattr__(self, "task_id", task_id_for(self.bucket, self.key, self.version_id, self.etag))


class TaskTable:
    """Conditional, counted access to the task table.

    Parameters
    ----------
    table_name: str
        The DynamoDB table.
    boto3_client: DynamoDBClient | None
        Injected client (tests); built from ``boto3_session`` and ``boto_config`` otherwise.
    clock: Callable[[], float]
        Epoch seconds, for leases.
    """

    def __init__(
        self,
        table_name: str,
        *,
        boto3_client: DynamoDBClient | None = None,
        boto3_session: boto3.session.Session | None = None,
        boto_config: Config | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        session = boto3_session or boto3.session.Session()
        self.client = boto3_client or session.client(
            "dynamodb", config=boto_config or Config(retries={"mode": "standard", "max_attempts": 5})
        )
        self._clock = clock

    # --- reads -------------------------------------------------------------------------------
    def get(self, task_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table_name, Key=_key(task_id), ConsistentRead=consistent
        )
        return _from_item(response["Item"]) if "Item" in response else None

    def counts(self) -> dict[str, int]:
        """Tasks by status, from the stream-kept counters (16 reads, never a scan)."""
        return StatusCounts(self.table_name, self.client).read()

    def needing_attention(self, status: str = STATUS_FAILED, *, limit: int = 20) -> list[dict[str, Any]]:
        """The newest FAILED (or PARTIAL) tasks, from the sparse index."""
        if status not in ATTENTION_STATUSES:
            raise ValueError(f"only {sorted(ATTENTION_STATUSES)} are indexed, not {status!r}")
        response = self.client.query(
            TableName=self.table_name,
            IndexName=ATTENTION_INDEX,
            KeyConditionExpression="attention_status = :s",
            ExpressionAttributeValues={":s": {"S": status}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_from_item(item) for item in response.get("Items", [])]

    def iter_needing_attention(self, status: str = STATUS_FAILED) -> Iterator[dict[str, Any]]:
        """Every task of an attention status, page by page (for redrive)."""
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            IndexName=ATTENTION_INDEX,
            KeyConditionExpression="attention_status = :s",
            ExpressionAttributeValues={":s": {"S": status}},
        ):
            for item in page.get("Items", []):
                yield _from_item(item)

    def iter_in_flight(self, status: str, *, updated_before: str | None = None,
                       page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Tasks of one non-terminal status, oldest first, from the sparse ``in_flight`` index.

        Parameters
        ----------
        status: str
            PENDING, QUEUED or IN_PROGRESS.
        updated_before: str | None
            Only tasks whose ``updated_at`` (ISO 8601, UTC) is earlier than this.
        """
        paginator = self.client.get_paginator("query")
        pages = {"PaginationConfig": {"PageSize": page_size}} if page_size else {}
        for page in paginator.paginate(**self._in_flight_query(status, updated_before), **pages):
            for item in page.get("Items", []):
                yield _from_item(item)

    def mark_admitted(self, task_id: str, *, again: bool = False) -> dict[str, Any] | None:
        """Backlog -> admitted once its message was sent (``again``: admitted -> admitted, a re-send, which
        renews ``updated_at``); None when the task is no longer where the caller saw it."""
        source = VIDEO_ADMITTED if again else VIDEO_BACKLOG
        return self._transition(task_id, STATUS_QUEUED, STATUS_QUEUED, in_flight=VIDEO_ADMITTED,
                                extra_condition=(f"{IN_FLIGHT_ATTR} = :source", {":source": source}))

    def iter_video_admitted(self) -> Iterator[dict[str, Any]]:
        """Videos sent to the video queue and not yet claimed, oldest admission first."""
        return self.iter_in_flight(VIDEO_ADMITTED)

    def iter_video_backlog(self, *, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """QUEUED videos waiting for admission, oldest first (see :data:`VIDEO_BACKLOG`); ``page_size``
        bounds each read to about what the caller will use."""
        return self.iter_in_flight(VIDEO_BACKLOG, page_size=page_size)

    def count_in_flight(self, status: str, *, updated_before: str | None = None, media_type: str | None = None) -> int:
        """How many tasks of one non-terminal status (and media type) were last updated before a time (index only;
        the media filter reads every task of the status: use it where those are few, as IN_PROGRESS ones are)."""
        paginator = self.client.get_paginator("query")
        query = self._in_flight_query(status, updated_before)
        if media_type is not None:
            query["FilterExpression"] = "media_type = :media"
            query["ExpressionAttributeValues"] = {**query["ExpressionAttributeValues"], ":media": {"S": media_type}}
        return sum(int(page.get("Count", 0)) for page in paginator.paginate(**query, Select="COUNT"))

    def _in_flight_query(self, status: str, updated_before: str | None) -> dict[str, Any]:
        if status not in (*IN_FLIGHT_STATUSES, VIDEO_BACKLOG, VIDEO_ADMITTED):
            raise ValueError(f"only {sorted(IN_FLIGHT_STATUSES)} are indexed as in flight, not {status!r}")
        condition = "in_flight_status = :s"
        values: dict[str, Any] = {":s": {"S": status}}
        if updated_before:
            condition += " AND updated_at < :before"
            values[":before"] = {"S": updated_before}
        return {"TableName": self.table_name, "IndexName": IN_FLIGHT_INDEX, "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values, "ScanIndexForward": True}

    # --- transitions ---------------------------------------------------------------------------
    def create(self, task: NewTask) -> bool:
        """Insert a PENDING task; False (and nothing written) when this version is already known."""
        return self._insert(task, STATUS_PENDING, {})

    def create_failed(self, task: NewTask, error_code: str, error_message: str) -> bool:
        """Record a version that can be judged without Rekognition (empty, too large) as FAILED."""
        return self._insert(task, STATUS_FAILED, {"error_code": error_code, "error_message": error_message,
                                                   "attention_status": STATUS_FAILED})

    def mark_queued(self, task_id: str, *, backlog: bool = False) -> dict[str, Any] | None:
        """PENDING -> QUEUED as the task is sent to its queue, or, with ``backlog``, as a video is left
        for the slot dispatcher's admission (:data:`VIDEO_BACKLOG`); counts the run."""
        return self._transition(task_id, STATUS_PENDING, STATUS_QUEUED, add={"run": 1},
                                in_flight=VIDEO_BACKLOG if backlog else None)

    def claim(self, task_id: str, lease_seconds: int) -> dict[str, Any] | None:
        """Take a routed task (QUEUED, or PENDING if the router has not marked it yet) for analysis,
        or one whose previous attempt's lease ran out.

        Returns the task, or None when it is not claimable (done, or held by a live attempt),
        which is how duplicate deliveries are turned into no-ops.
        """
        now = self._clock()
        sets = {"lease_until": int(now + lease_seconds)}
        # The router sends the message before it marks the task QUEUED, so a fast consumer can see
        # the task PENDING, or see it move to QUEUED between a read and a write: follow the status.
        def attempt() -> dict[str, Any] | None:
            current = self.get(task_id)
            status = (current or {}).get("status")
            if status in (STATUS_PENDING, STATUS_QUEUED):
                add = {"attempts": 1, "run": 1} if status == STATUS_PENDING else {"attempts": 1}
                claimed = self._transition(task_id, status, STATUS_IN_PROGRESS, set_=sets, add=add,
                                           remove=[WAITING_FOR_ATTR])
            elif status == STATUS_IN_PROGRESS and int(current.get("lease_until") or 0) < now:
                claimed = self._transition(
                    task_id, STATUS_IN_PROGRESS, STATUS_IN_PROGRESS, set_=sets, add={"attempts": 1},
                    extra_condition=("lease_until < :lease_now", {":lease_now": int(now)}),
                )
            else:
                return None  # missing, finished, or held by a live attempt
            if claimed is None:
                raise WriteConflict(task_id)  # the status moved between the read and the write
            return claimed

        try:
            return retry_on_conflict(attempt)
        except WriteConflict:
            return None

    def release_claim(self, task_id: str, reason: str) -> dict[str, Any] | None:
        """IN_PROGRESS -> QUEUED so the queue's redelivery can try again."""
        return self._transition(task_id, STATUS_IN_PROGRESS, STATUS_QUEUED,
                                set_={"last_retry_reason": reason, "lease_until": 0})

    def park_waiting(self, task_id: str, waiting_for: dict[str, Any]) -> dict[str, Any] | None:
        """IN_PROGRESS -> QUEUED for a video that waits on an identical video's analysis (``waiting_for``
        says which); its message is acknowledged, and the leader sends it again when it ends."""
        return self._transition(task_id, STATUS_IN_PROGRESS, STATUS_QUEUED,
                                set_={WAITING_FOR_ATTR: waiting_for, "lease_until": 0,
                                      "last_retry_reason": "waiting for identical content"})

    def record_output(self, task_id: str, operation: str, uri: str) -> None:
        """Remember one finished analysis at once, so a retry never pays for it again."""
        self.client.update_item(
            TableName=self.table_name,
            Key=_key(task_id),
            UpdateExpression="SET outputs.#op = :uri, updated_at = :now REMOVE #prev",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeNames={"#op": operation, "#prev": PREV_STATUS_ATTR},
            ExpressionAttributeValues={":uri": {"S": uri}, ":now": {"S": now_iso()}},
        )

    def record_reuse(self, task_id: str, api: str, uri: str, source: dict[str, Any]) -> None:
        """Remember one output copied from an identical object's result, and where it came from."""
        self.client.update_item(
            TableName=self.table_name,
            Key=_key(task_id),
            UpdateExpression="SET outputs.#op = :uri, reused = if_not_exists(reused, :empty), updated_at = :now "
                             "REMOVE #prev",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeNames={"#op": api, "#prev": PREV_STATUS_ATTR},
            ExpressionAttributeValues={":uri": {"S": uri}, ":empty": {"M": {}}, ":now": {"S": now_iso()}},
        )
        self.client.update_item(
            TableName=self.table_name,
            Key=_key(task_id),
            UpdateExpression="SET reused.#op = :source REMOVE #prev",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeNames={"#op": api, "#prev": PREV_STATUS_ATTR},
            ExpressionAttributeValues={":source": _serializer.serialize(_plain(source))},
        )

    def finish(
        self,
        task_id: str,
        status: str,
        *,
        outputs: dict[str, str] | None = None,
        manifest_uri: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        operation_errors: dict[str, dict[str, str]] | None = None,
        from_status: str = STATUS_IN_PROGRESS,
    ) -> dict[str, Any] | None:
        """Record the outcome: SUCCEEDED, PARTIAL or FAILED, with where the outputs are and why not."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"finish takes a terminal status, not {status!r}")
        sets: dict[str, Any] = {"lease_until": 0}
        removes: list[str] = []
        if outputs is not None:
            sets["outputs"] = outputs
        if manifest_uri:
            sets["manifest_uri"] = manifest_uri
        for name, value in (("error_code", error_code), ("error_message", error_message),
                            ("operation_errors", operation_errors)):
            if value:
                sets[name] = value
            else:
                removes.append(name)
        if status in ATTENTION_STATUSES:
            sets["attention_status"] = status
        else:
            removes.append("attention_status")
        return self._transition(task_id, from_status, status, set_=sets, remove=removes)

    def requeue(self, task_id: str, from_status: str = STATUS_FAILED, *, force: bool = False) -> dict[str, Any] | None:
        """FAILED/PARTIAL (or, with ``force``, SUCCEEDED) -> PENDING, which the stream routes again:
        re-analysis without re-upload. ``force`` also stops the run from reusing an identical object's
        result (``force_analysis``), e.g. after a model upgrade."""
        if from_status not in ATTENTION_STATUSES and not (force and from_status == STATUS_SUCCEEDED):
            raise ValueError(f"only {sorted(ATTENTION_STATUSES)} tasks can be re-queued (SUCCEEDED with force)")
        sets: dict[str, Any] = {"requeued_at": now_iso(), "outputs": {}}
        removes = ["attention_status", "error_code", "error_message", "operation_errors", "manifest_uri", "reused"]
        if force:
            sets["force_analysis"] = True
        else:
            removes.append("force_analysis")
        return self._transition(task_id, from_status, STATUS_PENDING, set_=sets, remove=removes)

    def reset_stuck(self, task: dict[str, Any], reason: str, *, lease_must_be_expired: bool) -> dict[str, Any] | None:
        """IN_PROGRESS -> PENDING for a task whose attempt is known to be dead; the stream routes it again.

        Only if the task is unchanged since it was examined (same ``updated_at``), and, for an image,
        only if its lease has run out, so an attempt that came alive meanwhile is never doubled.
        Recorded outputs are kept, so a finished analysis is not paid for again.
        """
        condition = "updated_at = :seen"
        values: dict[str, Any] = {":seen": task["updated_at"]}
        if lease_must_be_expired:
            condition += " AND (attribute_not_exists(lease_until) OR lease_until < :lease_now)"
            values[":lease_now"] = int(self._clock())
        return self._transition(task["task_id"], STATUS_IN_PROGRESS, STATUS_PENDING,
                                set_={"lease_until": 0, "last_retry_reason": reason, "rerouted_at": now_iso()},
                                extra_condition=(condition, values))

    def mark_resent(self, task: dict[str, Any]) -> dict[str, Any] | None:
        """Note on a QUEUED task that its queue message was sent again (it leaves the stuck list)."""
        return self._transition(task["task_id"], STATUS_QUEUED, STATUS_QUEUED, set_={"rerouted_at": now_iso()},
                                extra_condition=("updated_at = :seen", {":seen": task["updated_at"]}))

    def set_attributes(self, task_id: str, **values: Any) -> None:
        """Set bookkeeping attributes that do not change the status (execution ARN, job ids)."""
        names = {f"#a{i}": name for i, name in enumerate(values)}
        self.client.update_item(
            TableName=self.table_name,
            Key=_key(task_id),
            UpdateExpression="SET " + ", ".join(f"{alias} = :v{i}" for i, alias in enumerate(names))
            + ", updated_at = :now REMOVE #prev",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeNames={**names, "#prev": PREV_STATUS_ATTR},
            ExpressionAttributeValues={
                **{f":v{i}": _serializer.serialize(value) for i, value in enumerate(values.values())},
                ":now": {"S": now_iso()},
            },
        )

    # --- internals -----------------------------------------------------------------------------
    def _insert(self, task: NewTask, status: str, extra: dict[str, Any]) -> bool:
        now = now_iso()
        item = {
            "task_id": task.task_id,
            "bucket": task.bucket,
            "object_key": task.key,
            "etag": (task.etag or "").strip('"') or None,
            "version_id": task.version_id if task.version_id and task.version_id != "null" else None,
            "size": task.size,
            "media_type": task.media_type,
            "operations": list(task.operations),
            "status": status,
            "source": task.source,
            "attempts": 0,
            "run": 0,
            "outputs": {},
            "created_at": now,
            "updated_at": now,
            **({IN_FLIGHT_ATTR: status} if status in IN_FLIGHT_STATUSES else {}),
            **extra,
        }
        try:
            self.client.put_item(TableName=self.table_name,
                                 Item=_to_item({k: v for k, v in item.items() if v is not None}),
                                 ConditionExpression="attribute_not_exists(task_id)")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _transition(
        self,
        task_id: str,
        from_status: str,
        to_status: str,
        *,
        set_: dict[str, Any] | None = None,
        add: dict[str, int] | None = None,
        remove: Iterable[str] = (),
        extra_condition: tuple[str, dict[str, Any]] | None = None,
        in_flight: str | None = None,
    ) -> dict[str, Any] | None:
        """Move one task between statuses if (and only if) it is in ``from_status``.

        ``in_flight_status`` follows the status (or is ``in_flight``): set while it is non-terminal,
        removed once it ends.
        """
        set_ = dict(set_ or {})
        remove = list(remove)
        if from_status != to_status:
            set_[PREV_STATUS_ATTR] = from_status
        else:
            remove.append(PREV_STATUS_ATTR)
        if to_status in IN_FLIGHT_STATUSES:
            set_[IN_FLIGHT_ATTR] = in_flight or to_status
        else:
            remove.append(IN_FLIGHT_ATTR)
        names = {"#s": "status"}
        values: dict[str, Any] = {":from": from_status, ":to": to_status, ":now": now_iso()}
        set_parts = ["#s = :to", "updated_at = :now"]
        for i, (name, value) in enumerate((set_ or {}).items()):
            names[f"#set{i}"] = name
            values[f":set{i}"] = value
            set_parts.append(f"#set{i} = :set{i}")
        expression = "SET " + ", ".join(set_parts)
        if add:
            add_parts = []
            for i, (name, value) in enumerate(add.items()):
                names[f"#add{i}"] = name
                values[f":add{i}"] = value
                add_parts.append(f"#add{i} :add{i}")
            expression += " ADD " + ", ".join(add_parts)
        removed = [name for name in remove if name not in (set_ or {})]
        if removed:
            for i, name in enumerate(removed):
                names[f"#rm{i}"] = name
            expression += " REMOVE " + ", ".join(f"#rm{i}" for i in range(len(removed)))
        condition = "#s = :from"
        if extra_condition:
            clash = set(extra_condition[1]) & set(values)
            if clash:  # it would silently replace a value of the update itself (``:now`` is updated_at's)
                raise ValueError(f"extra_condition reuses the placeholders {sorted(clash)}")
            condition = f"{condition} AND {extra_condition[0]}"
            values.update(extra_condition[1])
        try:
            response = self.client.update_item(
                TableName=self.table_name, Key=_key(task_id), UpdateExpression=expression,
                ConditionExpression=condition, ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item(values), ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _from_item(response["Attributes"])


def _key(task_id: str) -> dict[str, Any]:
    return {TASK_ID_ATTR: {"S": task_id}}


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(_plain(value)) for name, value in values.items()}


def _plain(value: Any) -> Any:
    """DynamoDB wants Decimals, not floats; tuples become lists."""
    from decimal import Decimal

    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _native(_deserializer.deserialize(value)) for name, value in item.items()}


def _native(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_native(v) for v in value]
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_native(v) for v in value}
    return value


def from_stream_image(image: dict[str, Any]) -> dict[str, Any]:
    """Turn a stream record's NewImage/OldImage (DynamoDB JSON) into plain values."""
    return _from_item(image)


__all__ = [
    "ATTENTION_INDEX",
    "IN_FLIGHT_INDEX",
    "STATUS_PARTIAL",
    "STATUS_SUCCEEDED",
    "NewTask",
    "TaskTable",
    "from_stream_image",
    "is_counter_id",
    "task_id_for",
]
