"""Where the slot state lives: the store interface and the in-memory store the rules are tested on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from rekpipe_shared.slots.exceptions import FenceError
from rekpipe_shared.slots.state import Header, Snapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.slots.state import Changes


class SlotStore(ABC):
    """Load the whole (bounded) state; commit a set of writes conditioned on the header's version."""

    @abstractmethod
    def load(self) -> Snapshot:
        """The state at one version; a missing header reads as the default limit at version 0."""

    @abstractmethod
    def commit(self, base: Snapshot, changes: Changes) -> Snapshot:
        """Write ``changes`` (computed from ``base``) atomically if the header is still at base's version.

        Raises
        ------
        FenceError
            Another writer committed first.
        """


class MemorySlotStore(SlotStore):
    """The store as a value in memory; ``before_commit`` lets tests crash a writer at a commit."""

    def __init__(self, limit: int, *, before_commit: Callable[[Changes], None] | None = None) -> None:
        self._snapshot = Snapshot(header=Header(limit=limit))
        self.before_commit = before_commit
        self.commits = 0

    def load(self) -> Snapshot:
        return _copy(self._snapshot)

    def commit(self, base: Snapshot, changes: Changes) -> Snapshot:
        if self.before_commit is not None:
            self.before_commit(changes)
        if self._snapshot.header.version != base.header.version:
            raise FenceError(base.header.version)
        self._snapshot = changes.apply(self._snapshot)
        self.commits += 1
        return _copy(self._snapshot)


def _copy(snapshot: Snapshot) -> Snapshot:
    """A snapshot whose dicts the caller may not change ours through (the items themselves are frozen)."""
    return Snapshot(
        header=snapshot.header, holders=dict(snapshot.holders), waiters=dict(snapshot.waiters),
        finished=dict(snapshot.finished), tombstones=dict(snapshot.tombstones),
    )
