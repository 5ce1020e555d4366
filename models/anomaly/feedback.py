"""Operator feedback: a false alarm widens what one series may do without alerting, reversibly.

When an operator resolves an anomaly incident as a false alarm, the flow calls
``detector.mark_false_alarm(at, value)``. The detector records a :class:`FalseAlarm`: how far
``value`` was from the value it expected at ``at``, in the series' own scale (``deviation``,
signed: positive above, negative below), and optionally the time of day it happened. From then
on a point that deviates **in the same direction by no more than** ``tolerance`` (the marked
deviation plus a margin, 25 % by default) - and, when ``within_s`` is set, lies within that many
seconds of the same time of day - scores 0 and reports the false alarm that muted it. A bigger
deviation, one in the other direction, or another kind of anomaly still fires. The model keeps
learning from muted points exactly as before, so undoing a false alarm restores the original
behaviour::

    alarm = detector.mark_false_alarm(at=alert_ts, value=91.0)
    detector.false_alarms          # (FalseAlarm(id=1, ..., deviation=7.8, tolerance=9.75), )
    detector.undo_false_alarm(alarm.id)

Deviations are measured in scale units rather than raw units, so a false alarm stays meaningful
while the series' level and noise drift. :class:`FeedbackMemory` is the small picklable list
the detector keeps (at most ``capacity`` entries, oldest dropped first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.errors import CityheartError

__all__ = ["FalseAlarm", "FeedbackMemory", "UnknownFalseAlarm"]

DAY = 86400.0


class UnknownFalseAlarm(CityheartError, LookupError):
    """Raised when undoing a false alarm id that the detector does not hold."""

    def __init__(self, alarm_id: int, known: tuple[int, ...]) -> None:
        super().__init__(alarm_id, known)
        self.alarm_id = alarm_id
        self.known = known

    def __str__(self) -> str:
        return f"no false alarm with id {self.alarm_id} (known ids: {list(self.known)})"


@dataclass(frozen=True, slots=True)
class FalseAlarm:
    """One operator verdict "this was normal", as the detector applies it."""

    id: int
    at: float            # epoch seconds of the point the operator marked
    value: float
    expected: float      # what the detector expected at ``at``
    deviation: float     # (value - expected) / scale; the sign is the direction
    tolerance: float     # points deviating in the same direction by up to this are muted
    within_s: float | None = None   # only around the same time of day (None: at any time)

    def mutes(self, ts: float, deviation: float) -> bool:
        """Whether a point at ``ts`` deviating by ``deviation`` scales is covered."""
        if deviation * self.deviation <= 0.0 or abs(deviation) > self.tolerance:
            return False
        if self.within_s is None:
            return True
        gap = abs(ts - self.at) % DAY
        return min(gap, DAY - gap) <= self.within_s

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description, e.g. for the operator console."""
        return {
            "id": self.id,
            "at": self.at,
            "value": self.value,
            "expected": self.expected,
            "deviation": self.deviation,
            "tolerance": self.tolerance,
            "within_s": self.within_s,
        }


class FeedbackMemory:
    """The false alarms one detector applies, newest last."""

    __slots__ = ("alarms", "capacity", "next_id")

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self.alarms: list[FalseAlarm] = []
        self.next_id = 1

    def add(
        self,
        at: float,
        value: float,
        expected: float,
        deviation: float,
        margin: float,
        within_s: float | None,
    ) -> FalseAlarm:
        """Record a false alarm; the oldest one goes when ``capacity`` is reached."""
        alarm = FalseAlarm(
            id=self.next_id,
            at=at,
            value=value,
            expected=expected,
            deviation=deviation,
            tolerance=abs(deviation) * (1.0 + margin),
            within_s=within_s,
        )
        self.next_id += 1
        self.alarms.append(alarm)
        if len(self.alarms) > self.capacity:
            del self.alarms[0]
        return alarm

    def remove(self, alarm_id: int) -> FalseAlarm:
        """Forget a false alarm by id; raises :class:`UnknownFalseAlarm` if there is none."""
        for index, alarm in enumerate(self.alarms):
            if alarm.id == alarm_id:
                return self.alarms.pop(index)
        raise UnknownFalseAlarm(alarm_id, tuple(alarm.id for alarm in self.alarms))

    def muting(self, ts: float, deviation: float) -> FalseAlarm | None:
        """The false alarm that mutes a point, if any."""
        for alarm in self.alarms:
            if alarm.mutes(ts, deviation):
                return alarm
        return None
