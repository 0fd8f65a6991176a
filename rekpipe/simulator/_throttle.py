"""Per-operation TPS quotas as token buckets on the simulated clock."""

from __future__ import annotations

_EPSILON = 1e-9  # refills like 5 TPS * 0.2 s land on 0.9999999; count them as a whole token


class TokenBucket:
    """Allows ``rate`` calls per simulated second with a burst of one second's worth.

    The rate is passed on every call rather than stored, so a quota edited mid-run applies at once.
    """

    def __init__(self, rate: float, now: float) -> None:
        self._tokens = max(1.0, rate)
        self._last = now

    def take(self, rate: float, now: float) -> bool:
        """Spend one token if there is one; False means throttle this call."""
        capacity = max(1.0, rate)
        if now > self._last:
            self._tokens = min(capacity, self._tokens + (now - self._last) * rate)
            self._last = now
        self._tokens = min(self._tokens, capacity)
        if self._tokens + _EPSILON >= 1.0:
            self._tokens -= 1.0
            return True
        return False
