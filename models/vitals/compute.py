"""One window of one district in, indicator records out: the formulas of models.indicators applied.

:class:`KindWindow` is what a district's closed window of one kind contributes (statistics,
per-device means, the kind's device coverage at the window's end); :class:`DistrictParams`
holds one district's parameters from config.yaml. The functions here are pure::

    params = vitals_params(settings)  # settings.params.district("old-town")
    record = traffic_record("old-town", kind_window, params)   # IndicatorRecord or None

How each indicator is computed from the window (see docs/vital-signs.md):

- traffic: the travel-time index of the window's mean speed against the district's free-flow
  speed, or (``method: segment_share``) the share of devices (road segments) whose mean speed is
  below ``slow_fraction`` of free flow;
- noise: the Leq (energy average) over the last ``leq_window_s`` (or the window), against the
  day or night limit of the district's GB 3096-2008 zone at the local hour of the window's middle;
- water_level: the highest station (device) mean against the district's lines, with the rate of
  rise fitted over the last ``rise_window_s`` (0 until the data span ``rise_min_span_s``);
  water_pressure: the lowest/highest pipe pressure
  against the band;
- power: the district's total load over the total capacity of its reporting substations;
- crowd: the busiest area (device) mean density against the district's safe density.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from models.indicators import (
    Coverage,
    CrowdParams,
    HealthParams,
    Indicator,
    NoiseParams,
    PowerParams,
    PressureBand,
    TrafficParams,
    WaterLevelParams,
    crowd_indicator,
    district_load,
    local_hour,
    noise_indicator,
    pressure_indicator,
    segment_share,
    travel_time_index,
    water_level_indicator,
)
from models.indicators.score import district_score
from models.vitals.air import AirParams, AirResult, aqi_scale
from models.vitals.records import IndicatorRecord

__all__ = [
    "DistrictParams",
    "KindWindow",
    "VitalsParams",
    "air_record",
    "crowd_record",
    "health_record",
    "noise_record",
    "power_record",
    "pressure_record",
    "score_record",
    "traffic_record",
    "water_record",
]

HEALTH_LEVELS = ("ok", "degraded", "poor")
"""device_health levels: every kind confident; some kind below min_coverage; the district is."""


@dataclass(frozen=True, slots=True)
class KindWindow:
    """A district's closed window of one kind: what the indicators need from it."""

    kind: str
    start: float
    end: float
    count: int
    mean: float
    lo: float
    hi: float
    leq: float | None
    device_means: Mapping[str, float]
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class DistrictParams:
    """One district's indicator parameters (config defaults merged with its own entry)."""

    traffic: TrafficParams
    traffic_method: str
    noise: NoiseParams
    water: WaterLevelParams
    pressure: PressureBand
    power: PowerParams
    capacity_mw: Mapping[str, float]
    default_capacity_mw: float
    crowd: CrowdParams


@dataclass(frozen=True, slots=True)
class VitalsParams:
    """Everything the vital signs need from config.yaml, built once when the flow is built."""

    length: float
    allowance: float
    timezone: ZoneInfo
    air: AirParams
    sources: Mapping[str, str]  # indicator -> kind id, for the indicators turned on
    intervals: Mapping[str, float]
    health: Mapping[str, HealthParams]
    min_coverage: float
    weights: Mapping[str, float]
    population: Mapping[str, float] | None
    leq_window_s: float
    rise_window_s: float
    rise_min_span_s: float
    decibel_kinds: frozenset[str]
    districts: Mapping[str, DistrictParams] = field(default_factory=dict)
    max_lead: float = math.inf  # how far ahead of the clock event time may move a watermark
    registered: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    """The device registry's active devices by district and kind: those that never report
    are ``missing`` in device health (and count against coverage)."""

    def district(self, district_id: str) -> DistrictParams:
        """The parameters of one district."""
        return self.districts[district_id]


def _record(
    district: str, indicator: Indicator, window: KindWindow, **details: Any
) -> IndicatorRecord:
    cover = window.coverage
    return IndicatorRecord(
        district, indicator.name, indicator.value, indicator.unit, indicator.level,
        indicator.score, window.start, window.end, window.count, cover.share, cover.confident,
        details={**dict(indicator.inputs), **details},
    )


def traffic_record(district: str, window: KindWindow, params: DistrictParams) -> IndicatorRecord:
    """Congestion: travel-time index of the mean speed, or the share of slow segments."""
    if params.traffic_method == "segment_share":
        indicator = segment_share(list(window.device_means.values()), params.traffic)
    else:
        indicator = travel_time_index(window.mean, params.traffic)
    return _record(district, indicator, window)


def noise_record(
    district: str, window: KindWindow, leq_db: float, leq_window_s: float,
    params: DistrictParams, timezone: ZoneInfo,
) -> IndicatorRecord:
    """Leq against the zone's limit at the local hour of the window's middle."""
    hour = local_hour((window.start + window.end) / 2, timezone)
    indicator = noise_indicator(leq_db, hour, params.noise)
    window_leq = None if window.leq is None else round(window.leq, 3)
    return _record(district, indicator, window, leq_window_s=leq_window_s, window_leq_db=window_leq)


def water_record(
    district: str, window: KindWindow, level_m: float, rise_m_per_h: float,
    params: DistrictParams,
) -> IndicatorRecord:
    """The highest station's level against the lines, with the fitted rate of rise."""
    station = max(window.device_means, key=lambda d: window.device_means[d])
    indicator = water_level_indicator(level_m, rise_m_per_h, params.water)
    return _record(district, indicator, window, station=station)


def pressure_record(district: str, window: KindWindow, params: DistrictParams) -> IndicatorRecord:
    """The pipe pressure furthest from the middle of the band."""
    band = params.pressure
    middle = (band.low_bar + band.high_bar) / 2
    worst = max(window.device_means.values(), key=lambda p: abs(p - middle))
    return _record(district, pressure_indicator(worst, band), window)


def power_record(district: str, window: KindWindow, params: DistrictParams) -> IndicatorRecord:
    """Total load over total capacity of the substations that reported in the window."""
    loads = {d: max(0.0, m) for d, m in window.device_means.items()}
    capacities = {d: params.capacity_mw.get(d, params.default_capacity_mw) for d in loads}
    return _record(district, district_load(loads, capacities, params.power), window)


def crowd_record(district: str, window: KindWindow, params: DistrictParams) -> IndicatorRecord:
    """The busiest area's density against the district's safe density."""
    area = max(window.device_means, key=lambda d: window.device_means[d])
    density = max(0.0, window.device_means[area])
    return _record(district, crowd_indicator(density, params.crowd), window, area=area)


def air_record(
    district: str, result: AirResult, start: float, end: float, inputs: int,
    coverage: float | None, covered: bool, **extra: Any,
) -> IndicatorRecord:
    """``aqi`` (the standard's averaging periods) or ``aqi_instant`` (this window)."""
    name = "aqi" if result.averaging == "standard" else "aqi_instant"
    details = {
        "standard": result.standard, "averaging": result.averaging,
        "level_number": result.level, "category": result.category,
        "primary": list(result.primary), "beyond_table": list(result.beyond), **extra,
    }
    score = aqi_scale(result.standard).score(result.aqi)
    return IndicatorRecord(
        district, name, result.aqi, "AQI", result.category, score, start, end, inputs,
        coverage, covered and result.confident, result.components(), details,
    )


def health_record(
    district: str, start: float, end: float, coverages: Mapping[str, Coverage],
    min_coverage: float,
) -> IndicatorRecord | None:
    """The share of the district's devices (all kinds) that report usable data, per kind."""
    expected = sum(c.expected for c in coverages.values())
    if not expected:
        return None
    usable = sum(c.usable for c in coverages.values())
    share = usable / expected
    weak = sorted(kind for kind, c in coverages.items() if not c.confident)
    level = "poor" if share < min_coverage else "degraded" if weak else "ok"
    components = tuple({"kind": kind, **coverages[kind].as_dict()} for kind in sorted(coverages))
    reporting = sum(c.reporting for c in coverages.values())
    missing = sum(len(c.missing) for c in coverages.values())
    return IndicatorRecord(
        district, "device_health", share, "share", level, 100.0 * share, start, end, reporting,
        share, not weak, components,
        {"expected": expected, "usable": usable, "missing": missing, "low_coverage_kinds": weak},
    )


def score_record(
    district: str, start: float, end: float, records: Sequence[IndicatorRecord],
    weights: Mapping[str, float], coverages: Mapping[str, Coverage],
) -> tuple[IndicatorRecord | None, Any]:
    """The district's health score over its indicators; (record or None, DistrictScore)."""
    indicators = [
        Indicator(r.indicator, float(r.value), r.unit, r.level, r.score)
        for r in records if r.indicator in weights and r.score is not None
    ]
    result = district_score(district, indicators, weights, coverages)
    if result.score is None:
        return None, result
    inputs = sum(r.inputs for r in records if r.indicator in weights)
    components = tuple(c.as_dict() for c in result.components)
    record = IndicatorRecord(
        district, "score", round(result.score, 2), "score", result.level or "", result.score,
        start, end, inputs, None, result.confident, components,
    )
    return record, result


def rise_rate(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (epoch s, level m) points in m/h; 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    t0 = points[0][0]
    mean_t = math.fsum(t - t0 for t, _ in points) / n
    mean_v = math.fsum(v for _, v in points) / n
    var = math.fsum((t - t0 - mean_t) ** 2 for t, _ in points)
    if var <= 0:
        return 0.0
    cov = math.fsum((t - t0 - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600.0
