"""Baselines: what a series usually reads now, at this time of day and on this day of the week.

Small online models, each with a robust scale, that the detector compares every new value
against before it learns from it:

- :class:`RobustLevel` - an exponentially weighted level whose updates are clipped at five
  mean absolute deviations (a spike barely moves it, a real level shift moves it within about
  ``1 / fast_rate`` points), plus a slow level and slow scales used to normalise other evidence;
- :class:`SlotProfile` - the typical value per time slot of a period (48 half hours of a day,
  168 hours of a week), each slot an exponentially weighted mean of its own visits;
- :class:`Hedge` - exponential weights over the level and the daily profile by their recent
  absolute errors, so the expected value follows whichever predicts the series better;
- :class:`RepeatRuns` - how often this series repeats a value, to tell a stuck sensor;
- :class:`Envelope` - the range the series has covered (slowly forgotten) and how far a value
  goes beyond it::

    level, day, hedge = RobustLevel(), SlotProfile(48, 86400.0, min_rate=0.1), Hedge()
    slot = day.slot(ts)
    if day.ready(slot):
        w_level, w_day = hedge.weights()
        expected = w_level * level.level + w_day * day.mean[slot]
    level.learn(x)
    day.learn(slot, x, n=level.n)

Time comes in as epoch seconds; phases are taken modulo the period in UTC.
"""

from __future__ import annotations

import math
from typing import Any

from river import stats

__all__ = [
    "Envelope", "Hedge", "RepeatRuns", "RobustLevel", "SlotProfile", "ewmean", "restore_slots",
]

_CLIP = 5.0   # level updates are clipped at this many mean absolute deviations
_RECORD_SPAN = 6000   # points a repeat-run record is kept for (one or two spans)


class RobustLevel:
    """A clipped fast level with its scale, and slow references of level and scale."""

    # Kept by hand, not river.stats.EWMean/EWVar: the fast level's updates are clipped (a spike
    # must barely move it) and the slow ones average the first 1 / rate values equally (River's
    # EW statistics start at the first value and weight it like a whole history), so both
    # would change the scores.

    __slots__ = ("fast_rate", "level", "n", "noise", "scale", "slow_level", "slow_rate", "spread")

    def __init__(self, fast_rate: float = 0.05, slow_rate: float = 0.002) -> None:
        self.fast_rate = fast_rate
        self.slow_rate = slow_rate
        self.n = 0
        self.level = 0.0        # fast robust level
        self.scale = 0.0        # fast mean absolute deviation around the level
        self.slow_level = 0.0   # slow mean
        self.noise = 0.0        # slow mean absolute deviation around the fast level
        self.spread = 0.0       # slow mean absolute deviation around the slow level

    def tiny(self) -> float:
        """A scale floor relative to the series' magnitude: flat series never divide by 0."""
        return 1e-9 + 1e-6 * abs(self.slow_level)

    def learn(self, x: float) -> None:
        """Move the levels and scales towards ``x``."""
        n = self.n = self.n + 1
        if n == 1:
            self.level = self.slow_level = x
        fast = self.fast_rate if n * self.fast_rate > 1.0 else 1.0 / n
        slow = self.slow_rate if n * self.slow_rate > 1.0 else 1.0 / n
        residual = x - self.level
        clipped = residual
        if n > 10:
            limit = _CLIP * (self.scale + self.tiny())
            clipped = limit if residual > limit else (-limit if residual < -limit else residual)
        self.scale += fast * (abs(clipped) - self.scale)
        self.level += fast * clipped
        self.noise += slow * (abs(residual) - self.noise)
        self.slow_level += slow * (x - self.slow_level)
        self.spread += slow * (abs(x - self.slow_level) - self.spread)


class SlotProfile:
    """The usual value of each slot of a period, and the usual distance from it."""

    # Slot means are kept by hand: a slot averages its first visits equally, then forgets at
    # ``min_rate`` (river.stats.Mean never forgets, EWMean does not average the first visits).

    __slots__ = ("count", "mean", "min_rate", "period", "scale", "scale_rate", "slots", "smooth")

    def __init__(self, slots: int, period: float, min_rate: float, scale_rate: float = 0.002):
        self.slots = slots
        self.period = period
        self.min_rate = min_rate        # slowest per-visit update (1 / visits remembered)
        self.scale_rate = scale_rate
        self.mean = [0.0] * slots
        self.count = [0] * slots
        self.scale = 0.0                # mean absolute residual over all slots
        self.smooth = stats.EWMean(0.1)  # smoothed residual in scale units

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        """Resume a snapshot; one from before river.stats (a float ``smooth``) goes on from it."""
        restore_slots(self, state)
        if isinstance(self.smooth, float):
            self.smooth = ewmean(0.1, self.smooth)

    def slot(self, ts: float) -> int:
        """The slot of epoch time ``ts``."""
        return int((ts % self.period) * self.slots / self.period) % self.slots

    def ready(self, slot: int) -> bool:
        """Whether ``slot`` has been visited often enough to predict."""
        return self.count[slot] >= 2 and self.scale > 0.0

    def learn(self, slot: int, x: float, n: int) -> None:
        """Fold ``x`` into its slot (``n`` = values seen by the detector, for the scale rate)."""
        visits = self.count[slot]
        if visits == 0:
            self.mean[slot] = x
        else:
            residual = x - self.mean[slot]
            rate = self.scale_rate if n * self.scale_rate > 1.0 else 1.0 / n
            self.scale += rate * (abs(residual) - self.scale)
            step = 1.0 / (visits + 1)
            self.mean[slot] += (step if step > self.min_rate else self.min_rate) * residual
        self.count[slot] = visits + 1


class Hedge:
    """Exponential weights of two predictors by their decayed absolute errors (in scale units)."""

    __slots__ = ("decay", "loss_a", "loss_b")

    def __init__(self, decay: float = 0.02) -> None:
        self.decay = decay
        self.loss_a = 0.0
        self.loss_b = 0.0

    def weights(self) -> tuple[float, float]:
        """The normalised weights of predictor a and predictor b."""
        low = min(self.loss_a, self.loss_b)
        wa = math.exp(low - self.loss_a)
        wb = math.exp(low - self.loss_b)
        return wa / (wa + wb), wb / (wa + wb)

    def surprise(self, za: float, zb: float) -> float:
        """The mixture's surprise at a value the predictors miss by ``za`` and ``zb`` scales."""
        wa, wb = self.weights()
        low = za if za < zb else zb
        return low - math.log(wa * math.exp(low - za) + wb * math.exp(low - zb))

    def learn(self, za: float, zb: float) -> None:
        """Charge each predictor its error."""
        keep = 1.0 - self.decay
        self.loss_a = keep * self.loss_a + za
        self.loss_b = keep * self.loss_b + zb


class RepeatRuns:
    """Runs of repeated values, against this series' own repeat statistics.

    A Markov model of repeats: ``first`` is how often a value repeats the previous one, ``again``
    how often a repeat follows a repeat (decayed counts over ``memory`` points, smoothed by half
    a count). A run of ``r`` repeats has probability ``first * again ** (r - 1)`` under the
    statistics from before the run started (a run does not teach the model while it lasts; it
    is counted when it ends). :meth:`observe` returns the run's improbability in nats the first
    time it reaches ``limit`` while the run is also longer than every run that ended in the
    last one or two spans of ``record_span`` points (a count series that is 0 every night has
    long runs of 0 by habit: only a record one is news), else 0.
    """

    __slots__ = (
        "fired",
        "keep",
        "last",
        "record_left",
        "record_span",
        "records",
        "repeats",
        "repeats_after_repeat",
        "run",
        "steps",
    )

    def __init__(self, memory: int = 500, record_span: int = _RECORD_SPAN) -> None:
        self.keep = 1.0 - 1.0 / memory
        self.last: float | None = None
        self.run = 0
        self.fired = False
        self.steps = 0.0
        self.repeats = 0.0
        self.repeats_after_repeat = 0.0
        self.record_span = record_span
        self.record_left = record_span   # points left in the current span
        self.records = [0, 0]            # longest finished run of the previous and this span

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        """Resume a snapshot; one from before the run records (26edc5e) starts them afresh."""
        restore_slots(self, state)
        if not hasattr(self, "records"):
            self.record_span = self.record_left = _RECORD_SPAN
            self.records = [0, 0]

    def observe(self, x: float, tolerance: float, limit: float) -> float:
        """Count ``x`` (equal to the previous value within ``tolerance``); nats of a stuck run."""
        repeat = self.last is not None and abs(x - self.last) <= tolerance
        self.last = x
        self.record_left -= 1
        if self.record_left <= 0:
            self.record_left = self.record_span
            self.records = [self.records[1], 0]
        if repeat:
            self.run += 1
            first = (self.repeats + 0.5) / (self.steps + 1.0)
            again = (self.repeats_after_repeat + 0.5) / (self.repeats + 1.0)
            nats = -math.log(first) - (self.run - 1) * math.log(again)
            if nats >= limit and not self.fired and self.run > max(self.records):
                self.fired = True
                return nats
            return 0.0
        if self.run:
            self._count_run(self.run)
            self.run = 0
            self.fired = False
        keep = self.keep
        self.steps = self.steps * keep + 1.0
        self.repeats *= keep
        self.repeats_after_repeat *= keep
        return 0.0

    def _count_run(self, run: int) -> None:
        """Fold a finished run of ``run`` repeats into the decayed counts, in closed form."""
        if run > self.records[1]:
            self.records[1] = run
        keep = self.keep
        decay = keep**run
        added = (1.0 - decay) / (1.0 - keep)            # sum of keep**j for j < run
        self.steps = self.steps * decay + added
        self.repeats = self.repeats * decay + added
        # the first repeat of a run follows a change, the others follow a repeat
        self.repeats_after_repeat = self.repeats_after_repeat * decay + added - keep ** (run - 1)


# Not river.stats.Min/Max (they never forget) nor RollingMin/RollingMax (they hold every value of
# the window: 16 x memory floats, far beyond the ~20 KB a series' state may take).
class Envelope:
    """The range a series has covered so far, and how far a value goes beyond it.

    ``low`` and ``high`` are the smallest and largest values seen; both creep towards each other
    by ``shrink`` of the range per value, so a range set by one old excursion is forgotten in
    about ``1 / shrink`` values. :meth:`observe` answers how far beyond the range ``x`` lies (in
    the series' units, 0 inside it), then widens the range to include ``x``.
    """

    __slots__ = ("high", "low", "shrink")

    def __init__(self, shrink: float = 0.0) -> None:
        self.shrink = shrink
        self.low = math.inf
        self.high = -math.inf

    @property
    def width(self) -> float:
        """``high - low`` (0 before two distinct values)."""
        return self.high - self.low if self.high > self.low else 0.0

    def observe(self, x: float) -> float:
        """The excursion of ``x`` beyond the range so far; then learn ``x``."""
        low, high = self.low, self.high
        beyond = 0.0
        if high > low:
            beyond = x - high if x > high else (low - x if x < low else 0.0)
            cut = self.shrink * (high - low)
            low += cut
            high -= cut
        self.low = x if x < low else low
        self.high = x if x > high else high
        return beyond


def ewmean(rate: float, start: float | None = None) -> stats.EWMean:
    """River's exponentially weighted mean (``m += rate * (x - m)``), going on from ``start``.

    A fresh one starts at its first value; one made from a snapshot's hand-kept float starts
    at that float, so a resumed detector goes on where it was.
    """
    mean = stats.EWMean(rate)
    if start is not None:
        mean.update(start)
    return mean


def restore_slots(obj: object, state: tuple[None, dict[str, Any]]) -> None:
    """Set the slots a pickled snapshot of ``obj`` holds (the state of a ``__slots__`` class);
    slots added since the snapshot was written stay unset for the caller to fill."""
    _, slots = state
    for name, value in slots.items():
        setattr(obj, name, value)
