"""Client-side pacing of Rekognition calls, so the pipeline runs at its quota instead of past it.

Rekognition's TPS quotas are per account and API. With ``image_max_concurrency`` invocations at
once, each paces itself to ``quota / concurrency`` per API: all busy together, they make exactly
the quota, and a throttle becomes the exception rather than the way the rate is found. The
bucket is per thread because each Lambda execution environment runs one invocation at a time
(and the embedded runtime runs one per poller thread).
"""

from __future__ import annotations

import threading
import time


class RatePacer:
    """A token bucket per thread and API: ``wait(api)`` returns once a call may be made.

    Parameters
    ----------
    rate: float
        Calls per second each thread may make to each API; 0 turns pacing off.
    burst: float
        Calls a thread may make at once after being idle.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.burst = burst
        self._local = threading.local()

    def wait(self, api: str) -> float:
        """Block until a call to ``api`` is within the rate; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        buckets: dict[str, tuple[float, float]] = getattr(self._local, "buckets", None) or {}
        self._local.buckets = buckets
        now = time.monotonic()
        tokens, last = buckets.get(api, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        waited = 0.0
        if tokens < 1.0:
            waited = (1.0 - tokens) / self.rate
            time.sleep(waited)
            now, tokens = time.monotonic(), 1.0
        buckets[api] = (tokens - 1.0, now)
        return waited
