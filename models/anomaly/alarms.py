"""When surprise becomes an alert: sustained surprise, quiet spells, daily habits, alert rate.

The detector alerts on the onset of surprise (its rise). What a rise misses is an anomaly of
moderate strength that lasts: a public holiday whose traffic looks like a Sunday's, a pressure
that stays a little low all night. :class:`SustainedSurprise` adds that evidence up::

    sustained = SustainedSurprise(allowance=1.0, level=20.0, cap=7.0)
    if sustained.observe(surprise):                    # once per episode
        nats = max(nats, 7.0)

- :class:`SustainedSurprise` - a CUSUM over the calibrated surprise: each point adds its
  surprise (at most ``cap`` nats, so one huge spike does not fill it) minus an ``allowance``;
  the sum never goes below 0. When it reaches ``level`` the episode alerts, unless it has
  already alerted at least as strongly (:meth:`~SustainedSurprise.alerted`: the echo of a
  spike in smoothed evidence is not a second anomaly); the episode ends when the sum is back
  at 0. Surprise is 0 below each evidence's 98 % quantile, so a normal series drains the sum
  at ``allowance`` nats a point and never gets there.

The detector turns evidence into an alerting surprise in nats (see :mod:`.detector`); before that
becomes a score, three small picklable gates decide whether it is news::

    quiet, habits, rate = QuietSpell(points=100), DailyHabits(), AlertRate(1000, weight=2.0)
    nats = quiet.gate(nats, above, start=3.0)          # an episode alerts once
    nats = habits.gate(ts, nats, above, start=3.0)     # so does a daily routine
    nats = rate.gate(nats, start=3.0)                  # a series that cries wolf is discounted

- :class:`QuietSpell` - an alert of at least ``start`` nats opens a spell of ``points`` points
  in which alerts on the same side of the expected value count only when they beat it by
  30 %: one excursion (and its echoes) alerts once, an excursion the other way still alerts.
- :class:`DailyHabits` - an alert at the time of day (within half an hour) at which alerts on
  the same side fired at least twice on earlier days of the last week, and no more than 30 %
  above them, is a routine (a nightly batch job, a daily backup spike) and is dropped. The
  first two occurrences still alert; a larger one at the same time still alerts.

- :class:`AlertRate` - a decayed count of the series' alerts of at least ``start`` nats over
  about the last ``memory`` points. While that count is at most 1 an alert passes whole;
  beyond it an alert loses ``weight x ln(count)`` nats: with the defaults the third alert in
  a row loses 1.4 nats, the fifth 2.8. A bursty series whose bursts are its normal life stops
  filling the alert feed, and a real anomaly, far stronger than the bursts, still alerts: the
  prior odds of an anomaly, learnt from how often this series alerts.

All see only the past (time comes in as an argument) and keep a few numbers or tuples of state.
"""

from __future__ import annotations

import math

__all__ = ["AlertRate", "DailyHabits", "QuietSpell", "SustainedSurprise"]

DAY = 86400.0
_BEAT = 1.3           # a later alert must beat the one it is compared with by 30 % to count
_HABIT_TOLERANCE = DAY / 48   # same time of day: within half an hour
_HABIT_DAYS = 7.0     # alerts remembered for habits, at most ...
_HABIT_CAPACITY = 16  # ... and at most this many
_HABIT_REPEATS = 2    # earlier days with a matching alert that make a habit


class SustainedSurprise:
    """A CUSUM of surprise beyond ``allowance`` nats a point; reaching ``level`` alerts once."""

    __slots__ = ("allowance", "cap", "fired", "level", "total")

    def __init__(self, allowance: float = 1.0, level: float = 20.0, cap: float = 7.0) -> None:
        self.allowance = allowance
        self.level = level
        self.cap = cap
        self.total = 0.0       # nats accumulated in the current episode
        self.fired = False     # whether this episode has alerted

    def observe(self, surprise: float) -> bool:
        """Add one point's surprise; True on the point where the episode first reaches ``level``."""
        total = self.total + (surprise if surprise < self.cap else self.cap) - self.allowance
        if total <= 0.0:
            self.total = 0.0
            self.fired = False
            return False
        self.total = total
        if total >= self.level and not self.fired:
            self.fired = True
            return True
        return False

    def alerted(self) -> None:
        """The current episode has alerted as strongly some other way: it does not alert again."""
        if self.total > 0.0:
            self.fired = True


class QuietSpell:
    """After an alert, same-side alerts must beat it by 30 % for ``points`` points."""

    __slots__ = ("above", "last", "left", "points")

    def __init__(self, points: int = 100) -> None:
        self.points = points
        self.left = 0          # points left in the spell
        self.last = 0.0        # nats of the alert that opened it
        self.above = True      # its side of the expected value

    def gate(self, nats: float, above: bool, start: float) -> float:
        """``nats``, or 0 for an echo in the open spell; alerts >= ``start`` open a spell."""
        if self.left > 0:
            self.left -= 1
            if above == self.above and nats <= _BEAT * self.last:
                nats = 0.0
        if nats >= start:
            self.left, self.last, self.above = self.points, nats, above
        return nats


class DailyHabits:
    """Alerts of the last week by time of day; a third one at the same time is a routine."""

    __slots__ = ("alerts",)

    def __init__(self) -> None:
        self.alerts: list[tuple[float, float, bool]] = []   # (ts, nats, above), oldest first

    def gate(self, ts: float, nats: float, above: bool, start: float) -> float:
        """``nats``, or 0 for a routine alert; alerts >= ``start`` are remembered."""
        if nats < start:
            return nats
        matches = sum(
            1 for then, size, side in self.alerts
            if side == above and nats <= _BEAT * size and _same_time_of_day(ts - then)
        )
        alerts = self.alerts
        alerts.append((ts, nats, above))
        while alerts and (len(alerts) > _HABIT_CAPACITY or ts - alerts[0][0] > _HABIT_DAYS * DAY):
            del alerts[0]
        return 0.0 if matches >= _HABIT_REPEATS else nats


class AlertRate:
    """Recent alerts, decayed over ``memory`` points; past one, each costs ``weight x ln count``."""

    __slots__ = ("count", "keep", "weight")

    def __init__(self, memory: int = 1000, weight: float = 2.0) -> None:
        self.keep = 1.0 - 1.0 / memory
        self.weight = weight
        self.count = 0.0       # alerts of the last ~memory points (exponentially decayed)

    def gate(self, nats: float, start: float) -> float:
        """``nats`` less the discount for the alerts before it; alerts >= ``start`` are counted."""
        count = self.count
        self.count = count * self.keep + (1.0 if nats >= start else 0.0)
        if count > 1.0:
            nats -= self.weight * math.log(count)
        return nats if nats > 0.0 else 0.0


def _same_time_of_day(age: float) -> bool:
    """Whether an alert ``age`` seconds ago came on an earlier day at the same time of day."""
    if age < 0.5 * DAY:
        return False
    gap = age % DAY
    return min(gap, DAY - gap) <= _HABIT_TOLERANCE
