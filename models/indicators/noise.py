"""Noise: the equivalent continuous level Leq, and how far it is over the zone's limit.

Sound levels average as energy, not as decibels: two equal spans at 60 and 70 dB(A) give
``10*log10((10**6 + 10**7) / 2) = 67.4`` dB, not 65. :func:`leq` does this for a list of levels
(optionally weighted by duration), :class:`LeqAccumulator` folds readings into one window and
:class:`RollingLeq` keeps the Leq over the last hours incrementally::

    leq([60.0, 70.0])                                   # 67.40
    params = NoiseParams.for_zone("2")                  # GB 3096-2008 class 2: 60 / 50 dB(A)
    noise_indicator(62.0, hour=23, params=params)       # night limit 50: level "severe"

The limit depends on the district's functional zone class and on the local hour: GB 3096-2008
defines day as 06:00-22:00 and night as 22:00-06:00 (local governments may shift them, hence
``day_start_hour`` and ``night_start_hour``), with these limits in dB(A) (:data:`GB3096_2008`):

    class  0: 50 / 40   1: 55 / 45   2: 60 / 50   3: 65 / 55   4a: 70 / 55   4b: 70 / 60

Levels, :data:`LEVELS`, by the excess ``Leq - limit``: "within" up to the limit (reaching it is
allowed), "over" up to +5 dB, "high" up to +10 dB, "severe" beyond. Sub-score: 100 at
``best_margin_db`` (10 dB) below the limit, 75 at the limit, 50 at +5, 25 at +10, 0 at
``worst_excess_db`` (+20), linear between.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from models.indicators.levels import (
    Band,
    Banded,
    Indicator,
    InvalidIndicatorInput,
    finite,
    positive,
)
from models.indicators.rolling import RollingMean

__all__ = [
    "GB3096_2008",
    "LEVELS",
    "LeqAccumulator",
    "NoiseLimit",
    "NoiseParams",
    "RollingLeq",
    "energy",
    "from_energy",
    "is_daytime",
    "leq",
    "limit_at",
    "local_hour",
    "noise_indicator",
]

LEVELS = ("within", "over", "high", "severe")
"""Noise levels by excess over the applicable limit, compliant first."""


@dataclass(frozen=True, slots=True)
class NoiseLimit:
    """A functional zone's day and night limits, Leq in dB(A)."""

    day_db: float
    night_db: float


GB3096_2008: Mapping[str, NoiseLimit] = {
    "0": NoiseLimit(50.0, 40.0),
    "1": NoiseLimit(55.0, 45.0),
    "2": NoiseLimit(60.0, 50.0),
    "3": NoiseLimit(65.0, 55.0),
    "4a": NoiseLimit(70.0, 55.0),
    "4b": NoiseLimit(70.0, 60.0),
}
"""GB 3096-2008 Table 1: environmental noise limits by functional zone class."""


@dataclass(frozen=True, slots=True)
class NoiseParams(Banded):
    """One district's zone class and limit, the day/night hours and the excess bounds."""

    zone: str
    limit: NoiseLimit
    day_start_hour: int = 6
    night_start_hour: int = 22
    excess_bounds: tuple[float, float, float] = (0.0, 5.0, 10.0)
    best_margin_db: float = 10.0
    worst_excess_db: float = 20.0

    def __post_init__(self) -> None:
        for name in ("day_start_hour", "night_start_hour"):
            hour = getattr(self, name)
            if not (isinstance(hour, int) and 0 <= hour < 24):
                raise InvalidIndicatorInput(name, hour, "must be a whole hour from 0 to 23")
        if self.day_start_hour == self.night_start_hour:
            reason = "day and night must not start at the same hour"
            raise InvalidIndicatorInput("night_start_hour", self.night_start_hour, reason)
        self.band.check()

    @property
    def band(self) -> Band:
        """Levels and sub-score over the excess Leq - limit (a limit may be reached)."""
        return Band(
            "excess_bounds", LEVELS, self.excess_bounds, -self.best_margin_db,
            self.worst_excess_db, worse_on_bound=False,
        )

    @classmethod
    def for_zone(
        cls, zone: str, limits: Mapping[str, NoiseLimit] = GB3096_2008, **options: Any
    ) -> NoiseParams:
        """The parameters of a district in functional zone class ``zone`` of ``limits``."""
        if zone not in limits:
            raise InvalidIndicatorInput("zone", zone, f"is not one of {sorted(limits)}")
        return cls(zone, limits[zone], **options)


def energy(level_db: float) -> float:
    """The relative energy of a sound level: ``10 ** (L / 10)``."""
    return math.pow(10.0, finite("level_db", level_db) / 10.0)


def from_energy(value: float) -> float:
    """The sound level of a relative energy: ``10 * log10(E)``."""
    return 10.0 * math.log10(positive("energy", value))


def leq(levels_db: Sequence[float], durations_s: Sequence[float] | None = None) -> float:
    """The energy average of ``levels_db``, each lasting its duration (equal when omitted)."""
    if not levels_db:
        raise InvalidIndicatorInput("levels_db", list(levels_db), "need at least one level")
    if durations_s is None:
        durations_s = [1.0] * len(levels_db)
    if len(durations_s) != len(levels_db):
        reason = f"has {len(durations_s)} durations for {len(levels_db)} levels"
        raise InvalidIndicatorInput("durations_s", list(durations_s), reason)
    total = LeqAccumulator()
    for level_db, duration_s in zip(levels_db, durations_s, strict=True):
        total.add(level_db, duration_s)
    return total.leq


class LeqAccumulator:
    """The Leq of one window, built reading by reading (a bytewax fold); mergeable, picklable.

    Levels are scaled by the window's peak before summing, so very loud and very long windows
    neither overflow nor lose the quiet parts.
    """

    __slots__ = ("count", "duration_s", "max_db", "min_db", "_ref_db", "_scaled")

    def __init__(self) -> None:
        self.count = 0
        self.duration_s = 0.0
        self.min_db = math.inf
        self.max_db = -math.inf
        self._ref_db = 0.0
        self._scaled = 0.0

    def add(self, level_db: float, duration_s: float = 1.0) -> None:
        """Count ``level_db`` as lasting ``duration_s`` seconds."""
        level_db = finite("level_db", level_db)
        duration_s = positive("duration_s", duration_s)
        self._rescale(level_db)
        self._scaled += duration_s * 10.0 ** ((level_db - self._ref_db) / 10.0)
        self.duration_s += duration_s
        self.count += 1
        self.min_db = min(self.min_db, level_db)
        self.max_db = max(self.max_db, level_db)

    def merge(self, other: LeqAccumulator) -> None:
        """Fold ``other`` (another part of the same window) into this one."""
        if not other.count:
            return
        self._rescale(other._ref_db)
        self._scaled += other._scaled * 10.0 ** ((other._ref_db - self._ref_db) / 10.0)
        self.duration_s += other.duration_s
        self.count += other.count
        self.min_db = min(self.min_db, other.min_db)
        self.max_db = max(self.max_db, other.max_db)

    @property
    def leq(self) -> float:
        """The window's Leq in dB; InvalidIndicatorInput when nothing was added."""
        if not self.count:
            raise InvalidIndicatorInput("LeqAccumulator", 0, "holds no levels yet")
        level = self._ref_db + 10.0 * math.log10(self._scaled / self.duration_s)
        return min(max(level, self.min_db), self.max_db)

    def _rescale(self, level_db: float) -> None:
        if self.count and level_db <= self._ref_db:
            return
        if self.count:
            self._scaled *= 10.0 ** ((self._ref_db - level_db) / 10.0)
        self._ref_db = level_db


class RollingLeq:
    """The Leq over trailing windows (1 h, 8 h, ...), from window Leqs or single readings.

    A :class:`~models.indicators.rolling.RollingMean` of energies weighted by duration: each
    ``add(ts, level_db, duration_s)`` is counted once, and ``leq(window_s)`` is O(1) amortised.
    """

    __slots__ = ("energies",)

    def __init__(
        self, bucket_s: float = 60.0, windows_s: Sequence[float] = (3600.0, 28800.0, 86400.0)
    ) -> None:
        self.energies = RollingMean(bucket_s, windows_s)

    def add(self, ts: float, level_db: float, duration_s: float = 1.0) -> bool:
        """Count ``level_db`` lasting ``duration_s`` at event time ``ts``; False if too old."""
        return self.energies.add(ts, energy(level_db), duration_s)

    def leq(self, window_s: float, now: float | None = None) -> float | None:
        """The Leq over the last ``window_s`` seconds, or None when it holds no data."""
        mean = self.energies.mean(window_s, now).mean
        return None if mean is None else from_energy(mean)


def local_hour(ts: float, zone: tzinfo) -> int:
    """The local hour (0-23) at epoch ``ts`` in time zone ``zone`` (a ZoneInfo)."""
    return datetime.fromtimestamp(finite("ts", ts), zone).hour


def is_daytime(hour: int, params: NoiseParams) -> bool:
    """Whether local ``hour`` is in the day period (06:00-22:00 by default)."""
    if not 0 <= hour < 24:
        raise InvalidIndicatorInput("hour", hour, "must be from 0 to 23")
    start, end = params.day_start_hour, params.night_start_hour
    return start <= hour < end if start < end else hour >= start or hour < end


def limit_at(hour: int, params: NoiseParams) -> tuple[str, float]:
    """("day" or "night", the limit in dB(A)) that applies at local ``hour``."""
    if is_daytime(hour, params):
        return "day", params.limit.day_db
    return "night", params.limit.night_db


def noise_indicator(leq_db: float, hour: int, params: NoiseParams) -> Indicator:
    """The noise indicator of a window's Leq against the limit at local ``hour``.

    Pass the local hour of the window's middle (:func:`local_hour`).
    """
    leq_db = finite("leq_db", leq_db)
    period, limit = limit_at(hour, params)
    excess = leq_db - limit
    return params.scale.indicator(
        "noise", leq_db, "dBA", at=excess,
        zone=params.zone, period=period, local_hour=hour, limit_db=limit,
        excess_db=round(excess, 3),
    )
