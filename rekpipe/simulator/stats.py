"""Counters and logs the simulator keeps so tests and benchmarks can measure a pipeline against it."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

OK = "ok"


@dataclass(frozen=True)
class CallRecord:
    """One API call as the simulator saw it.

    Parameters
    ----------
    sim_time: float
        Simulated epoch seconds when the call arrived.
    operation: str
        Rekognition operation name, e.g. ``DetectLabels``.
    outcome: str
        ``"ok"`` or the error code returned (``ThrottlingException``, ``InvalidS3ObjectException``...).
    """

    sim_time: float
    operation: str
    outcome: str


@dataclass(frozen=True)
class JobEvent:
    """A stored-video job starting or completing, on the simulated clock.

    Parameters
    ----------
    sim_time: float
        Simulated epoch seconds of the event.
    kind: str
        ``"start"`` or ``"complete"``.
    job_id: str
        The JobId.
    operation: str
        The Start* operation that created the job.
    status: str
        Job status after the event (IN_PROGRESS, SUCCEEDED or FAILED).
    running: int
        Jobs IN_PROGRESS right after the event, for slot-utilisation charts.
    """

    sim_time: float
    kind: str
    job_id: str
    operation: str
    status: str
    running: int


class SimulatorStats:
    """Thread-safe per-operation counters plus the call log.

    Every property returns a copy; the counters are `collections.Counter`, so an operation that
    was never called reads as 0 (``stats.throttled["DetectLabels"] == 0``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._succeeded: Counter[str] = Counter()
        self._throttled: Counter[str] = Counter()
        self._errors: dict[str, Counter[str]] = {}
        self._log: list[CallRecord] = []

    def record(self, sim_time: float, operation: str, outcome: str, *, throttled: bool = False) -> None:
        """Count one call; ``throttled`` marks quota or injected throttling (also counted in `errors`)."""
        with self._lock:
            self._calls[operation] += 1
            if outcome == OK:
                self._succeeded[operation] += 1
            else:
                self._errors.setdefault(operation, Counter())[outcome] += 1
            if throttled:
                self._throttled[operation] += 1
            self._log.append(CallRecord(sim_time, operation, outcome))

    @property
    def calls(self) -> Counter[str]:
        """Calls per operation, whatever their outcome."""
        with self._lock:
            return Counter(self._calls)

    @property
    def succeeded(self) -> Counter[str]:
        """Calls per operation that returned HTTP 200."""
        with self._lock:
            return Counter(self._succeeded)

    @property
    def throttled(self) -> Counter[str]:
        """Calls per operation rejected by a TPS quota or by injected throttling."""
        with self._lock:
            return Counter(self._throttled)

    @property
    def errors(self) -> dict[str, Counter[str]]:
        """Error responses per operation, by error code (throttles included)."""
        with self._lock:
            return {op: Counter(codes) for op, codes in self._errors.items()}

    @property
    def call_log(self) -> list[CallRecord]:
        """Every call in arrival order."""
        with self._lock:
            return list(self._log)

    @property
    def total_calls(self) -> int:
        """Calls across all operations."""
        with self._lock:
            return sum(self._calls.values())

    def snapshot(self) -> dict[str, object]:
        """Plain-dict copy of the counters, handy for JSON benchmark reports."""
        with self._lock:
            return {
                "calls": dict(self._calls),
                "succeeded": dict(self._succeeded),
                "throttled": dict(self._throttled),
                "errors": {op: dict(codes) for op, codes in self._errors.items()},
            }

    def achieved_tps(
        self,
        operation: str | None = None,
        outcome: str | None = OK,
        start: float | None = None,
        end: float | None = None,
    ) -> float:
        """Matching calls per simulated second over [start, end] (default: first to last match).

        Parameters
        ----------
        operation: str | None
            Only this operation; None for all.
        outcome: str | None
            Only this outcome (default successful calls); None for all.
        start, end: float | None
            Simulated epoch-second bounds.
        """
        records = [
            r
            for r in self.call_log
            if (operation is None or r.operation == operation)
            and (outcome is None or r.outcome == outcome)
            and (start is None or r.sim_time >= start)
            and (end is None or r.sim_time <= end)
        ]
        if not records:
            return 0.0
        lo = records[0].sim_time if start is None else start
        hi = records[-1].sim_time if end is None else end
        span = hi - lo
        return len(records) / span if span > 0 else float(len(records))

    def reset(self) -> None:
        """Forget all counters and the log (e.g. after a warm-up phase)."""
        with self._lock:
            self._calls.clear()
            self._succeeded.clear()
            self._throttled.clear()
            self._errors.clear()
            self._log.clear()


def slot_utilisation(
    events: Sequence[JobEvent], slots: int, start: float | None = None, end: float | None = None
) -> float:
    """Mean fraction of ``slots`` busy over [start, end], from the job event log.

    Why: a pipeline that keeps Rekognition's concurrent-job slots full finishes a backlog
    fastest, so this is the headline number of a throughput benchmark.
    """
    if not events or slots <= 0:
        return 0.0
    lo = events[0].sim_time if start is None else start
    hi = events[-1].sim_time if end is None else end
    if hi <= lo:
        return 0.0
    busy = 0.0
    running = 0
    previous = lo
    for event in events:
        t = min(max(event.sim_time, lo), hi)
        busy += running * (t - previous)
        previous = t
        running = event.running
    busy += running * (hi - previous)
    return busy / (slots * (hi - lo))


def completion_to_next_start(events: Iterable[JobEvent]) -> list[float]:
    """Simulated seconds from each completion to the next job start after it.

    Why: the gap measures how fast a pipeline refills a freed slot (a notice-driven design should
    be near zero; a polling one shows its poll interval). Completions with no later start are skipped.
    """
    ordered = sorted(events, key=lambda e: e.sim_time)
    gaps: list[float] = []
    pending: list[float] = []
    for event in ordered:
        if event.kind == "complete":
            pending.append(event.sim_time)
        elif event.kind == "start" and pending:
            gaps.append(event.sim_time - pending.pop(0))
    return gaps
