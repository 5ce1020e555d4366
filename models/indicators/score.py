"""District and city health scores (0-100, 100 = healthy), published with their components.

Every indicator already carries a 0-100 sub-score, piecewise linear over its own level bounds
(:class:`~models.indicators.levels.Scale`: each level owns an equal slice, 100 at the healthy end,
0 at the worst). A district's score is the weighted mean of its sub-scores, with the weights of
config.yaml renormalised over the sub-indices that are *used*::

    result = district_score("old-town", [traffic, noise, power],
                            weights={"traffic": 0.3, "noise": 0.2, "water_level": 0.2,
                                     "power": 0.3},
                            coverage={"noise": noise_coverage})
    result.score, result.level         # e.g. 71.4, "fair"
    [c.as_dict() for c in result.components]   # why: name, status, value, sub_score, weight

Each weighted sub-index gets a component with a status:

- ``used``: it counts, with ``weight`` = its configured weight over the sum of the used ones;
- ``missing``: no indicator this time (no such sensors, or no window yet);
- ``low_coverage``: its devices' coverage is below the threshold, so its number is shown but not
  trusted; it does not count and the district is marked ``confident=False``;
- ``unweighted``: an indicator with no (or zero) weight in the config: shown, never counted.

No used sub-index: the score is None. The city score is the **equal-weighted** mean of the
district scores by default, or the **population-weighted** mean when a population per district
is given; districts without a score do not count. Scores read as :data:`SCORE_LEVELS`: good from
75, fair from 50, poor from 25, critical below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from models.indicators.health import Coverage
from models.indicators.levels import Indicator, InvalidIndicatorInput, Scale, finite

__all__ = [
    "COMPONENT_STATUSES",
    "SCORE_LEVELS",
    "CityScore",
    "Component",
    "DistrictScore",
    "DistrictShare",
    "city_score",
    "district_score",
    "score_level",
]

SCORE_LEVELS = ("good", "fair", "poor", "critical")
"""What a health score reads as, healthy first."""

COMPONENT_STATUSES = ("used", "missing", "low_coverage", "unweighted")
"""Whether and why a sub-index counts in its district's score."""

_SCORE_SCALE = Scale(SCORE_LEVELS, (75.0, 50.0, 25.0), best=100.0, worst=0.0, worse_on_bound=False)


def score_level(score: float) -> str:
    """The level of a 0-100 score: good from 75, fair from 50, poor from 25, else critical."""
    return _SCORE_SCALE.level(score)


@dataclass(frozen=True, slots=True)
class Component:
    """One sub-index of a district score: what it was, whether it counted and how much."""

    name: str
    status: str
    weight: float
    configured_weight: float
    sub_score: float | None = None
    value: float | None = None
    unit: str | None = None
    level: str | None = None
    coverage: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "name": self.name, "status": self.status, "value": self.value, "unit": self.unit,
            "level": self.level,
            "sub_score": None if self.sub_score is None else round(self.sub_score, 1),
            "weight": round(self.weight, 4), "configured_weight": self.configured_weight,
            "coverage": None if self.coverage is None else round(self.coverage, 4),
        }


@dataclass(frozen=True, slots=True)
class DistrictScore:
    """A district's health score, its level, whether it is trusted, and its components."""

    district: str
    score: float | None
    level: str | None
    confident: bool
    components: tuple[Component, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "district": self.district,
            "score": None if self.score is None else round(self.score, 1),
            "level": self.level, "confident": self.confident,
            "components": [c.as_dict() for c in self.components],
        }


def _weights(weights: Mapping[str, float]) -> dict[str, float]:
    checked = {name: finite(f"weights.{name}", w) for name, w in weights.items()}
    for name, weight in checked.items():
        if weight < 0:
            key = f"weights.{name}"
            raise InvalidIndicatorInput(key, weight, "must not be negative")
    return checked


def _by_name(indicators: Iterable[Indicator]) -> dict[str, Indicator]:
    found: dict[str, Indicator] = {}
    for indicator in indicators:
        if indicator.name in found:
            raise InvalidIndicatorInput("indicators", indicator.name, "appears twice")
        found[indicator.name] = indicator
    return found


def _component(
    name: str, weight: float, indicator: Indicator | None, cover: Coverage | None
) -> Component:
    if cover is not None and not cover.confident:
        status = "low_coverage"
    elif indicator is None:
        status = "missing"
    elif weight == 0:
        status = "unweighted"
    else:
        status = "used"
    facts: dict[str, Any] = {"coverage": None if cover is None else cover.share}
    if indicator is not None:
        facts.update(sub_score=indicator.score, value=indicator.value, unit=indicator.unit,
                     level=indicator.level)
    return Component(name, status, 0.0, weight, **facts)


def district_score(
    district: str,
    indicators: Iterable[Indicator],
    weights: Mapping[str, float],
    coverage: Mapping[str, Coverage] | None = None,
) -> DistrictScore:
    """The district's score from its indicators (one per name), weights and coverage by name."""
    configured = _weights(weights)
    found = _by_name(indicators)
    covers = dict(coverage or {})
    names = list(configured) + [name for name in found if name not in configured]
    parts = [_component(n, configured.get(n, 0.0), found.get(n), covers.get(n)) for n in names]
    used = [c for c in parts if c.status == "used"]
    total = math.fsum(c.configured_weight for c in used)
    parts = [
        replace(c, weight=c.configured_weight / total) if c.status == "used" else c
        for c in parts
    ]
    score = None
    if used:
        mean = math.fsum(c.weight * (c.sub_score or 0.0) for c in parts if c.status == "used")
        score = min(100.0, max(0.0, mean))
    confident = bool(used) and not any(c.status == "low_coverage" for c in parts)
    level = None if score is None else score_level(score)
    return DistrictScore(district, score, level, confident, tuple(parts))


@dataclass(frozen=True, slots=True)
class DistrictShare:
    """One district's part in the city score."""

    district: str
    score: float | None
    level: str | None
    confident: bool
    weight: float
    population: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "district": self.district,
            "score": None if self.score is None else round(self.score, 1),
            "level": self.level, "confident": self.confident, "weight": round(self.weight, 4),
            "population": self.population,
        }


@dataclass(frozen=True, slots=True)
class CityScore:
    """The city's score, how districts were weighted ("equal" or "population"), and its parts."""

    score: float | None
    level: str | None
    confident: bool
    weighting: str
    components: tuple[DistrictShare, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "score": None if self.score is None else round(self.score, 1),
            "level": self.level, "confident": self.confident, "weighting": self.weighting,
            "components": [c.as_dict() for c in self.components],
        }


def _district_weights(
    items: list[DistrictScore], population: Mapping[str, float] | None
) -> dict[str, float]:
    raw: dict[str, float] = {}
    for item in items:
        if item.district in raw:
            raise InvalidIndicatorInput("districts", item.district, "appears twice")
        if population is None:
            raw[item.district] = 1.0
            continue
        if item.district not in population:
            raise InvalidIndicatorInput("population", item.district, "has no population")
        key = f"population.{item.district}"
        people = finite(key, population[item.district])
        if people < 0:
            raise InvalidIndicatorInput(key, people, "must be >= 0")
        raw[item.district] = people
    return raw


def city_score(
    districts: Iterable[DistrictScore], population: Mapping[str, float] | None = None
) -> CityScore:
    """The city's score: equal-weighted over scored districts, or by ``population`` if given."""
    items = list(districts)
    raw = _district_weights(items, population)
    total = math.fsum(raw[i.district] for i in items if i.score is not None)
    shares = tuple(
        DistrictShare(
            i.district, i.score, i.level, i.confident,
            raw[i.district] / total if i.score is not None and total > 0 else 0.0,
            None if population is None else raw[i.district],
        )
        for i in items
    )
    scored = [s for s in shares if s.score is not None and s.weight > 0]
    score = math.fsum(s.weight * (s.score or 0.0) for s in scored) if scored else None
    score = None if score is None else min(100.0, max(0.0, score))
    confident = bool(scored) and all(s.confident for s in shares)
    weighting = "equal" if population is None else "population"
    level = None if score is None else score_level(score)
    return CityScore(score, level, confident, weighting, shares)
