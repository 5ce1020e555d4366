"""The domain's parameter objects, built from validated settings.

The models take plain frozen parameters and never see the settings tree; this is the one place
that maps one onto the other::

    params = vitals_params(settings)          # models.vitals.compute.VitalsParams
    air = air_params(settings)                # models.vitals.air.AirParams
    parser = reading_parser(settings)         # models.readings.ReadingParser (bridge and flow)
    packs = pack_parser(settings)             # models.senml.PackParser (gateways' SenML packs)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from models.indicators import (
    CrowdParams,
    HealthParams,
    NoiseLimit,
    NoiseParams,
    PowerParams,
    PressureBand,
    TrafficParams,
    WaterLevelParams,
)
from models.readings import ReadingParser
from models.senml import PackParser
from models.vitals.air import AirParams
from models.vitals.compute import DistrictParams, VitalsParams
from settings.config import Settings

if TYPE_CHECKING:
    from models.placement import Placed, Placement

__all__ = ["air_params", "pack_parser", "reading_parser", "vitals_params"]


def air_params(settings: Settings) -> AirParams:
    """The parameters of ``settings.indicators.aqi``."""
    aqi = settings.indicators.aqi
    kinds = {
        pollutant: (kind, settings.kinds[kind].unit)
        for pollutant, kind in aqi.pollutant_kinds(settings.kinds).items()
    }
    periods: dict[str, float] = {name: s for name, s in aqi.periods_s.items()}
    return AirParams(aqi.standard, kinds, periods, aqi.bucket_s, aqi.min_filled)


def reading_parser(
    settings: Settings, *, placement: Placement | None = None,
    on_mismatch: Callable[[str, Placed], None] | None = None,
) -> ReadingParser:
    """The reading parser of ``settings``: its kinds and districts, MQTT topic prefix, payload
    limit and how far ahead of the clock a timestamp may be (the bridge and the flow use it);
    with a ``placement`` (the flow's) it places readings by position."""
    return ReadingParser(
        settings.kinds,
        settings.district_ids(),
        topic_prefix=settings.mqtt.topic_prefix,
        max_future_s=settings.flow.max_future_s,
        max_payload_bytes=settings.mqtt.max_payload_bytes,
        placement=placement,
        on_mismatch=on_mismatch,
    )


def pack_parser(settings: Settings) -> PackParser:
    """The SenML pack parser of ``settings``: each record checked as :func:`reading_parser`
    checks a reading, packs up to ``mqtt.max_pack_bytes``."""
    return PackParser(reading_parser(settings), max_pack_bytes=settings.mqtt.max_pack_bytes)


def vitals_params(
    settings: Settings, registered: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None
) -> VitalsParams:
    """The parameters of ``settings`` (validated already, so this cannot fail); ``registered``
    the device registry's devices by district and kind (:meth:`DeviceRegistry.expected`)."""
    ind = settings.indicators
    sources = {n: k for n, k in ind.source_kinds().items() if k and k in settings.kinds}
    noise_kind = sources.get("noise")
    population = None
    if ind.score.city_weighting == "population":
        population = {d: ind.district(d).population or 0.0 for d in settings.district_ids()}
    return VitalsParams(
        length=settings.flow.window_s,
        allowance=settings.flow.late_allowance_s,
        max_lead=settings.flow.max_clock_lead_s,
        timezone=ZoneInfo(settings.city.timezone),
        air=air_params(settings),
        sources=sources,
        intervals={k: kind.interval_s for k, kind in settings.kinds.items()},
        health={k: HealthParams(**ind.device_health.for_kind(k)) for k in settings.kinds},
        min_coverage=ind.device_health.min_coverage,
        weights=dict(ind.score.weights),
        population=population,
        leq_window_s=ind.noise.leq_window_s,
        rise_window_s=ind.water.rise_window_s,
        rise_min_span_s=ind.water.rise_min_span_s,
        decibel_kinds=frozenset({noise_kind} if noise_kind else ()),
        districts={d: _district(settings, d) for d in settings.district_ids()},
        registered=dict(registered or {}),
    )


def _district(settings: Settings, district_id: str) -> DistrictParams:
    ind = settings.indicators
    own = ind.district(district_id)
    traffic = ind.traffic
    noise = ind.noise
    limits: dict[str, NoiseLimit] = {
        zone: NoiseLimit(day, night) for zone, (day, night) in noise.limits.items()
    }
    lines = own.water or ind.water.lines
    band = own.pressure or ind.water.pressure
    return DistrictParams(
        traffic=TrafficParams(
            own.free_flow_kmh or traffic.free_flow_kmh, traffic.tti_bounds, traffic.worst_index,
            traffic.max_index, traffic.slow_fraction, traffic.share_bounds,
        ),
        traffic_method=traffic.method,
        noise=NoiseParams.for_zone(
            own.noise_zone or noise.zone, limits, day_start_hour=noise.day_start_hour,
            night_start_hour=noise.night_start_hour, excess_bounds=noise.excess_bounds_db,
            best_margin_db=noise.best_margin_db, worst_excess_db=noise.worst_excess_db,
        ),
        water=WaterLevelParams(
            lines.normal_m, lines.warning_m, lines.danger_m, ind.water.rise_alert_m_per_h
        ),
        pressure=PressureBand(
            band.critical_low_bar, band.low_bar, band.high_bar, band.critical_high_bar
        ),
        power=PowerParams(ind.power.bounds, ind.power.worst_ratio),
        capacity_mw=dict(ind.power.capacities_mw),
        default_capacity_mw=ind.power.default_capacity_mw,
        crowd=CrowdParams(own.crowd_safe_density or ind.crowd.safe_density, ind.crowd.bounds,
                          ind.crowd.worst_ratio),
    )
