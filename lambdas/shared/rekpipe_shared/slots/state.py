"""The slot state: a header (limit, version fence, counts) and one small item per holder, waiter,
cancel tombstone and finished holder. Never one growing item (400 KB cap, writes cost per KB).

Holders and waiters (at most ``limit + headroom`` of them) are loaded with every message. Finished holders and
tombstones are kept for days, so a backlog leaves thousands of them: they are read one key at a time
(:class:`ItemLookup`), which keeps a message's cost independent of how much history is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

V = TypeVar("V")

STARTING = "starting"
"""Granted and counted as held; Start* may or may not have run, so it is driven again (same token)."""
RUNNING = "running"
"""Start* returned a JobId; the slot is freed only by ``done`` for this holder."""


@dataclass(frozen=True)
class Header:
    """The one stored limit, the fence and the arrival counter that orders waiters."""

    limit: int
    version: int = 0
    next_seq: int = 0
    backoff_until: float = 0.0
    backoff_seconds: float = 0.0
    quota_limit: int = 0
    """The limit last taken from the account's job quota (capped by ``video_slot_limit``); 0: none yet. A tick
    that finds another value sets ``limit`` to it, so a raised quota is used with no redeploy, while a limit
    an operator set (``rekpipe slots --limit``) holds until the quota or its cap next changes."""


@dataclass(frozen=True)
class HolderItem:
    """A slot: exactly one of our Rekognition jobs, starting or running."""

    holder: str
    token: str
    execution: str
    request: dict[str, Any]
    phase: str = STARTING
    job_id: str = ""
    granted_at: float = 0.0
    checked_at: float = 0.0
    orphan: bool = False
    """Its execution or token is gone; the job still runs, so the slot stays until the job ends."""
    seq: int = 0
    """Its place in the queue, kept so LimitExceeded puts it back at the head."""


@dataclass(frozen=True)
class WaiterItem:
    """A parked ``want``, first in first out by ``seq``; no job exists for it."""

    holder: str
    token: str
    execution: str
    request: dict[str, Any]
    seq: int
    heartbeat_at: float = 0.0


@dataclass(frozen=True)
class FinishedItem:
    """A holder whose job ended: a late or redelivered ``want`` gets this result instead of a new job."""

    holder: str
    job_id: str
    status: str
    message: str
    token: str
    expires_at: float


class ItemLookup(Mapping[str, V], Generic[V]):
    """Items fetched by key on first use and remembered, never listed.

    A fetch made after the snapshot was loaded is safe under the version fence: any write since the load moved
    the header's version, so a commit computed from a newer read fails and the message is applied again.
    Listing (``len``, iteration, equality) raises TypeError, so no rule can come to cost O(history).
    """

    def __init__(self, fetch: Callable[[str], V | None], known: Mapping[str, V | None] | None = None) -> None:
        self._fetch = fetch
        self._known: dict[str, V | None] = dict(known or {})

    def __getitem__(self, key: str) -> V:
        if key not in self._known:
            self._known[key] = self._fetch(key)
        value = self._known[key]
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        raise TypeError("finished holders and tombstones are read by key, never listed")

    def __len__(self) -> int:
        raise TypeError("finished holders and tombstones are read by key, never counted")

    def __eq__(self, other: object) -> bool:
        raise TypeError("finished holders and tombstones are read by key, never compared whole")

    __hash__ = None  # type: ignore[assignment]

    def with_changes(self, changes: Mapping[str, V | None]) -> ItemLookup[V]:
        """The lookup after a commit of ``changes`` (None deletes)."""
        return ItemLookup(self._fetch, {**self._known, **changes})


def _no_item(_key: str) -> None:
    return None


@dataclass(frozen=True)
class Snapshot:
    """Everything the rules read, loaded at one version."""

    header: Header
    holders: dict[str, HolderItem] = field(default_factory=dict)
    waiters: dict[str, WaiterItem] = field(default_factory=dict)
    finished: Mapping[str, FinishedItem] = field(default_factory=lambda: ItemLookup(_no_item))
    """Holder -> how its job ended, read by key (:class:`ItemLookup`); an expired item is the rules' to ignore."""
    tombstones: Mapping[str, float] = field(default_factory=lambda: ItemLookup(_no_item))
    """Execution ARN -> expiry: a cancel can arrive before its execution's ``want``; read by key."""

    def queue(self) -> list[WaiterItem]:
        """Waiters in arrival order."""
        return sorted(self.waiters.values(), key=lambda w: w.seq)

    def free(self) -> int:
        """Slots neither running nor starting."""
        return max(0, self.header.limit - len(self.holders))


@dataclass
class Changes:
    """The writes of one commit: puts and deletes by kind, plus the new header (version + 1)."""

    header: Header
    holders: dict[str, HolderItem | None] = field(default_factory=dict)
    waiters: dict[str, WaiterItem | None] = field(default_factory=dict)
    finished: dict[str, FinishedItem | None] = field(default_factory=dict)
    tombstones: dict[str, float | None] = field(default_factory=dict)

    def apply(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot these changes produce (what the store holds after the commit)."""
        parts: dict[str, Any] = {}
        for name in ("holders", "waiters", "finished", "tombstones"):
            base = getattr(snapshot, name)
            if isinstance(base, ItemLookup):  # finished items and tombstones as a loaded snapshot reads them
                parts[name] = base.with_changes(getattr(self, name))
                continue
            merged = dict(base)  # holders, waiters, or the in-memory store's own state
            for key, value in getattr(self, name).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            parts[name] = merged
        return Snapshot(header=replace(self.header, version=snapshot.header.version + 1), **parts)

    def is_empty(self, snapshot: Snapshot) -> bool:
        """True when nothing but the version would change."""
        return self.header == snapshot.header and not (self.holders or self.waiters or self.finished or self.tombstones)
