"""The ``indicators:`` section of config.yaml: which vital signs the flow computes, and how.

Frozen, validated pydantic models (no I/O), part of :class:`settings.config.Settings` as
``settings.indicators``. Every block is optional and defaults to the values below::

    indicators:
      aqi: {standard: hj633, periods_s: {1h: 3600, 8h: 28800, 24h: 86400}, bucket_s: 60}
      traffic: {kind: traffic_speed, method: tti, free_flow_kmh: 50}
      noise: {kind: noise, zone: "2", leq_window_s: 600}
      water: {kind: water_level, lines: {normal_m: 1.6, warning_m: 3.5, danger_m: 4.5}}
      power: {kind: power_load, default_capacity_mw: 100}
      crowd: {kind: crowd_density, safe_density: 2.0}
      device_health: {silent_after_intervals: 3, stuck_readings: 30, min_coverage: 0.6}
      score: {weights: {aqi: 0.25, traffic: 0.2, ...}, city_weighting: equal}
      districts: {old-town: {noise_zone: "2", free_flow_kmh: 45, population: 42000}}
      rules: [{id: aqi-high, indicator: aqi, direction: above, warning: 151, critical: 201,
               for_s: 900, hysteresis: 10}, {id: noise, indicator: noise, stat: score, ...}]

Checks that need the rest of the configuration (kind and district ids, units) are in
:func:`settings.indicator_checks.reference_problems`, which ``Settings.reference_problems`` calls
so that the error names the key (``indicators.rules[0].indicator: ...``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "check_severity_order",
    "AQI_UNITS",
    "INDICATORS",
    "INDICATOR_NAMES",
    "POLLUTANTS",
    "SCORED",
    "AqiSettings",
    "CrowdIndicator",
    "DeviceHealthSettings",
    "DistrictIndicators",
    "IndicatorRuleSettings",
    "IndicatorSettings",
    "NoiseIndicator",
    "PowerIndicator",
    "PressureBandSettings",
    "ScoreSettings",
    "StuckRule",
    "TrafficIndicator",
    "WaterIndicator",
    "WaterLines",
]

INDICATORS = (
    "aqi", "aqi_instant", "traffic", "noise", "water_level", "water_pressure", "power", "crowd",
    "device_health", "score",
)
"""Every indicator the flow publishes, by the name records, rules and weights use."""

INDICATOR_NAMES = {
    "aqi": "Air quality index", "aqi_instant": "Air quality index (this window)",
    "traffic": "Traffic", "noise": "Noise", "water_level": "Water level",
    "water_pressure": "Water pressure", "power": "Power grid load", "crowd": "Crowding",
    "device_health": "Sensor coverage", "score": "Health score",
}
"""How people read each indicator's name (incident titles and the like)."""

SCORED = ("aqi", "traffic", "noise", "water_level", "water_pressure", "power", "crowd")
"""The indicators a district's health score may weigh."""

POLLUTANTS = ("pm25", "pm10", "no2", "o3", "co", "so2")
"""The pollutants of the air quality index."""

AQI_UNITS = ("ug/m3", "mg/m3", "ppb", "ppm")
"""Units a pollutant kind may have: the flow converts them to each standard's own unit."""

ZoneClass = Literal["0", "1", "2", "3", "4a", "4b"]
Bounds3 = tuple[float, float, float]
_ID = r"^[a-z0-9][a-z0-9_-]*$"


def check_severity_order(direction: str, warning: float, critical: float) -> None:
    """Raise ValueError unless ``critical`` lies beyond ``warning`` in ``direction``."""
    worse = critical >= warning if direction == "above" else critical <= warning
    if not worse:
        msg = (
            f"critical ({critical}) must be beyond warning ({warning}) "
            f"for direction {direction!r}"
        )
        raise ValueError(msg)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _increasing(values: Sequence[float], what: str = "values") -> None:
    if not all(math.isfinite(v) for v in values) or any(
        a >= b for a, b in itertools.pairwise(values)
    ):
        msg = f"{what} must be finite and strictly increasing, got {list(values)}"
        raise ValueError(msg)


AqiPeriod = Literal["1h", "8h", "24h"]


def _default_periods() -> dict[AqiPeriod, float]:
    return {"1h": 3600.0, "8h": 28800.0, "24h": 86400.0}


class AqiSettings(_Frozen):
    """The air quality index: standard, pollutant kinds, averaging periods, rolling buckets."""

    standard: Literal["hj633", "epa"] = "hj633"
    pollutants: dict[Literal["pm25", "pm10", "no2", "o3", "co", "so2"], str] | None = None
    periods_s: dict[AqiPeriod, Annotated[float, Field(gt=0)]] = Field(
        default_factory=_default_periods
    )
    bucket_s: Annotated[float, Field(gt=0)] = 60.0
    min_filled: Annotated[float, Field(ge=0, le=1)] = 0.75

    @model_validator(mode="after")
    def _periods(self) -> AqiSettings:
        missing = [p for p in ("1h", "8h", "24h") if p not in self.periods_s]
        if missing:
            msg = f"periods_s needs 1h, 8h and 24h; missing {missing}"
            raise ValueError(msg)
        for name, period in self.periods_s.items():
            count = round(period / self.bucket_s)
            if count < 1 or not math.isclose(count * self.bucket_s, period):
                msg = f"periods_s.{name} ({period} s) is not a whole number of {self.bucket_s} s"
                raise ValueError(msg)
        return self

    def pollutant_kinds(self, kinds: Mapping[str, Any]) -> dict[str, str]:
        """Pollutant -> kind id: as configured, else each pollutant's namesake kind if any."""
        if self.pollutants is not None:
            return {pollutant: kind for pollutant, kind in self.pollutants.items()}
        return {p: p for p in POLLUTANTS if p in kinds}


class TrafficIndicator(_Frozen):
    """Congestion: travel-time index bounds, or the share of slow segments (devices)."""

    kind: str | None = "traffic_speed"
    method: Literal["tti", "segment_share"] = "tti"
    tti_bounds: Bounds3 = (1.25, 1.5, 2.0)
    worst_index: Annotated[float, Field(gt=1)] = 3.0
    max_index: Annotated[float, Field(gt=1)] = 10.0
    slow_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    share_bounds: Bounds3 = (0.1, 0.25, 0.5)
    free_flow_kmh: Annotated[float, Field(gt=0)] = 50.0

    @model_validator(mode="after")
    def _ends(self) -> TrafficIndicator:
        _increasing((1.0, *self.tti_bounds, self.worst_index), "1, tti_bounds, worst_index")
        _increasing((0.0, *self.share_bounds, 1.0), "0, share_bounds, 1")
        if self.max_index < self.worst_index:
            msg = f"max_index ({self.max_index}) must be at least worst_index ({self.worst_index})"
            raise ValueError(msg)
        return self


def _default_limits() -> dict[ZoneClass, tuple[float, float]]:
    """GB 3096-2008: (day, night) dB(A) limits of each zone class."""
    return {
        "0": (50.0, 40.0), "1": (55.0, 45.0), "2": (60.0, 50.0),
        "3": (65.0, 55.0), "4a": (70.0, 55.0), "4b": (70.0, 60.0),
    }


class NoiseIndicator(_Frozen):
    """Leq against GB 3096-2008 limits: zone classes, day/night hours, excess bounds."""

    kind: str | None = "noise"
    leq_window_s: Annotated[float, Field(ge=0)] = 600.0
    day_start_hour: Annotated[int, Field(ge=0, le=23)] = 6
    night_start_hour: Annotated[int, Field(ge=0, le=23)] = 22
    excess_bounds_db: Bounds3 = (0.0, 5.0, 10.0)
    best_margin_db: Annotated[float, Field(gt=0)] = 10.0
    worst_excess_db: Annotated[float, Field(gt=0)] = 20.0
    zone: ZoneClass = "2"
    limits: dict[ZoneClass, tuple[float, float]] = Field(default_factory=_default_limits)

    @model_validator(mode="after")
    def _consistent(self) -> NoiseIndicator:
        if self.day_start_hour == self.night_start_hour:
            msg = "day_start_hour and night_start_hour must differ"
            raise ValueError(msg)
        _increasing(
            (-self.best_margin_db, *self.excess_bounds_db, self.worst_excess_db),
            "-best_margin_db, excess_bounds_db, worst_excess_db",
        )
        return self


class WaterLines(_Frozen):
    """A station's usual level and warning and danger lines, in m."""

    normal_m: float
    warning_m: float
    danger_m: float

    @model_validator(mode="after")
    def _ordered(self) -> WaterLines:
        _increasing((self.normal_m, self.warning_m, self.danger_m), "normal_m, warning_m, danger_m")
        return self


class PressureBandSettings(_Frozen):
    """A pipe network's normal pressure band and critical lines, in bar."""

    critical_low_bar: float
    low_bar: float
    high_bar: float
    critical_high_bar: float

    @model_validator(mode="after")
    def _ordered(self) -> PressureBandSettings:
        _increasing(
            (self.critical_low_bar, self.low_bar, self.high_bar, self.critical_high_bar),
            "critical_low_bar, low_bar, high_bar, critical_high_bar",
        )
        return self


class WaterIndicator(_Frozen):
    """Water level lines with the rate of rise, and the pipe pressure band."""

    kind: str | None = "water_level"
    pressure_kind: str | None = None
    rise_alert_m_per_h: Annotated[float, Field(gt=0)] = 0.3
    rise_window_s: Annotated[float, Field(gt=0)] = 1800.0
    rise_min_span_s: Annotated[float, Field(ge=0)] = 300.0
    lines: WaterLines = WaterLines(normal_m=1.6, warning_m=3.5, danger_m=4.5)
    pressure: PressureBandSettings = PressureBandSettings(
        critical_low_bar=1.5, low_bar=2.0, high_bar=4.0, critical_high_bar=5.0
    )


class PowerIndicator(_Frozen):
    """Load / capacity level bounds and substation (power_load device) capacities in MW."""

    kind: str | None = "power_load"
    bounds: Bounds3 = (0.7, 0.9, 1.0)
    worst_ratio: Annotated[float, Field(gt=0)] = 1.2
    default_capacity_mw: Annotated[float, Field(gt=0)] = 100.0
    capacities_mw: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> PowerIndicator:
        _increasing((0.0, *self.bounds, self.worst_ratio), "0, bounds, worst_ratio")
        return self

    def capacity_of(self, substation: str) -> float:
        """The capacity of ``substation`` (a power_load device id) in MW."""
        return self.capacities_mw.get(substation, self.default_capacity_mw)


class CrowdIndicator(_Frozen):
    """Crowd level bounds as fractions of the safe density, and the default safe density."""

    kind: str | None = "crowd_density"
    bounds: Bounds3 = (0.5, 0.8, 1.0)
    worst_ratio: Annotated[float, Field(gt=0)] = 1.5
    safe_density: Annotated[float, Field(gt=0)] = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> CrowdIndicator:
        _increasing((0.0, *self.bounds, self.worst_ratio), "0, bounds, worst_ratio")
        return self


class StuckRule(_Frozen):
    """A kind's override of the stuck rule; ``stuck_readings: null`` turns the check off.

    Only the keys written in config.yaml override the city-wide rule (``model_fields_set``).
    """

    stuck_readings: Annotated[int, Field(ge=2)] | None = 30
    stuck_min_span_s: Annotated[float, Field(ge=0)] = 120.0
    stuck_tolerance: Annotated[float, Field(ge=0)] = 0.0


class DeviceHealthSettings(_Frozen):
    """Silent, stuck and out-of-range device rules and the coverage threshold."""

    silent_after_intervals: Annotated[float, Field(gt=0)] = 3.0
    stuck_readings: Annotated[int, Field(ge=2)] | None = 30
    stuck_min_span_s: Annotated[float, Field(ge=0)] = 120.0
    stuck_tolerance: Annotated[float, Field(ge=0)] = 0.0
    max_out_of_range_share: Annotated[float, Field(ge=0, le=1)] = 0.1
    out_of_range_window_s: Annotated[float, Field(gt=0)] = 3600.0
    min_coverage: Annotated[float, Field(ge=0, le=1)] = 0.6
    kinds: dict[str, StuckRule] = Field(default_factory=dict)

    def for_kind(self, kind: str) -> dict[str, Any]:
        """Keyword arguments of ``models.indicators.health.HealthParams`` for ``kind``."""
        values = self.model_dump(exclude={"kinds"})
        rule = self.kinds.get(kind)
        if rule is not None:
            values.update(rule.model_dump(include=rule.model_fields_set))
        return values


class ScoreSettings(_Frozen):
    """Sub-index weights of the district score (renormalised over the usable ones)."""

    weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {
            "aqi": 0.25, "traffic": 0.2, "noise": 0.1, "water_level": 0.15, "power": 0.15,
            "crowd": 0.15,
        }
    )
    city_weighting: Literal["equal", "population"] = "equal"

    @field_validator("weights")
    @classmethod
    def _scored(cls, weights: dict[str, float]) -> dict[str, float]:
        for name in weights:
            if name not in SCORED:
                msg = f"weights.{name}: {name!r} is not one of {list(SCORED)}"
                raise ValueError(msg)
        return weights


class DistrictIndicators(_Frozen):
    """One district's indicator parameters; anything absent falls back to the city defaults."""

    noise_zone: ZoneClass | None = None
    free_flow_kmh: Annotated[float, Field(gt=0)] | None = None
    population: Annotated[float, Field(ge=0)] | None = None
    water: WaterLines | None = None
    pressure: PressureBandSettings | None = None
    crowd_safe_density: Annotated[float, Field(gt=0)] | None = None


class IndicatorRuleSettings(_Frozen):
    """A threshold rule on an indicator, with a minimum duration and hysteresis.

    It watches the indicator's ``value`` (or, with ``stat: score``, its 0-100 sub-score); a
    severity's episode starts when the value is at or beyond its level and fires once it has
    lasted ``for_s`` seconds of event time; it ends only when the value is back more than
    ``hysteresis`` on the good side of the level.
    """

    id: Annotated[str, Field(pattern=_ID)]
    indicator: str
    stat: Literal["value", "score"] = "value"
    direction: Literal["above", "below"]
    warning: float
    critical: float
    for_s: Annotated[float, Field(ge=0)] = 0.0
    hysteresis: Annotated[float, Field(ge=0)] = 0.0
    scope: Literal["all", "districts", "city"] = "all"
    districts: list[str] = Field(default_factory=list)

    @field_validator("indicator")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in INDICATORS:
            msg = f"{name!r} is not one of {list(INDICATORS)}"
            raise ValueError(msg)
        return name

    @model_validator(mode="after")
    def _ordered(self) -> IndicatorRuleSettings:
        check_severity_order(self.direction, self.warning, self.critical)
        return self


class IndicatorSettings(_Frozen):
    """Everything the vital signs need; ``districts`` keyed by district id."""

    aqi: AqiSettings = AqiSettings()
    traffic: TrafficIndicator = TrafficIndicator()
    noise: NoiseIndicator = NoiseIndicator()
    water: WaterIndicator = WaterIndicator()
    power: PowerIndicator = PowerIndicator()
    crowd: CrowdIndicator = CrowdIndicator()
    device_health: DeviceHealthSettings = DeviceHealthSettings()
    score: ScoreSettings = ScoreSettings()
    districts: dict[str, DistrictIndicators] = Field(default_factory=dict)
    rules: list[IndicatorRuleSettings] = Field(default_factory=list)

    def district(self, district_id: str) -> DistrictIndicators:
        """The parameters of ``district_id`` (all defaults when it has no entry)."""
        return self.districts.get(district_id) or DistrictIndicators()

    def source_kinds(self) -> dict[str, str | None]:
        """Indicator -> the kind it is computed from, as configured (None: turned off)."""
        return {
            "traffic": self.traffic.kind, "noise": self.noise.kind, "water_level": self.water.kind,
            "water_pressure": self.water.pressure_kind, "power": self.power.kind,
            "crowd": self.crowd.kind,
        }
