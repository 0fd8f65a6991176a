"""The slot rules: one sequential function from (state, message) to (state, calls), run by the single
writer. The argument for why they are safe and live is in statemachines/README.md, "Video slots".

Every message is idempotent and insensitive to order for each holder, because delivery is at least once
and a redrive or a second deployment can make a second writer; every commit is fenced on the header's
version, so two writers can never both commit a decision read from the same state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rekpipe_shared.slots.exceptions import FenceError, TransientWorldError
from rekpipe_shared.slots.messages import Cancel, Done, SetLimit, Tick, Want
from rekpipe_shared.slots.state import RUNNING, STARTING, Changes, FinishedItem, HolderItem, WaiterItem

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.slots.messages import Message
    from rekpipe_shared.slots.state import Snapshot
    from rekpipe_shared.slots.store import SlotStore
    from rekpipe_shared.slots.world import SlotWorld

logger = logging.getLogger(__name__)

START_FAILED = "START_FAILED"
"""The status of a holder whose Start* was refused for good: no job ran, the iteration gets a failure."""
_TERMINAL_EXECUTION = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class SlotSettings:
    """Tuning of the rules; none of it affects safety.

    Parameters
    ----------
    finished_ttl: float
        How long a finished holder is remembered, so a late ``want`` gets its result, not a new job.
    tombstone_ttl: float
        How long a cancelled execution is remembered, so a ``want`` that arrives after it is ignored.
    tick_batch: int
        Most holders reconciled (Get*, heartbeat) per tick, oldest check first.
    heartbeat_interval: float
        A parked or running token is heartbeaten at least this often (well under HeartbeatSeconds); a
        running holder is checked (Get*, heartbeat) after a quarter of its age, at most this long apart.
    headroom: int
        Executions admitted beyond the free slots, so a freed slot always finds a waiter.
    backoff_base, backoff_max: float
        Grants pause this long after LimitExceededException (another workload holds the quota), doubling.
    """

    finished_ttl: float = 7 * 24 * 3600.0
    tombstone_ttl: float = 24 * 3600.0
    tick_batch: int = 25
    heartbeat_interval: float = 300.0
    headroom: int = 2
    backoff_base: float = 30.0
    backoff_max: float = 600.0
    fence_retries: int = 5


class SlotRules:
    """Apply one message to the store, making the calls it implies.

    Parameters
    ----------
    store: SlotStore
        The state, committed with a version fence.
    world: SlotWorld
        Start*, Get*, SendTask*, admission.
    clock: Callable[[], float]
        Seconds; the simulated clock in the embedded runtime.
    """

    def __init__(
        self, store: SlotStore, world: SlotWorld, *, clock: Callable[[], float], settings: SlotSettings | None = None
    ) -> None:
        self.store = store
        self.world = world
        self.clock = clock
        self.settings = settings or SlotSettings()

    # --- entry ---------------------------------------------------------------------------------
    def handle(self, message: Message) -> Snapshot:
        """Apply ``message``; a lost fence reloads and applies it again (the rules are idempotent).

        Raises
        ------
        TransientWorldError
            A call that must succeed for this message (a resume) failed: redeliver the message.
        FenceError
            Another writer kept winning; redeliver the message.
        """
        for attempt in range(self.settings.fence_retries):
            try:
                return self._apply(self.store.load(), message)
            except FenceError:
                logger.info("fence lost on attempt %d, reloading", attempt + 1)
        raise FenceError(-1)

    def _apply(self, snap: Snapshot, message: Message) -> Snapshot:
        # Before any grant: a cold dispatcher's first message (often a want) must not grant at the deployed
        # default limit while the account's job quota is lower (the refusals would pause every grant).
        snap = self._follow_quota(snap)
        room_made = isinstance(message, (Cancel, SetLimit))
        if isinstance(message, Done):
            ended = snap.holders.get(message.holder)
            room_made = ended is None or ended.orphan  # a live holder's execution stays open (CollectResults)
        if isinstance(message, Want):
            snap = self._want(snap, message)
        elif isinstance(message, Done):
            snap = self._done(snap, message.holder, message.job_id, message.status, message.message)
        elif isinstance(message, Cancel):
            snap = self._cancel(snap, message)
        elif isinstance(message, Tick):
            snap = self._admit(snap) if message.admit_only else self._tick(snap)
        elif isinstance(message, SetLimit):
            snap = self._commit(snap, Changes(header=replace(snap.header, limit=message.limit)))
        snap = self._fill(snap)
        if room_made:
            # Room was made for an execution (one ended, the limit changed, an orphan's job ended): refill from
            # the backlog now, so slot use does not wait for the tick. The done of a live holder makes none:
            # its execution stays open to collect results, and its cancel follows.
            snap = self._admit(snap)
        return snap

    # --- messages ------------------------------------------------------------------------------
    def _want(self, snap: Snapshot, msg: Want) -> Snapshot:
        if self._tombstoned(snap, msg.execution):
            return snap  # its execution has ended (D4): no slot, and nobody to tell
        finished = self._finished(snap, msg.holder)
        if finished is not None:
            self._tell(finished, msg.token)  # a retried RunJob gets the result, never a second job
            return snap
        holder = snap.holders.get(msg.holder)
        if holder is not None:  # a retry of a granted operation: its new token hears the end (D1b)
            if holder.token == msg.token:
                return snap
            changes = Changes(header=snap.header, holders={msg.holder: replace(holder, token=msg.token, orphan=False)})
            return self._commit(snap, changes)
        waiter = snap.waiters.get(msg.holder)
        if waiter is not None:  # same holder, new token: keep its place, one item per holder (D1b)
            if waiter.token == msg.token:
                return snap
            return self._commit(
                snap, Changes(header=snap.header, waiters={msg.holder: replace(waiter, token=msg.token)})
            )
        new = WaiterItem(msg.holder, msg.token, msg.execution, dict(msg.request), snap.header.next_seq, self.clock())
        header = replace(snap.header, next_seq=snap.header.next_seq + 1)
        return self._commit(snap, Changes(header=header, waiters={msg.holder: new}))

    def _done(self, snap: Snapshot, holder_id: str, job_id: str, status: str, text: str) -> Snapshot:
        holder = snap.holders.get(holder_id)
        if holder is None:
            finished = self._finished(snap, holder_id)
            if finished is not None:
                self._tell(finished, finished.token)  # a duplicate notice: resume again, idempotent (D6)
                return snap
            if holder_id in snap.waiters:
                logger.warning("done for %s, which waits and has no job; ignored", holder_id)
                return snap
            # A notice for a holder never seen (its want is still to come): remember the end (order-insensitive).
            item = FinishedItem(holder_id, job_id, status, text, "", self.clock() + self.settings.finished_ttl)
            return self._commit(snap, Changes(header=snap.header, finished={holder_id: item}))
        if holder.job_id and job_id and holder.job_id != job_id:
            logger.warning("done for %s names job %s, not its job %s; ignored", holder_id, job_id, holder.job_id)
            return snap
        item = FinishedItem(
            holder_id,
            job_id or holder.job_id,
            status,
            text,
            "" if holder.orphan else holder.token,
            self.clock() + self.settings.finished_ttl,
        )
        # Tell first, then free: a resume that fails leaves the slot held and the message (or the tick's
        # Get* check) to try again; a resume repeated after a crash is answered "closed" and ignored.
        self._tell(item, item.token)
        return self._commit(snap, Changes(header=snap.header, holders={holder_id: None}, finished={holder_id: item}))

    def _cancel(self, snap: Snapshot, msg: Cancel) -> Snapshot:
        if msg.status and msg.status not in _TERMINAL_EXECUTION:
            return snap
        changes = Changes(header=snap.header, tombstones={msg.execution: self.clock() + self.settings.tombstone_ttl})
        for waiter in snap.waiters.values():
            if waiter.execution == msg.execution:
                changes.waiters[waiter.holder] = None  # no job exists for a waiter: drop it
        for holder in snap.holders.values():
            if holder.execution == msg.execution:
                changes.holders[holder.holder] = replace(holder, orphan=True)  # its job may run (D7): keep
        return self._commit(snap, changes)

    def _tick(self, snap: Snapshot) -> Snapshot:
        """Heartbeat the waiters first (a few, and cheap: a slow round of Get* must never time them out), then
        check the holders due, then admit. Finished items and tombstones are not swept here: they are read
        by key and ignored once expired, and DynamoDB's TTL deletes them."""
        now = self.clock()
        for waiter in snap.queue():
            if waiter.heartbeat_at > now - self.settings.heartbeat_interval:
                continue
            try:
                alive = self.world.heartbeat(waiter.token)
            except TransientWorldError as exc:
                logger.warning("heartbeat of waiter %s skipped: %s", waiter.holder, exc)
                continue
            current = snap.waiters.get(waiter.holder)
            if current is None or current.token != waiter.token:
                continue
            update = None if not alive else replace(current, heartbeat_at=now)
            snap = self._commit(snap, Changes(header=snap.header, waiters={waiter.holder: update}))
        due = sorted((h for h in snap.holders.values() if self._check_due(h, now)), key=lambda h: h.checked_at)
        due = due[: self.settings.tick_batch]
        for holder in due:  # each item's failure stays its own (D8)
            try:
                snap = self._reconcile_holder(snap, holder.holder)
            except TransientWorldError as exc:
                logger.warning("reconcile of %s skipped: %s", holder.holder, exc)
        return self._admit(snap)

    def _follow_quota(self, snap: Snapshot) -> Snapshot:
        """Take a changed job quota as the stored limit, on every message (the reading is cached, so this is
        a lookup; D9 holds: one stored value, and no want carries a limit)."""
        try:
            quota = self.world.job_quota()
        except TransientWorldError as exc:
            logger.warning("job quota unknown this tick: %s", exc)
            return snap
        if not quota or quota == snap.header.quota_limit:
            return snap
        logger.info("job quota in use is now %d (was %d): stored limit %d -> %d", quota, snap.header.quota_limit,
                    snap.header.limit, quota)
        return self._commit(snap, Changes(header=replace(snap.header, limit=quota, quota_limit=quota)))

    def _check_due(self, holder: HolderItem, now: float) -> bool:
        """Whether the tick should check ``holder`` (Get*, heartbeat) now.

        A STARTING holder always is: its job is not started yet (D2). A running one is checked after a
        quarter of its age, at most every ``heartbeat_interval``: a lost notice (D5) of a short job is found
        within a tick or two, and a job that runs for hours costs a Get* and a heartbeat per interval rather
        than per tick, which leaves the dispatcher and the account's Get* quota to the work that needs them.
        """
        if holder.phase == STARTING:
            return True
        interval = min(self.settings.heartbeat_interval, (now - holder.granted_at) / 4)
        return now - holder.checked_at >= interval

    def _admit(self, snap: Snapshot) -> Snapshot:
        """Start executions from the backlog up to ``limit + headroom`` operations holding or waiting."""
        wanted = snap.header.limit + self.settings.headroom - len(snap.holders) - len(snap.waiters)
        if wanted > 0:
            try:
                self.world.admit(wanted, cap=snap.header.limit + self.settings.headroom)
            except TransientWorldError as exc:
                logger.warning("admission skipped: %s", exc)
        return snap

    def _reconcile_holder(self, snap: Snapshot, holder_id: str) -> Snapshot:
        holder = snap.holders.get(holder_id)
        if holder is None:
            return snap
        now = self.clock()
        if holder.phase == STARTING:
            return self._start(snap, holder)
        end = self.world.job_status(holder)
        if end is not None:  # the notice was lost or is late: Get* is the authority (D5)
            return self._done(snap, holder_id, end.job_id, end.status, end.message)
        orphan = holder.orphan
        if not orphan:
            orphan = not self.world.heartbeat(holder.token)  # closed token: keep the slot, stop telling
        return self._commit(
            snap, Changes(header=snap.header, holders={holder_id: replace(holder, checked_at=now, orphan=orphan)})
        )

    # --- granting ------------------------------------------------------------------------------
    def _fill(self, snap: Snapshot) -> Snapshot:
        """Grant free slots to live waiters, oldest first; finish any start a crash interrupted (D2)."""
        for holder in list(snap.holders.values()):
            if holder.phase == STARTING and holder.holder in snap.holders:
                try:
                    snap = self._start(snap, snap.holders[holder.holder])
                except TransientWorldError as exc:
                    logger.warning("start of %s deferred: %s", holder.holder, exc)
        while snap.free() > 0 and snap.waiters and snap.header.backoff_until <= self.clock():
            waiter = snap.queue()[0]
            try:
                alive = self.world.heartbeat(waiter.token)
            except TransientWorldError as exc:
                logger.warning("grant deferred, heartbeat of %s failed: %s", waiter.holder, exc)
                break
            if not alive:  # its iteration is gone although its execution may run (D1a): drop it
                snap = self._commit(snap, Changes(header=snap.header, waiters={waiter.holder: None}))
                continue
            now = self.clock()
            holder = HolderItem(
                waiter.holder,
                waiter.token,
                waiter.execution,
                waiter.request,
                STARTING,
                "",
                now,
                now,
                seq=waiter.seq,
            )
            changes = Changes(header=snap.header, waiters={waiter.holder: None}, holders={waiter.holder: holder})
            snap = self._commit(snap, changes)
            try:
                snap = self._start(snap, holder)
            except TransientWorldError as exc:
                logger.warning("start of %s deferred: %s", holder.holder, exc)
                break
        return snap

    def _start(self, snap: Snapshot, holder: HolderItem) -> Snapshot:
        result = self.world.start_job(holder.holder, holder.request)
        current = snap.holders.get(holder.holder)
        if current is None:
            return snap
        header = snap.header
        if result.job_id:
            running = replace(current, phase=RUNNING, job_id=result.job_id)
            return self._commit(
                snap, Changes(header=replace(header, backoff_seconds=0.0), holders={holder.holder: running})
            )
        if result.limit_exceeded:  # the slot was not really free: undo, back to the head, pause grants
            delay = min(self.settings.backoff_max, max(self.settings.backoff_base, 2 * header.backoff_seconds))
            changes = Changes(
                header=replace(header, backoff_seconds=delay, backoff_until=self.clock() + delay),
                holders={holder.holder: None},
            )
            if not current.orphan:
                changes.waiters[holder.holder] = WaiterItem(
                    current.holder, current.token, current.execution, current.request, current.seq, self.clock()
                )
            return self._commit(snap, changes)
        item = FinishedItem(
            holder.holder,
            "",
            START_FAILED,
            f"{result.error}: {result.cause}",
            "" if current.orphan else current.token,
            self.clock() + self.settings.finished_ttl,
        )
        self._tell(item, item.token)
        return self._commit(snap, Changes(header=header, holders={holder.holder: None}, finished={holder.holder: item}))

    # --- helpers -------------------------------------------------------------------------------
    def _finished(self, snap: Snapshot, holder_id: str) -> FinishedItem | None:
        """How ``holder_id``'s job ended, unless that record has expired (DynamoDB's TTL deletes it later)."""
        item = snap.finished.get(holder_id)
        return item if item is not None and item.expires_at > self.clock() else None

    def _tombstoned(self, snap: Snapshot, execution: str) -> bool:
        """Whether ``execution`` ended within ``tombstone_ttl``."""
        expires = snap.tombstones.get(execution)
        return expires is not None and expires > self.clock()

    def _tell(self, item: FinishedItem, token: str) -> None:
        if not token:
            return
        if item.status == START_FAILED:
            error, _, cause = item.message.partition(": ")
            self.world.fail(token, error or "JobRejectedError", cause)
        else:
            self.world.resume(token, finished_output(item))

    def _commit(self, snap: Snapshot, changes: Changes) -> Snapshot:
        if changes.is_empty(snap):
            return snap
        return self.store.commit(snap, changes)


def finished_output(item: FinishedItem) -> dict[str, Any]:
    """The RunJob task's output: the job's id and how it ended."""
    return {"jobId": item.job_id, "status": item.status, "statusMessage": item.message}
