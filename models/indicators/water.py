"""Water: river and drain levels against their warning and danger lines, and pipe pressure.

A water level is judged by the station's lines and by how fast it rises (m/h, from two
windows)::

    params = WaterLevelParams(normal_m=1.6, warning_m=3.5, danger_m=4.5)
    rise = rate_of_rise((t0, 2.9), (t0 + 1800, 3.1))   # 0.4 m/h
    water_level_indicator(3.1, rise, params)           # level "rising", 1.0 h to the warning line

Levels, :data:`LEVELS`: "danger" at or above the danger line, "warning" at or above the warning
line, "rising" below it but rising at ``rise_alert_m_per_h`` or faster, else "normal".
Sub-score, piecewise linear over the height: 100 at ``normal_m``, 66.7 at the warning line, 33.3
at the danger line, 0 one warning-to-danger span above it; a "rising" level caps it at 66.7 (a
fast rise counts as much as reaching the warning line).

Pipe pressure must stay inside a band (:class:`PressureBand`), levels :data:`PRESSURE_LEVELS`:
"normal" inside ``[low_bar, high_bar]`` (edges included), "warning" out of the band up to the
critical lines (included), "critical" beyond. Sub-score over the normalised deviation ``d``
(-1 mid-band, 0 at a band edge, 1 at a critical line, 2 one more band-to-critical span out):
100, 66.7, 33.3 and 0, linear between, so a pressure drifting to the band edge already scores
lower than one in the middle.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.indicators.levels import (
    Band,
    Banded,
    Indicator,
    InvalidIndicatorInput,
    Scale,
    finite,
    increasing,
    positive,
)

__all__ = [
    "LEVELS",
    "PRESSURE_LEVELS",
    "PressureBand",
    "WaterLevelParams",
    "pressure_indicator",
    "rate_of_rise",
    "water_level_indicator",
]

LEVELS = ("normal", "rising", "warning", "danger")
"""Water level levels, safe first."""

PRESSURE_LEVELS = ("normal", "warning", "critical")
"""Pipe pressure levels, in band first."""

_HEIGHT_LEVELS = ("normal", "warning", "danger")


@dataclass(frozen=True, slots=True)
class WaterLevelParams(Banded):
    """One station's usual level, warning and danger lines (m) and the fast-rise rate (m/h)."""

    normal_m: float
    warning_m: float
    danger_m: float
    rise_alert_m_per_h: float = 0.3

    def __post_init__(self) -> None:
        increasing("normal_m, warning_m, danger_m", (self.normal_m, self.warning_m, self.danger_m))
        positive("rise_alert_m_per_h", self.rise_alert_m_per_h)

    @property
    def band(self) -> Band:
        """Levels and sub-score over the height alone (the lines are checked on their own)."""
        top = self.danger_m + (self.danger_m - self.warning_m)
        return Band(
            "warning_m, danger_m", _HEIGHT_LEVELS, (self.warning_m, self.danger_m),
            self.normal_m, top,
        )


def rate_of_rise(earlier: tuple[float, float], later: tuple[float, float]) -> float:
    """The rate of rise in m/h between two (epoch seconds, level in m) points.

    Take each point from a window, e.g. (window end, last level) or (window middle, mean); a
    falling level gives a negative rate.
    """
    (t0, level0), (t1, level1) = earlier, later
    hours = (finite("later ts", t1) - finite("earlier ts", t0)) / 3600.0
    if hours <= 0:
        raise InvalidIndicatorInput("later ts", t1, f"must come after the earlier ts {t0}")
    return (finite("later level", level1) - finite("earlier level", level0)) / hours


def water_level_indicator(
    level_m: float, rise_m_per_h: float, params: WaterLevelParams
) -> Indicator:
    """The water level indicator from the current level and its rate of rise."""
    level_m = finite("level_m", level_m)
    rise = finite("rise_m_per_h", rise_m_per_h)
    scale = params.scale
    height = scale.level(level_m)
    score = scale.score(level_m)
    name = height
    if height == "normal" and rise >= params.rise_alert_m_per_h:
        name = "rising"
        score = min(score, scale.score_at_level(1))
    to_warning = (params.warning_m - level_m) / rise if height == "normal" and rise > 0 else None
    return Indicator.of(
        "water_level", level_m, "m", name, score,
        rise_m_per_h=rise, warning_m=params.warning_m, danger_m=params.danger_m,
        hours_to_warning=to_warning,
    )


@dataclass(frozen=True, slots=True)
class PressureBand:
    """A pipe's normal pressure band and critical lines, in bar."""

    critical_low_bar: float
    low_bar: float
    high_bar: float
    critical_high_bar: float

    def __post_init__(self) -> None:
        increasing(
            "critical_low_bar, low_bar, high_bar, critical_high_bar",
            (self.critical_low_bar, self.low_bar, self.high_bar, self.critical_high_bar),
        )

    def deviation(self, pressure_bar: float) -> float:
        """-1 mid-band, 0 at a band edge, 1 at a critical line, growing beyond."""
        if pressure_bar < self.low_bar:
            return (self.low_bar - pressure_bar) / (self.low_bar - self.critical_low_bar)
        if pressure_bar > self.high_bar:
            return (pressure_bar - self.high_bar) / (self.critical_high_bar - self.high_bar)
        middle = (self.low_bar + self.high_bar) / 2
        return abs(pressure_bar - middle) / (self.high_bar - middle) - 1.0


_PRESSURE_SCALE = Scale(PRESSURE_LEVELS, (0.0, 1.0), best=-1.0, worst=2.0, worse_on_bound=False)


def pressure_indicator(pressure_bar: float, band: PressureBand) -> Indicator:
    """The pipe pressure indicator: inside the band, or how far out and on which side."""
    pressure = finite("pressure_bar", pressure_bar)
    deviation = band.deviation(pressure)
    side = "low" if pressure < band.low_bar else "high" if pressure > band.high_bar else "in_band"
    return _PRESSURE_SCALE.indicator(
        "water_pressure", pressure, "bar", at=deviation,
        side=side, deviation=round(deviation, 4), low_bar=band.low_bar, high_bar=band.high_bar,
        critical_low_bar=band.critical_low_bar, critical_high_bar=band.critical_high_bar,
    )
