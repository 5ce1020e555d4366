"""Per-device token buckets: a device that floods is throttled, the others are not.

    limiter = RateLimiter(rate_per_s=5.0, burst=100)
    if not limiter.allow("city/harbour/pm25/pm-1", now):   # now: seconds, monotonic
        ...                                                 # over the limit: dead-letter it
    limiter.take_throttled()    # {"city/harbour/pm25/pm-1": 812}: refused since the last call

Each key (the bridge uses the MQTT topic, which names the device) has a bucket of ``burst``
tokens that refills at ``rate_per_s``; a message takes one token, or is refused when none is
left. Time is an argument (this module reads no clock); a clock that steps back refills nothing.

Memory stays bounded: a bucket idle for ``burst / rate_per_s`` seconds is full again, so it is
forgotten (a returning device gets the same full bucket it would have had). The idle buckets
are swept when the number of keys doubles, so the work per call stays O(1) on average. If more
than ``max_keys`` keys are active at once (a client spraying topics), the oldest half is
forgotten too: those devices get a fresh bucket, so the limiter errs on the side of letting
readings through. Per-client limits against such a client belong to the broker.
"""

from __future__ import annotations

import math
from itertools import islice

__all__ = ["RateLimiter"]

_MIN_SWEEP = 1024  # keys before the first sweep


class RateLimiter:
    """Token buckets per key, ``rate_per_s`` tokens a second up to ``burst``; not thread-safe."""

    def __init__(self, rate_per_s: float, burst: int, *, max_keys: int = 100_000) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            msg = f"rate limit rate_per_s {rate_per_s!r} must be a positive number"
            raise ValueError(msg)
        if burst < 1:
            msg = f"rate limit burst {burst!r} must be at least 1"
            raise ValueError(msg)
        if max_keys < 2:
            msg = f"rate limit max_keys {max_keys!r} must be at least 2"
            raise ValueError(msg)
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.max_keys = max_keys
        self.idle_s = self.burst / self.rate_per_s  # an idle bucket is full again after this
        self.throttled: dict[str, int] = {}  # refused per key since take_throttled
        self.throttled_total = 0
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, time of the last call]
        self._sweep_at = min(_MIN_SWEEP, max_keys)

    def __len__(self) -> int:
        """The number of keys whose bucket is remembered."""
        return len(self._buckets)

    def allow(self, key: str, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens (one message; a batch of readings: one each) from ``key``'s
        bucket at ``now``; False (and counted) if it has fewer, taking none."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            if cost > self.burst:
                self._buckets[key] = [self.burst, now]
                return self._refuse(key)
            self._buckets[key] = [self.burst - cost, now]
            return True
        tokens = bucket[0]
        elapsed = now - bucket[1]
        if elapsed > 0.0:
            tokens += elapsed * self.rate_per_s
            if tokens > self.burst:
                tokens = self.burst
            bucket[1] = now
        if tokens >= cost:
            bucket[0] = tokens - cost
            return True
        bucket[0] = tokens
        return self._refuse(key)

    def _refuse(self, key: str) -> bool:
        self.throttled[key] = self.throttled.get(key, 0) + 1
        self.throttled_total += 1
        return False

    def take_throttled(self) -> dict[str, int]:
        """The refused count per key since the last call, then reset."""
        counts, self.throttled = self.throttled, {}
        return counts

    def _sweep(self, now: float) -> None:
        since = now - self.idle_s
        buckets = {key: b for key, b in self._buckets.items() if b[1] > since}
        keep = self.max_keys // 2
        if len(buckets) > keep:  # too many active keys: forget the oldest ones
            for key in list(islice(buckets, len(buckets) - keep)):
                del buckets[key]
        self._buckets = buckets
        self._sweep_at = min(max(2 * len(buckets), _MIN_SWEEP), self.max_keys)
