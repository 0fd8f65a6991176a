"""A scalable clock, so that minutes of simulated Rekognition work pass in seconds of test time."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class SimClock:
    """Simulated wall clock running ``scale`` simulated seconds per real second.

    It starts at the real epoch time of its creation, so notice timestamps look current.
    ``scale=0`` freezes it; time then moves only through `advance`, which makes quota and
    job-duration tests exact instead of timing-dependent.

    Parameters
    ----------
    scale: float
        Simulated seconds per real second (60 = one simulated minute per real second).
    start: float | None
        Simulated epoch seconds at creation; defaults to ``time.time()``.

    Example
    -------
    >>> clock = SimClock(scale=0)
    >>> t0 = clock.now(); clock.advance(5.0); clock.now() - t0
    5.0
    """

    def __init__(self, scale: float = 1.0, start: float | None = None) -> None:
        if scale < 0:
            raise ValueError(f"SimClock scale must be >= 0, got {scale!r}")
        self._lock = threading.Lock()
        self._scale = float(scale)
        self._base_sim = time.time() if start is None else float(start)
        self._base_real = time.monotonic()
        self._listeners: list[Callable[[], None]] = []
        self._advanced = threading.Condition(self._lock)

    @property
    def scale(self) -> float:
        """Simulated seconds per real second."""
        return self._scale

    def set_scale(self, scale: float) -> None:
        """Change the speed without a jump in simulated time."""
        if scale < 0:
            raise ValueError(f"SimClock scale must be >= 0, got {scale!r}")
        with self._lock:
            self._rebase()
            self._scale = float(scale)
        self._notify()

    def now(self) -> float:
        """Simulated epoch seconds."""
        with self._lock:
            return self._now_locked()

    def now_ms(self) -> int:
        """Simulated epoch milliseconds, the unit of Rekognition's notice ``Timestamp``."""
        return int(self.now() * 1000)

    def advance(self, sim_seconds: float) -> None:
        """Jump forward; wakes sleepers and the simulator's job scheduler."""
        if sim_seconds < 0:
            raise ValueError("SimClock cannot go backwards")
        with self._lock:
            self._base_sim += sim_seconds
            self._advanced.notify_all()
        self._notify()

    def sleep(self, sim_seconds: float) -> None:
        """Block for ``sim_seconds`` of simulated time (forever on a frozen clock unless advanced)."""
        deadline = self.now() + sim_seconds
        with self._lock:
            while (remaining := deadline - self._now_locked()) > 0:
                timeout = remaining / self._scale if self._scale > 0 else None
                # Re-check at least every 0.25 s: `set_scale` may have changed the rate meanwhile.
                self._advanced.wait(0.25 if timeout is None else min(timeout, 0.25))

    def real_seconds(self, sim_seconds: float) -> float | None:
        """How long ``sim_seconds`` take in real time; None on a frozen clock."""
        return sim_seconds / self._scale if self._scale > 0 else None

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every `advance` or `set_scale` (used to wake the scheduler)."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Undo `add_listener`; unknown callbacks are ignored."""
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _now_locked(self) -> float:
        return self._base_sim + (time.monotonic() - self._base_real) * self._scale

    def _rebase(self) -> None:
        real = time.monotonic()
        self._base_sim += (real - self._base_real) * self._scale
        self._base_real = real

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()
