"""The whole city's vital signs, from its districts' computed windows (district ``"city"``).

    city = CityVitals(params)
    state = city.new_state()
    records = city.on_district(state, item)     # a DistrictWindow or DistrictProgress
    records = city.close_all(state)              # the input ended

A city window is computed once every district the city has heard from is done with it. Per
indicator:

- ``aqi``, ``aqi_instant``: the index of the mean over districts of each averaging period's
  concentration (how a city's AQI is reported from its stations), districts' own in ``details``;
- ``power``: the districts' total load over their total capacity;
- ``device_health``: usable over expected devices, all districts together;
- ``score``: :func:`~models.indicators.score.city_score` of the district scores (equal weights, or
  by population as configured);
- ``traffic``, ``noise``, ``water_level``, ``water_pressure``, ``crowd``: the worst district (the
  lowest sub-score), named in ``details.worst_district``, every district in ``components``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.indicators import district_load
from models.indicators.score import city_score
from models.vitals.air import AirResult
from models.vitals.compute import VitalsParams, air_record
from models.vitals.district import DistrictProgress, DistrictWindow
from models.vitals.records import CITY, IndicatorRecord

__all__ = ["CityState", "CityVitals"]

_WORST_OF = ("traffic", "noise", "water_level", "water_pressure", "crowd")


@dataclass
class CityState:
    """The picklable state of the city step."""

    pending: dict[float, dict[str, DistrictWindow]] = field(default_factory=dict)
    through: dict[str, float] = field(default_factory=dict)
    done: float = -math.inf
    skipped: int = 0


class CityVitals:
    """The city-wide computation; state lives in CityState."""

    def __init__(self, params: VitalsParams) -> None:
        self.params = params
        first = next(iter(params.districts.values()))
        self._power = first.power

    def new_state(self) -> CityState:
        """Fresh state."""
        return CityState()

    def on_district(
        self, state: CityState, item: DistrictWindow | DistrictProgress
    ) -> list[IndicatorRecord]:
        """Take one district fact; the city records of every window now complete."""
        if isinstance(item, DistrictProgress):
            state.through[item.district] = max(state.through.get(item.district, -math.inf),
                                               item.through)
        elif item.start < state.done:
            state.skipped += 1
        else:
            state.through.setdefault(item.district, -math.inf)
            state.pending.setdefault(item.start, {})[item.district] = item
        progress = min(state.through.values(), default=-math.inf)
        return self._compute_until(state, progress)

    def close_all(self, state: CityState) -> list[IndicatorRecord]:
        """Compute every pending window (the input ended)."""
        return self._compute_until(state, math.inf)

    def _compute_until(self, state: CityState, progress: float) -> list[IndicatorRecord]:
        records: list[IndicatorRecord] = []
        length = self.params.length
        for start in sorted(s for s in state.pending if s + length <= progress):
            records += self.compute(start, start + length, list(state.pending.pop(start).values()))
            state.done = start + length
        return records

    def compute(
        self, start: float, end: float, districts: Sequence[DistrictWindow]
    ) -> list[IndicatorRecord]:
        """The city records of one window from the districts' windows."""
        by_name: dict[str, list[IndicatorRecord]] = {}
        for item in districts:
            for record in item.records:
                by_name.setdefault(record.indicator, []).append(record)
        records = self._air(start, end, districts, by_name)
        for name in _WORST_OF:
            if name in by_name:
                records.append(_worst(name, start, end, by_name[name]))
        for make in (self._power_record, _health):
            made = make(start, end, by_name)
            if made is not None:
                records.append(made)
        score = self._score(start, end, districts, by_name)
        if score is not None:
            records.append(score)
        return records

    def _air(
        self, start: float, end: float, districts: Sequence[DistrictWindow],
        by_name: dict[str, list[IndicatorRecord]],
    ) -> list[IndicatorRecord]:
        out = []
        for name, averaging, field_name in (("aqi", "standard", "air"),
                                            ("aqi_instant", "instant", "air_instant")):
            parts = [d for d in districts if getattr(d, field_name)]
            if not parts or name not in by_name:
                continue
            means = _means([getattr(d, field_name) for d in parts])
            filled: dict[str, float] = {}
            if averaging == "standard":
                for d in parts:
                    for n, share in d.air_filled.items():
                        filled[n] = min(share, filled.get(n, share))
            result = self.params.air.from_concentrations(averaging, means, filled)
            if result is None:
                continue
            own = by_name[name]
            covers = [r.coverage for r in own if r.coverage is not None]
            record = _air_record(start, end, result, own, min(covers) if covers else None)
            out.append(record)
        return out

    def _power_record(
        self, start: float, end: float, by_name: dict[str, list[IndicatorRecord]]
    ) -> IndicatorRecord | None:
        own = by_name.get("power")
        if not own:
            return None
        loads = {r.district: float(r.details.get("load_mw") or 0.0) for r in own}
        capacities = {r.district: float(r.details.get("capacity_mw") or 1.0) for r in own}
        indicator = district_load(loads, capacities, self._power)
        details = {
            "load_mw": indicator.input("load_mw"), "capacity_mw": indicator.input("capacity_mw"),
            "worst_district": indicator.input("worst_substation"),
            "worst_ratio": indicator.input("worst_ratio"),
        }
        return IndicatorRecord(
            CITY, "power", indicator.value, indicator.unit, indicator.level, indicator.score,
            start, end, sum(r.inputs for r in own), _min_coverage(own),
            all(r.confident for r in own), _per_district(own), details,
        )

    def _score(
        self, start: float, end: float, districts: Sequence[DistrictWindow],
        by_name: dict[str, list[IndicatorRecord]],
    ) -> IndicatorRecord | None:
        scores = [d.score for d in districts if d.score is not None]
        population = self.params.population
        if population is not None:
            population = {d.district: population.get(d.district, 0.0) for d in scores}
        result = city_score(scores, population)
        if result.score is None:
            return None
        inputs = sum(r.inputs for r in by_name.get("score", ()))
        return IndicatorRecord(
            CITY, "score", round(result.score, 2), "score", result.level or "", result.score,
            start, end, inputs, None, result.confident,
            tuple(c.as_dict() for c in result.components), {"weighting": result.weighting},
        )


def _air_record(
    start: float, end: float, result: AirResult, own: list[IndicatorRecord],
    cover: float | None,
) -> IndicatorRecord:
    return air_record(
        CITY, result, start, end, sum(r.inputs for r in own), cover,
        all(r.confident for r in own), districts={r.district: r.value for r in own},
    )


def _worst(name: str, start: float, end: float, own: list[IndicatorRecord]) -> IndicatorRecord:
    worst = min(own, key=lambda r: (r.score if r.score is not None else 100.0, -r.value))
    return IndicatorRecord(
        CITY, name, worst.value, worst.unit, worst.level, worst.score, start, end,
        sum(r.inputs for r in own), _min_coverage(own), all(r.confident for r in own),
        _per_district(own), {"method": "worst_district", "worst_district": worst.district},
    )


def _health(
    start: float, end: float, by_name: dict[str, list[IndicatorRecord]]
) -> IndicatorRecord | None:
    own = by_name.get("device_health")
    if not own:
        return None
    expected = sum(int(r.details["expected"]) for r in own)
    usable = sum(int(r.details["usable"]) for r in own)
    missing = sum(int(r.details.get("missing", 0)) for r in own)
    if not expected:
        return None
    share = usable / expected
    weak = sorted(r.district for r in own if not r.confident)
    level = "poor" if any(r.level == "poor" for r in own) else "degraded" if weak else "ok"
    return IndicatorRecord(
        CITY, "device_health", share, "share", level, 100.0 * share, start, end,
        sum(r.inputs for r in own), share, not weak, _per_district(own),
        {"expected": expected, "usable": usable, "missing": missing,
         "low_coverage_districts": weak},
    )


def _means(values: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each NAME over the districts that have it."""
    names = {name for value in values for name in value}
    return {
        name: math.fsum(v[name] for v in values if name in v) / sum(name in v for v in values)
        for name in names
    }


def _min_coverage(own: list[IndicatorRecord]) -> float | None:
    covers = [r.coverage for r in own if r.coverage is not None]
    return min(covers) if covers else None


def _per_district(own: list[IndicatorRecord]) -> tuple[dict[str, object], ...]:
    return tuple(
        {"district": r.district, "value": r.value, "level": r.level,
         "score": None if r.score is None else round(r.score, 1), "confident": r.confident}
        for r in sorted(own, key=lambda r: r.district)
    )
