"""Power: load over capacity, per substation and per district.

::

    params = PowerParams()
    substation_load(88.0, 100.0, params, substation="sub-7")   # 0.88, "elevated"
    district_load({"sub-1": 60.0, "sub-2": 95.0}, {"sub-1": 100.0, "sub-2": 100.0}, params)
    # 0.775 ("elevated"), worst substation sub-2 at 0.95

Levels, :data:`LEVELS`, by the ratio: "normal" below 0.7, "elevated" from 0.7, "high" from 0.9,
"overloaded" from 1.0 (at capacity). Sub-score: 100 at no load, 75 / 50 / 25 at the bounds, 0 at
``worst_ratio`` (1.2), linear between.

A district's ratio is its reporting substations' total load over their total capacity
(substations that did not report are left out of both). Its level is that ratio's; the worst
substation is named among the inputs, and each substation has its own indicator for alarms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from models.indicators.levels import (
    Band,
    Banded,
    Indicator,
    InvalidIndicatorInput,
    finite,
    positive,
)

__all__ = ["LEVELS", "PowerParams", "district_load", "substation_load"]

LEVELS = ("normal", "elevated", "high", "overloaded")
"""Power load levels, lightly loaded first."""


@dataclass(frozen=True, slots=True)
class PowerParams(Banded):
    """The load-ratio bounds of the power levels."""

    bounds: tuple[float, float, float] = (0.7, 0.9, 1.0)
    worst_ratio: float = 1.2

    def __post_init__(self) -> None:
        self.band.check()

    @property
    def band(self) -> Band:
        """Levels and sub-score over load / capacity."""
        return Band("bounds", LEVELS, self.bounds, best=0.0, worst=self.worst_ratio)


def _load(name: str, value: float) -> float:
    load = finite(name, value)
    if load < 0:
        raise InvalidIndicatorInput(name, value, "must not be negative")
    return load


def substation_load(
    load_mw: float, capacity_mw: float, params: PowerParams, substation: str | None = None
) -> Indicator:
    """One substation's load ratio."""
    load = _load("load_mw", load_mw)
    capacity = positive("capacity_mw", capacity_mw)
    ratio = load / capacity
    return params.scale.indicator(
        "power", ratio, "ratio", substation=substation, load_mw=load, capacity_mw=capacity,
    )


def district_load(
    loads_mw: Mapping[str, float], capacities_mw: Mapping[str, float], params: PowerParams
) -> Indicator:
    """A district's load ratio over the substations in ``loads_mw`` (id -> MW)."""
    if not loads_mw:
        raise InvalidIndicatorInput("loads_mw", dict(loads_mw), "need at least one substation")
    ratios: dict[str, float] = {}
    total_load = total_capacity = 0.0
    for substation, value in loads_mw.items():
        if substation not in capacities_mw:
            raise InvalidIndicatorInput("capacities_mw", substation, "has no capacity configured")
        load = _load(f"loads_mw[{substation!r}]", value)
        capacity = positive(f"capacities_mw[{substation!r}]", capacities_mw[substation])
        ratios[substation] = load / capacity
        total_load += load
        total_capacity += capacity
    ratio = total_load / total_capacity
    worst = max(ratios, key=lambda s: ratios[s])
    return params.scale.indicator(
        "power", ratio, "ratio",
        load_mw=total_load, capacity_mw=total_capacity, substations=len(ratios),
        worst_substation=worst, worst_ratio=ratios[worst],
    )
