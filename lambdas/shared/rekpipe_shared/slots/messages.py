"""The five messages of the slot protocol, and their wire form on the FIFO queue.

Every decision about slots is one of these messages, handled one at a time by the single writer
(statemachines/README.md, "Video slots"). Bodies are JSON objects with a ``kind`` field.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from rekpipe_shared.slots.exceptions import MessageError


@dataclass(frozen=True)
class Want:
    """An operation asks for a slot; ``token`` is its RunJob task token, ``request`` its Start* call."""

    holder: str
    token: str
    execution: str
    request: dict[str, Any] = field(default_factory=dict)
    kind: str = "want"


@dataclass(frozen=True)
class Done:
    """A holder's job ended (its SNS notice, or the tick's Get* check)."""

    holder: str
    job_id: str
    status: str
    message: str = ""
    kind: str = "done"


@dataclass(frozen=True)
class Cancel:
    """An execution ended (EventBridge status change): its waiters go, its jobs keep their slots."""

    execution: str
    status: str = "ABORTED"
    kind: str = "cancel"


@dataclass(frozen=True)
class Tick:
    """The schedule's beat: reconcile a rotating subset, heartbeat, admit from the backlog.

    ``admit_only`` is a nudge (``rekpipe_shared.slots.nudge``: route_task added to the backlog, or
    start_video_workflow freed an admission room without an execution): admission alone, no Get* or heartbeat.
    """

    at: str = ""
    admit_only: bool = False
    kind: str = "tick"


@dataclass(frozen=True)
class SetLimit:
    """The one stored limit changes (the CLI or a quota refresher)."""

    limit: int
    kind: str = "set_limit"


_HOLDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_holder_id(job_tag: str | None) -> bool:
    """True for a JobTag the dispatcher wrote (a holder: ClientRequestToken's 1-64 ``[a-zA-Z0-9-_]``)."""
    return bool(job_tag and _HOLDER_ID.match(job_tag))


def done_deduplication_id(job_id: str) -> str:
    """``done-<JobId>``: the notice and the tick's Get* check of one job collapse into one message."""
    return f"done-{job_id}"


Message = Want | Done | Cancel | Tick | SetLimit
_KINDS: dict[str, type] = {"want": Want, "done": Done, "cancel": Cancel, "tick": Tick, "set_limit": SetLimit}


def encode(message: Message) -> str:
    """The JSON body of ``message``."""
    return json.dumps(asdict(message), sort_keys=True, separators=(",", ":"))


def decode(body: str | dict[str, Any]) -> Message:
    """Parse a queue body (or an EventBridge event for an execution's status change).

    Raises
    ------
    MessageError
        The body is none of the five messages.
    """
    try:
        data = json.loads(body) if isinstance(body, str) else dict(body)
    except (TypeError, ValueError) as exc:
        raise MessageError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MessageError("not a JSON object")
    if data.get("detail-type") == "Step Functions Execution Status Change":
        detail = data.get("detail") or {}
        return Cancel(execution=str(detail.get("executionArn", "")), status=str(detail.get("status", "")))
    kind = data.pop("kind", None)
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MessageError(f"unknown kind {kind!r}")
    try:
        message = cls(**data)
    except TypeError as exc:
        raise MessageError(f"bad {kind} message: {exc}") from exc
    _check(message)
    return message


def _check(message: Message) -> None:
    if isinstance(message, Want) and not (message.holder and message.token and message.execution):
        raise MessageError("want needs holder, token and execution")
    if isinstance(message, Done) and not (message.holder and message.status):
        raise MessageError("done needs holder and status")
    if isinstance(message, Cancel) and not message.execution:
        raise MessageError("cancel needs execution")
    if isinstance(message, SetLimit) and (not isinstance(message.limit, int) or message.limit < 0):
        raise MessageError("set_limit needs a limit >= 0")


def superseded_ticks(records: list[tuple[str, str]]) -> set[str]:
    """The ids of ticks that a later tick of the same batch repeats, given (message id, body) in queue order.

    A tick does what is due *now*, so a run of ticks (a dispatcher that was down, a schedule faster than the
    dispatcher, a backfill's admit-only nudges) needs only its last one: an earlier tick is superseded by any
    later full tick, and an earlier admit-only tick by any later tick. A body that does not parse is left to
    the dispatcher's error boundary.
    """
    skip: set[str] = set()
    later_tick = later_full_tick = False
    for message_id, body in reversed(records):
        try:
            message = decode(body)
        except MessageError:
            continue
        if not isinstance(message, Tick):
            continue
        if later_full_tick or (message.admit_only and later_tick):
            skip.add(message_id)
        later_tick = True
        later_full_tick = later_full_tick or not message.admit_only
    return skip
