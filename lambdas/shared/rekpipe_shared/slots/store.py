"""Where the slot state lives: the store interface and the in-memory store the rules are tested on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from rekpipe_shared.slots.exceptions import FenceError
from rekpipe_shared.slots.state import Header, ItemLookup, Snapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.slots.state import Changes


class SlotStore(ABC):
    """Load the bounded state (header, holders, waiters); commit a set of writes conditioned on the header's version."""

    @abstractmethod
    def load(self) -> Snapshot:
        """The state at one version; a missing header reads as the default limit at version 0. Finished holders
        and tombstones come as :class:`ItemLookup`: read by key when a rule asks for one."""

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
        self._snapshot = Snapshot(header=Header(limit=limit), finished={}, tombstones={})
        self.before_commit = before_commit
        self.commits = 0
        self.lookups = 0
        """Finished and tombstone items read by key, as DynamoDB would serve them with a GetItem each."""

    def load(self) -> Snapshot:
        return _copy(self._snapshot, self._lookup)

    def _lookup(self, name: str) -> Callable[[str], object]:
        def fetch(key: str) -> object:
            self.lookups += 1
            return getattr(self._snapshot, name).get(key)  # the store as it is now, like a GetItem
        return fetch

    def commit(self, base: Snapshot, changes: Changes) -> Snapshot:
        if self.before_commit is not None:
            self.before_commit(changes)
        if self._snapshot.header.version != base.header.version:
            raise FenceError(base.header.version)
        self._snapshot = changes.apply(self._snapshot)
        self.commits += 1
        return _copy(self._snapshot, self._lookup)


def _copy(snapshot: Snapshot, lookup: Callable[[str], Callable[[str], object]]) -> Snapshot:
    """A snapshot whose dicts the caller may not change ours through (the items themselves are frozen)."""
    return Snapshot(
        header=snapshot.header, holders=dict(snapshot.holders), waiters=dict(snapshot.waiters),
        finished=ItemLookup(lookup("finished")), tombstones=ItemLookup(lookup("tombstones")),  # type: ignore[arg-type]
    )
