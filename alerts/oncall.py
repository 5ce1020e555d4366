"""Who is on call for a department, and until when: pure schedule arithmetic, time injected.

A schedule (:class:`settings.oncall.OncallSchedule`) is a rotation of people handing over at a
local time every ``shift_days`` days, counted from ``start`` in the schedule's time zone (so a
handoff at 08:00 stays at 08:00 local across daylight-saving changes), with overrides on top (a
later override wins where two overlap)::

    who(schedule, at=now)                             # "ben"
    current, following = now_and_next(schedule, at=now)
    current.person, current.end                       # "ben", when ben hands over
    following.person                                  # "chen" (None: nobody else is ever on)
    shifts(schedule, since=t0, until=t1)              # [Shift, ...]: covers [t0, t1) exactly

Times are epoch seconds. Shifts returned by :func:`shifts` are maximal: two in a row never have
the same person.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from settings.oncall import OncallSchedule

__all__ = [
    "Shift",
    "handoff_at",
    "now_and_next",
    "rotation_index",
    "shifts",
    "who",
]

_DAY_S = 86400.0
_HORIZON_SHIFTS = 3
""":func:`now_and_next` looks this many rotations ahead for the next person."""


@dataclass(frozen=True, slots=True)
class Shift:
    """``person`` is on call from ``start`` until ``end`` (epoch seconds); ``override``: by an
    override rather than the rotation."""

    person: str
    start: float
    end: float
    override: bool = False


def handoff_at(schedule: OncallSchedule, number: int) -> float:
    """When rotation shift ``number`` (0: the one starting on ``start``; negative: before)
    begins, in epoch seconds."""
    day = schedule.start + timedelta(days=number * schedule.shift_days)
    local = datetime.combine(day, schedule.handoff, tzinfo=ZoneInfo(schedule.timezone))
    return local.timestamp()


def rotation_index(schedule: OncallSchedule, at: float) -> int:
    """The number of the rotation shift covering ``at``."""
    length = schedule.shift_days * _DAY_S
    number = math.floor((at - handoff_at(schedule, 0)) / length)
    while handoff_at(schedule, number) > at:  # a day is 23 to 25 h: at most a step or two off
        number -= 1
    while handoff_at(schedule, number + 1) <= at:
        number += 1
    return number


def _rotation_person(schedule: OncallSchedule, number: int) -> str:
    return schedule.rotation[number % len(schedule.rotation)]


def _override(schedule: OncallSchedule, at: float) -> str | None:
    for override in reversed(schedule.overrides):
        if override.start.timestamp() <= at < override.end.timestamp():
            return override.person
    return None


def who(schedule: OncallSchedule, at: float) -> str:
    """The person on call at ``at``."""
    return _override(schedule, at) or _rotation_person(schedule, rotation_index(schedule, at))


def _cuts(schedule: OncallSchedule, since: float, until: float) -> Iterator[float]:
    """Every time in (since, until) where the person on call may change."""
    number = rotation_index(schedule, since) + 1
    while (at := handoff_at(schedule, number)) < until:
        yield at
        number += 1
    for override in schedule.overrides:
        for edge in (override.start.timestamp(), override.end.timestamp()):
            if since < edge < until:
                yield edge


def shifts(schedule: OncallSchedule, *, since: float, until: float) -> list[Shift]:
    """Who is on call over ``[since, until)``: maximal shifts covering it exactly, in order."""
    if until <= since:
        return []
    edges = [since, *sorted(set(_cuts(schedule, since, until))), until]
    found: list[Shift] = []
    for start, end in zip(edges, edges[1:], strict=False):
        person = who(schedule, start)
        override = _override(schedule, start) is not None
        if found and found[-1].person == person:
            last = found[-1]
            found[-1] = Shift(person, last.start, end, last.override and override)
        else:
            found.append(Shift(person, start, end, override))
    return found


def now_and_next(
    schedule: OncallSchedule, *, at: float, horizon_s: float | None = None
) -> tuple[Shift, Shift | None]:
    """The shift covering ``at`` and the one after it (None: nobody else within the horizon,
    by default three rotations; the current shift's ``end`` is then infinite). The current
    shift's ``start`` is at most one rotation back."""
    rotation_s = schedule.shift_days * _DAY_S * len(schedule.rotation)
    horizon = horizon_s if horizon_s is not None else _HORIZON_SHIFTS * rotation_s
    found = shifts(schedule, since=at - rotation_s, until=at + horizon)
    current = next(s for s in found if s.start <= at < s.end)
    later: Sequence[Shift] = found[found.index(current) + 1:]
    if not later:  # nobody else within the horizon: no end to speak of
        return replace(current, end=math.inf), None
    return current, later[0]
