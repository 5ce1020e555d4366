"""Crowds: people per square metre against the area's safe density.

::

    params = CrowdParams(safe_density=2.0)              # or CrowdParams.from_capacity(800, 400.0)
    crowd_indicator(1.7, params)                        # ratio 0.85: level "crowded"
    crowd_indicator(density(1200, 400.0), params)       # 3.0 per m2, ratio 1.5: "over_capacity"

Levels, :data:`LEVELS`, by density / safe density: "comfortable" below 0.5, "busy" from 0.5,
"crowded" from 0.8, "over_capacity" from 1.0. Sub-score: 100 when empty, 75 / 50 / 25 at the
bounds, 0 at ``worst_ratio`` (1.5), linear between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.indicators.levels import (
    Band,
    Banded,
    Indicator,
    InvalidIndicatorInput,
    finite,
    positive,
)

__all__ = ["LEVELS", "CrowdParams", "crowd_indicator", "density"]

LEVELS = ("comfortable", "busy", "crowded", "over_capacity")
"""Crowd levels, roomy first."""


@dataclass(frozen=True, slots=True)
class CrowdParams(Banded):
    """An area's safe density (persons/m2) and the level bounds as fractions of it."""

    safe_density: float
    bounds: tuple[float, float, float] = (0.5, 0.8, 1.0)
    worst_ratio: float = 1.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "safe_density", positive("safe_density", self.safe_density))
        self.band.check()

    @classmethod
    def from_capacity(cls, safe_persons: float, area_m2: float, **options: Any) -> CrowdParams:
        """The parameters of an area of ``area_m2`` that holds ``safe_persons`` safely."""
        safe = positive("safe_persons", safe_persons) / positive("area_m2", area_m2)
        return cls(safe, **options)

    @property
    def band(self) -> Band:
        """Levels and sub-score over density / safe density."""
        return Band("bounds", LEVELS, self.bounds, best=0.0, worst=self.worst_ratio)


def density(people: float, area_m2: float) -> float:
    """People per square metre."""
    count = finite("people", people)
    if count < 0:
        raise InvalidIndicatorInput("people", people, "must not be negative")
    return count / positive("area_m2", area_m2)


def crowd_indicator(density_per_m2: float, params: CrowdParams) -> Indicator:
    """The crowd indicator of a density in persons/m2."""
    value = finite("density_per_m2", density_per_m2)
    if value < 0:
        raise InvalidIndicatorInput("density_per_m2", density_per_m2, "must not be negative")
    ratio = value / params.safe_density
    return params.scale.indicator(
        "crowd", value, "persons/m2", at=ratio, safe_density=params.safe_density, ratio=ratio,
    )
