"""Pacing of image calls: at the account's discovered quota, together, backing off on throttling.

Rekognition's TPS quotas are per account and API, so every concurrent ``analyze_image`` invocation
draws from one budget. The pacer gives each call its place in a per-API, per-second window of the
shared rate-limit table (:class:`rekpipe_shared.get_calls.GetRateLimiter`: one atomic ADD per call),
so concurrent invocations converge on the quota together, whatever their number, instead of each
guessing a share of ``quota / concurrency``.

The window's size is the quota read from Service Quotas (:mod:`rekpipe_shared.quotas`), scaled by an
AIMD factor: a throttle (another workload on the account, a quota lowered) multiplies this caller's
factor by ``decrease``; every success adds ``increase`` back, up to 1. So the rate drops fast under
throttling and probes back up to the quota, and a raised quota is used from the next refresh.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from rekpipe_shared.get_calls import GetRateLimiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.quotas import RekognitionQuotas

AIMD_DECREASE = 0.7
AIMD_INCREASE = 0.02
"""Factor regained per successful call: from 0.7 back to 1 in 15 calls, about a second at 15+ TPS."""
AIMD_FLOOR = 0.1


class AimdPacer:
    """Shared per-second windows at ``quota × factor`` per API, the factor kept by AIMD.

    Parameters
    ----------
    quotas: RekognitionQuotas
        Where the TPS of each API comes from (cached and refreshed there).
    table_name: str | None
        The rate-limit table; None turns the shared windows off (calls then only follow the AIMD
        factor's backoff, as retries do).
    limiter_factory: Callable[[str | None, float], GetRateLimiter]
        Builds the window limiter for one rate (tests inject one over a fake table).
    """

    def __init__(self, quotas: RekognitionQuotas, table_name: str | None, *,
                 limiter_factory: Callable[[str | None, float], GetRateLimiter] = GetRateLimiter,
                 decrease: float = AIMD_DECREASE, increase: float = AIMD_INCREASE, floor: float = AIMD_FLOOR,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.quotas = quotas
        self.table_name = table_name
        self._factory = limiter_factory
        self.decrease, self.increase, self.floor = decrease, increase, floor
        self._sleep = sleep
        self._lock = threading.Lock()
        self._factors: dict[str, float] = {}
        self._limiters: dict[tuple[str, float], GetRateLimiter] = {}

    def rate(self, api: str) -> float:
        """Calls per second this caller currently allows itself for ``api``."""
        return self.quotas.value(api) * self.factor(api)

    def factor(self, api: str) -> float:
        with self._lock:
            return self._factors.get(api, 1.0)

    def wait(self, api: str, *, max_wait: float = 60.0) -> float:
        """Block until this call's place under the rate; returns the seconds waited."""
        started = time.monotonic()
        rate = round(self.rate(api), 3)
        if rate <= 0:
            return 0.0
        with self._lock:
            limiter = self._limiters.get((api, rate))
            if limiter is None:
                limiter = self._limiters[(api, rate)] = self._factory(self.table_name, rate)
        limiter.acquire(api, max_wait=max_wait)
        return time.monotonic() - started

    def throttled(self, api: str) -> float:
        """Multiplicative decrease after a throttle; returns the new factor."""
        with self._lock:
            factor = max(self.floor, self._factors.get(api, 1.0) * self.decrease)
            self._factors[api] = factor
            return factor

    def succeeded(self, api: str) -> float:
        """Additive increase after a success, up to the full quota; returns the new factor."""
        with self._lock:
            factor = min(1.0, self._factors.get(api, 1.0) + self.increase)
            self._factors[api] = factor
            return factor
