"""Rolling means over the last hours, kept incrementally in a ring of time buckets.

For AQI averaging periods and long noise windows: the flow feeds each reading (or window mean)
once and asks for the means over the last 1 h, 8 h and 24 h without re-reading history::

    rolling = RollingMean(bucket_s=60, windows_s=(3600, 8 * 3600, 24 * 3600))
    rolling.add(ts, 35.2)                  # event time in epoch seconds; weight defaults to 1
    rolling.mean(3600)                     # WindowMean(mean=..., filled=..., buckets=60, ...)
    rolling.mean(8 * 3600, now=clock())    # first move the windows on to ``now`` (gaps count)

Time is cut into buckets of ``bucket_s`` seconds; a window of ``N`` buckets is the current
(partial) bucket and the ``N - 1`` before it. Each bucket keeps the weighted sum and the weight of
its values. For every window the structure keeps running totals, adds a value to the windows
that contain its bucket, and subtracts buckets as they fall out, so ``add`` and ``mean`` cost
O(1) amortised (O(number of windows)). A full exact recount every ``ring`` buckets of time wipes
out the rounding left by the subtractions. Memory is one ring of ``longest window / bucket_s``
buckets in compact arrays; values older than that are dropped and counted in ``dropped``.

``WindowMean.filled`` counts the buckets that hold data, so a caller can refuse a mean with
too many gaps (the AQI rules ask for, e.g., 75 % of the hours). The object pickles (bytewax
recovery snapshots it) and carries no clock: time only moves with ``add`` and ``advance``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from models.indicators.levels import InvalidIndicatorInput, finite, positive

__all__ = ["RollingMean", "WindowMean"]

_EMPTY = -(2**62)


@dataclass(frozen=True, slots=True)
class WindowMean:
    """The mean over one window: None when it holds no data; how much of it is filled."""

    window_s: float
    mean: float | None
    weight: float
    filled: int
    buckets: int
    end_ts: float | None

    @property
    def filled_share(self) -> float:
        """The share of the window's buckets that hold data (0 to 1)."""
        return self.filled / self.buckets


class RollingMean:
    """Weighted means over several trailing windows, in O(1) amortised time and bounded memory."""

    __slots__ = (
        "_filled",
        "_keys",
        "_since_recount",
        "_spans",
        "_sums",
        "_total_sum",
        "_total_weight",
        "_weights",
        "bucket_s",
        "current",
        "dropped",
        "windows_s",
    )

    def __init__(
        self, bucket_s: float = 60.0, windows_s: Sequence[float] = (3600.0, 28800.0, 86400.0)
    ) -> None:
        self.bucket_s = positive("bucket_s", bucket_s)
        if not windows_s:
            raise InvalidIndicatorInput("windows_s", list(windows_s), "need at least one window")
        self.windows_s = tuple(positive("windows_s", w) for w in windows_s)
        self._spans = tuple(_buckets_in(w, self.bucket_s) for w in self.windows_s)
        ring = max(self._spans)
        self._keys = array("q", [_EMPTY]) * ring
        self._sums = array("d", [0.0]) * ring
        self._weights = array("d", [0.0]) * ring
        count = len(self._spans)
        self._total_sum = [0.0] * count
        self._total_weight = [0.0] * count
        self._filled = [0] * count
        self._since_recount = 0
        self.current: int | None = None
        self.dropped = 0

    @property
    def ring(self) -> int:
        """How many buckets the ring holds (the longest window)."""
        return len(self._keys)

    def add(self, ts: float, value: float, weight: float = 1.0) -> bool:
        """Count ``value`` (with ``weight``) at event time ``ts``; False if too old to keep."""
        bucket = math.floor(finite("ts", ts) / self.bucket_s)
        value = finite("value", value)
        weight = positive("weight", weight)
        self._advance_to(bucket)
        assert self.current is not None
        if bucket <= self.current - self.ring:
            self.dropped += 1
            return False
        slot = bucket % self.ring
        if self._keys[slot] != bucket:
            self._keys[slot] = bucket
            self._sums[slot] = 0.0
            self._weights[slot] = 0.0
        was_empty = self._weights[slot] == 0.0
        self._sums[slot] += value * weight
        self._weights[slot] += weight
        for number, span in enumerate(self._spans):
            if bucket > self.current - span:
                self._total_sum[number] += value * weight
                self._total_weight[number] += weight
                self._filled[number] += was_empty
        return True

    def advance(self, now: float) -> None:
        """Move the windows on to ``now`` (a clock or watermark); time never moves back."""
        self._advance_to(math.floor(finite("now", now) / self.bucket_s))

    def mean(self, window_s: float, now: float | None = None) -> WindowMean:
        """The mean over the window of ``window_s`` seconds (one of ``windows_s``)."""
        if now is not None:
            self.advance(now)
        number = self._window_number(window_s)
        weight = self._total_weight[number]
        filled = self._filled[number]
        mean = self._total_sum[number] / weight if filled and weight > 0 else None
        end = None if self.current is None else (self.current + 1) * self.bucket_s
        return WindowMean(
            self.windows_s[number], mean, weight if filled else 0.0, filled,
            self._spans[number], end,
        )

    def means(self, now: float | None = None) -> tuple[WindowMean, ...]:
        """The means over every window, shortest first as configured."""
        if now is not None:
            self.advance(now)
        return tuple(self.mean(w) for w in self.windows_s)

    def _window_number(self, window_s: float) -> int:
        for number, configured in enumerate(self.windows_s):
            if math.isclose(configured, window_s):
                return number
        raise InvalidIndicatorInput("window_s", window_s, f"is not one of {list(self.windows_s)}")

    def _advance_to(self, bucket: int) -> None:
        if self.current is None:
            self.current = bucket
            return
        if bucket <= self.current:
            return
        step = bucket - self.current
        if step >= self.ring:
            self._forget_all()
        else:
            for number, span in enumerate(self._spans):
                for leaving in range(self.current - span + 1, bucket - span + 1):
                    self._subtract(number, leaving)
        self.current = bucket
        self._since_recount += step
        if self._since_recount >= self.ring:
            self._recount()

    def _subtract(self, number: int, bucket: int) -> None:
        slot = bucket % self.ring
        if self._keys[slot] != bucket or self._weights[slot] == 0.0:
            return
        self._filled[number] -= 1
        if self._filled[number] == 0:
            self._total_sum[number] = 0.0
            self._total_weight[number] = 0.0
        else:
            self._total_sum[number] -= self._sums[slot]
            self._total_weight[number] -= self._weights[slot]

    def _forget_all(self) -> None:
        for number in range(len(self._spans)):
            self._total_sum[number] = 0.0
            self._total_weight[number] = 0.0
            self._filled[number] = 0

    def _recount(self) -> None:
        """Recompute every window's totals exactly from the ring (drops rounding drift)."""
        assert self.current is not None
        for number, span in enumerate(self._spans):
            slots = [
                b % self.ring for b in range(self.current - span + 1, self.current + 1)
                if self._keys[b % self.ring] == b and self._weights[b % self.ring] > 0
            ]
            self._total_sum[number] = math.fsum(self._sums[s] for s in slots)
            self._total_weight[number] = math.fsum(self._weights[s] for s in slots)
            self._filled[number] = len(slots)
        self._since_recount = 0


def _buckets_in(window_s: float, bucket_s: float) -> int:
    count = round(window_s / bucket_s)
    if count < 1 or not math.isclose(count * bucket_s, window_s):
        reason = f"must be a whole number of buckets of {bucket_s} s"
        raise InvalidIndicatorInput("windows_s", window_s, reason)
    return count
