"""A model of the world around the slot dispatcher, for the rules' unit tests.

It plays Step Functions (task tokens that close, executions that end), Rekognition (jobs started with an
idempotent ClientRequestToken, an account quota shared with another workload) and the FIFO queue (at
least once: a message leaves only when its handler returned). Any call or commit can be made to crash,
which is how a Lambda that dies between two writes is modelled.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from rekpipe_shared.slots import (
    Cancel,
    Done,
    JobEnd,
    MemorySlotStore,
    SlotRules,
    SlotSettings,
    StartResult,
    Tick,
    TransientWorldError,
    Want,
)


class Crash(Exception):
    """The dispatcher died here; nothing after this point ran."""


class _CountingStore:
    """Counts (and so can crash) each commit of a real store, as the in-memory store's hook does."""

    def __init__(self, inner: Any, step: Any) -> None:
        self.inner, self._step = inner, step

    def load(self) -> Any:
        return self.inner.load()

    def commit(self, base: Any, changes: Any) -> Any:
        self._step()
        return self.inner.commit(base, changes)


@dataclass
class Job:
    """One Rekognition job of ours."""

    job_id: str
    holder: str
    running: bool = True
    status: str = "SUCCEEDED"


@dataclass
class Token:
    """A RunJob task token."""

    holder: str
    execution: str
    open: bool = True
    output: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class SlotModel:
    """The world, the queue and the dispatcher, with fault injection and the two invariants."""

    limit: int
    other_jobs: int = 0
    """Jobs of another workload in the same account: Start* sees LimitExceeded above ``quota``."""
    quota: int | None = None
    quota_reading: int | None = None
    """The job quota in use as Service Quotas reports it (None: unknown, so the stored limit never moves)."""
    settings: SlotSettings = field(default_factory=lambda: SlotSettings(backoff_base=30.0, backoff_max=60.0))
    now: float = 1000.0
    crash_at: int | None = None
    transient_at: set[int] = field(default_factory=set)
    reject: set[str] = field(default_factory=set)
    fail_status: dict[str, str] = field(default_factory=dict)
    store: Any = None
    """A store to use instead of the in-memory one (the DynamoDB store, in its own tests)."""

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = MemorySlotStore(self.limit, before_commit=lambda _c: self._step("commit"))
        else:
            self.store = _CountingStore(self.store, lambda: self._step("commit"))
        self.rules = SlotRules(self.store, self, clock=lambda: self.now, settings=self.settings)
        self.queue: list[Any] = []
        self.jobs: dict[str, Job] = {}
        self.tokens: dict[str, Token] = {}
        self.executions: dict[str, str] = {}
        self.steps = 0
        self._calls: dict[str, int] = {}
        self.admitted = 0
        self.starts = 0
        self.max_running = 0
        self.limit_ever_lowered = False
        self._ids = itertools.count(1)
        if self.quota is None:
            self.quota = 1000  # the account's quota, far above our limit unless a test says otherwise

    # --- fault injection -----------------------------------------------------------------------
    def _step(self, what: str) -> None:
        self.steps += 1
        self._calls[what] = self._calls.get(what, 0) + 1
        if self.crash_at is not None and self.steps == self.crash_at:
            self.crash_at = None
            raise Crash(what)
        if self.steps in self.transient_at:
            raise TransientWorldError(what, "injected")

    # --- SlotWorld -----------------------------------------------------------------------------
    def heartbeat(self, token: str) -> bool:
        self._step("heartbeat")
        state = self.tokens.get(token)
        return bool(state and state.open and self.executions.get(state.execution) == "RUNNING")

    def start_job(self, holder: str, request: dict[str, Any]) -> StartResult:
        self._step("start_job")
        job = self.jobs.get(holder)
        if job is not None:
            return StartResult(job_id=job.job_id)  # ClientRequestToken: a replay returns the same JobId
        if holder in self.reject:
            return StartResult(error="JobRejectedError", cause="InvalidS3ObjectException")
        if self.running_jobs() + self.other_jobs >= (self.quota or 0):
            return StartResult(limit_exceeded=True)
        self.jobs[holder] = Job(f"job-{next(self._ids)}", holder, status=self.fail_status.get(holder, "SUCCEEDED"))
        self.starts += 1
        self.max_running = max(self.max_running, self.running_jobs())
        return StartResult(job_id=self.jobs[holder].job_id)

    def job_status(self, holder: Any) -> JobEnd | None:
        self._step("job_status")
        job = self.jobs.get(holder.holder)
        if job is None or job.running:
            return None
        return JobEnd(job.job_id, job.status)

    def resume(self, token: str, output: dict[str, Any]) -> None:
        self._step("resume")
        state = self.tokens.get(token)
        if state and state.open and self.executions.get(state.execution) == "RUNNING":
            state.open = False
            state.output = output

    def fail(self, token: str, error: str, cause: str) -> None:
        self._step("fail")
        state = self.tokens.get(token)
        if state and state.open and self.executions.get(state.execution) == "RUNNING":
            state.open = False
            state.error = error

    def admit(self, count: int, *, cap: int | None = None) -> int:
        self.admitted += count
        return 0

    def job_quota(self) -> int | None:
        # not a fault-injection step: the rules treat an unknown quota as "no change" anyway
        if self.quota_reading is not None and self.quota_reading < self.store.load().header.limit:
            self.limit_ever_lowered = True
        return self.quota_reading

    def calls(self) -> dict[str, int]:
        """World calls by kind since the last reset, for the cost assertions."""
        return dict(self._calls)

    # --- the state machine's side --------------------------------------------------------------
    def want(self, holder: str, execution: str | None = None, *, request: dict[str, Any] | None = None) -> str:
        """RunJob enters: a new token, and ``want`` sent (SQS dedup on the token's hash lets a retry through)."""
        execution = execution or f"exec-{holder.split('#')[0]}"
        self.executions.setdefault(execution, "RUNNING")
        token = f"tok-{next(self._ids)}"
        self.tokens[token] = Token(holder, execution)
        self.queue.append(Want(holder, token, execution, request or {"operation": holder}))
        return token

    def queue_snapshot_want(self, holder: str) -> Want:
        """The newest want this holder sent, to redeliver it as SQS may."""
        token = [t for t, s in self.tokens.items() if s.holder == holder][-1]
        state = self.tokens[token]
        return Want(holder, token, state.execution, {"operation": holder})

    def kill_token(self, token: str) -> None:
        """The iteration's task ended without its result (a failure its Catch took): the token is closed."""
        self.tokens[token].open = False

    def end_execution(self, execution: str, status: str = "ABORTED", *, notify: bool = True) -> None:
        self.executions[execution] = status
        for token in self.tokens.values():
            if token.execution == execution:
                token.open = False
        if notify:
            self.queue.append(Cancel(execution, status))

    def finish_job(self, holder: str, *, notice: str = "once") -> None:
        """The job ends; its notice is sent once, twice, or lost (``once``, ``twice``, ``lost``)."""
        job = self.jobs[holder]
        job.running = False
        message = Done(holder, job.job_id, job.status)
        self.queue.extend([message] * {"once": 1, "twice": 2, "lost": 0}[notice])

    def set_limit(self, limit: int) -> None:
        from rekpipe_shared.slots import SetLimit

        if limit < self.store.load().header.limit:
            self.limit_ever_lowered = True
        self.queue.append(SetLimit(limit))

    # --- the queue -----------------------------------------------------------------------------
    def deliver(self, *, duplicate: bool = False) -> bool:
        """Hand the head message to the dispatcher; it leaves the queue only if the handler returned."""
        if not self.queue:
            return False
        message = self.queue[0]
        try:
            self.rules.handle(message)
        except (Crash, TransientWorldError):
            self.check_safety()
            return True  # redelivered later: still at the head
        self.queue.pop(0)
        if duplicate:
            self.queue.insert(0, message)
        self.check_safety()
        return True

    def tick(self) -> None:
        self.queue.append(Tick(str(self.now)))

    # --- invariants ----------------------------------------------------------------------------
    def running_jobs(self) -> int:
        return sum(1 for job in self.jobs.values() if job.running)

    def check_safety(self) -> None:
        """Every running job has its slot in the store; so running jobs never exceed the slots."""
        snap = self.store.load()
        for job in self.jobs.values():
            if job.running:
                assert job.holder in snap.holders, f"job of {job.holder} runs without its slot"
        if not self.limit_ever_lowered:
            assert self.running_jobs() <= snap.header.limit, "more running jobs than the limit"
            assert len(snap.holders) <= snap.header.limit, "more holders than the limit"

    def settle(self, *, rounds: int = 60) -> None:
        """Run without faults until quiet: deliver everything, end every job, tick past any backoff."""
        self.crash_at = None
        self.transient_at = set()
        self.other_jobs = 0
        self.quota = 1000
        for _ in range(rounds):
            while self.deliver():
                pass
            running = [job.holder for job in self.jobs.values() if job.running]
            for holder in running:
                self.finish_job(holder)
            self.now += self.settings.backoff_max + 1
            self.tick()
            while self.deliver():
                pass
            if not running and not any(job.running for job in self.jobs.values()) and self._quiet():
                break
        self.check_liveness()

    def _quiet(self) -> bool:
        snap = self.store.load()
        return not snap.waiters and not snap.holders and not self.queue

    def check_liveness(self) -> None:
        """Settled: no free slot beside a live waiter, and every live operation has heard its end."""
        snap = self.store.load()
        live = [w for w in snap.waiters.values() if self.heartbeat_silent(w.token)]
        assert not (live and snap.free() > 0), f"free slot and live waiters {[w.holder for w in live]}"
        newest: dict[str, Token] = {}
        for token in self.tokens.values():
            newest[token.holder] = token  # dicts keep insertion order: the last is the newest
        for holder, token in newest.items():
            if self.executions.get(token.execution) == "RUNNING" and token.open:
                raise AssertionError(f"{holder} never heard its job's end")

    def heartbeat_silent(self, token: str) -> bool:
        state = self.tokens.get(token)
        return bool(state and state.open and self.executions.get(state.execution) == "RUNNING")

    def result_of(self, holder: str) -> dict[str, Any] | None:
        """The output the holder's newest token was resumed with."""
        tokens = [s for s in self.tokens.values() if s.holder == holder]
        return tokens[-1].output if tokens else None
