"""Cross-references of config.yaml's ``indicators:`` section to the rest of the configuration.

    problems = reference_problems(settings.indicators, kinds=settings.kinds,
                                  district_ids=settings.district_ids(), window_s=10.0)
    # [("indicators.rules[0].districts", "'docks' is not a district id"), ...]

``settings.config.Settings.reference_problems`` calls it, so a wrong reference stops the program
with the dotted key in the message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from settings.indicators import AQI_UNITS, IndicatorSettings

__all__ = ["reference_problems"]

_SOURCE_KEYS = {
    "traffic": "traffic.kind", "noise": "noise.kind", "water_level": "water.kind",
    "water_pressure": "water.pressure_kind", "power": "power.kind", "crowd": "crowd.kind",
}


def reference_problems(
    indicators: IndicatorSettings,
    *,
    kinds: Mapping[str, Any],
    district_ids: Sequence[str],
    window_s: float,
) -> list[tuple[str, str]]:
    """(dotted key, reason) for every reference of ``indicators`` that does not resolve.

    ``kinds`` maps kind ids to objects with a ``unit``. A source kind left at its default
    that the city does not have just turns its indicator off; one written in config.yaml must
    exist.
    """
    problems: list[tuple[str, str]] = []
    where = "indicators"
    if "city" in district_ids:
        problems.append(("districts", "'city' is reserved for the whole-city indicators"))
    for name, kind in indicators.source_kinds().items():
        section = getattr(indicators, _SOURCE_KEYS[name].split(".")[0])
        field = _SOURCE_KEYS[name].split(".")[1]
        if kind is not None and kind not in kinds and field in section.model_fields_set:
            problems.append((f"{where}.{_SOURCE_KEYS[name]}", f"{kind!r} is not a kind id"))
    aqi = indicators.aqi
    for pollutant, kind in aqi.pollutant_kinds(kinds).items():
        key = f"{where}.aqi.pollutants.{pollutant}"
        if kind not in kinds:
            problems.append((key, f"{kind!r} is not a kind id"))
        elif kinds[kind].unit not in AQI_UNITS:
            unit = kinds[kind].unit
            reason = f"kind {kind!r} has unit {unit!r}; the AQI needs one of {list(AQI_UNITS)}"
            problems.append((key, reason))
        elif pollutant in ("pm25", "pm10") and kinds[kind].unit in ("ppb", "ppm"):
            reason = f"particulate matter cannot be in {kinds[kind].unit!r}"
            problems.append((key, reason))
    leq = indicators.noise.leq_window_s
    if leq and not math.isclose(round(leq / window_s) * window_s, leq):
        reason = f"{leq} s is not a whole number of flow windows ({window_s} s)"
        problems.append((f"{where}.noise.leq_window_s", reason))
    for district_id, entry in indicators.districts.items():
        if district_id not in district_ids:
            problems.append((f"{where}.districts.{district_id}", "is not a district id"))
        elif indicators.score.city_weighting == "population" and entry.population is None:
            reason = "city_weighting 'population' needs every district's population"
            problems.append((f"{where}.districts.{district_id}.population", reason))
    if indicators.score.city_weighting == "population":
        for district_id in district_ids:
            if district_id not in indicators.districts:
                reason = "city_weighting 'population' needs every district's population"
                problems.append((f"{where}.districts.{district_id}", reason))
    for kind in indicators.device_health.kinds:
        if kind not in kinds:
            problems.append((f"{where}.device_health.kinds.{kind}", "is not a kind id"))
    seen: set[str] = set()
    for number, rule in enumerate(indicators.rules):
        key = f"{where}.rules[{number}]"
        if rule.id in seen:
            problems.append((f"{key}.id", f"{rule.id!r} is repeated"))
        seen.add(rule.id)
        for district_id in rule.districts:
            if district_id not in district_ids:
                problems.append((f"{key}.districts", f"{district_id!r} is not a district id"))
    return problems
