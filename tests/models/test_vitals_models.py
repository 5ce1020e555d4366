"""The pure pieces of the vital signs: units, AQI fallbacks, device runs, district progress."""

from __future__ import annotations

import math
import pickle

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.indicators import HealthParams
from models.readings import Reading
from models.vitals.air import UG_PER_PPB, AirParams, convert
from models.vitals.compute import rise_rate
from models.vitals.devices import (
    WindowedTracker,
    decode_rejection,
    encode_rejection,
    rejection_from_payload,
    rejection_from_reading,
)
from models.vitals.district import DistrictProgress, DistrictVitals, DistrictWindow
from models.vitals.records import Rejection
from models.windows import DeviceRun, KeyWindows, preaggregate
from settings.config import Settings
from settings.params import air_params, vitals_params

T = 1_795_669_200.0


def test_gases_convert_between_mass_and_volume_at_25_degrees() -> None:
    assert [round(UG_PER_PPB[g], 3) for g in ("o3", "no2", "so2", "co")] == [
        1.963, 1.882, 2.62, 1.146]
    assert convert("co", 1.0, "ppm", "mg/m3") == pytest.approx(28.01 / 24.45)
    assert convert("o3", 196.3, "ug/m3", "ppm") == pytest.approx(0.09999, abs=1e-4)
    assert convert("no2", 1.0, "mg/m3", "ug/m3") == 1000.0
    with pytest.raises(ValueError, match="pm25"):
        convert("pm25", 10.0, "ug/m3", "ppb")


def air(settings: Settings, standard: str = "hj633") -> AirParams:
    params = air_params(settings)
    periods = {"1h": 10.0, "8h": 20.0, "24h": 40.0}
    return AirParams(standard, params.kinds, periods, 10.0, 0.75)


def test_hj633_takes_24_hour_so2_when_the_1_hour_mean_is_above_its_table(
    base_settings: Settings,
) -> None:
    params = air(base_settings)
    rolling = params.new_rolling()
    for n, value in enumerate([100.0, 100.0, 100.0, 900.0]):
        rolling["so2"].add(T + 10 * n + 5, value)
    result = params.averaged(rolling, at=T + 35)
    assert result is not None
    assert result.concentrations["so2_24h"] == 300.0  # (3 x 100 + 900) / 4
    # 1-hour 900 ug/m3 is above the 800 of its table: the 24-hour value gives the index,
    # 150-475 -> 100-150: 100 + 50 * 150/325 = 123.1, rounded up
    assert (result.iaqi["so2_1h"], result.iaqi["so2_24h"], result.aqi) == (None, 124, 124)


def test_epa_ozone_below_the_1_hour_table_is_indexed_by_8_hours(
    base_settings: Settings,
) -> None:
    params = air(base_settings, "epa")
    result = params.instant({"o3": 0.060 * 1000 * UG_PER_PPB["o3"]})  # 0.060 ppm
    # 0.055-0.070 ppm -> 51-100: 51 + 49 * 0.005/0.015 = 67.3
    assert result is not None and result.iaqi == {"o3_8h": 67}
    rolling = params.new_rolling()
    rolling["o3"].add(T + 5, 0.100 * 1000 * UG_PER_PPB["o3"])
    averaged = params.averaged(rolling, at=T + 5)
    assert averaged is not None and averaged.iaqi["o3_1h"] is None  # below 0.125 ppm


def test_averages_with_too_little_of_their_period_are_not_confident(
    base_settings: Settings,
) -> None:
    params = air(base_settings)
    rolling = params.new_rolling()
    rolling["pm25"].add(T + 5, 40.0)
    result = params.averaged(rolling, at=T + 5)
    assert result is not None and result.filled == {"pm25_24h": 0.25}
    assert not result.confident


def run(value: float, ts: float, *more: tuple[float, float]) -> DeviceRun:
    first = DeviceRun(value, ts)
    for v, t in more:
        first.merge(DeviceRun(v, t))
    return first


def test_a_run_of_equal_windows_makes_a_device_stuck_and_a_wide_window_breaks_it() -> None:
    params = HealthParams(stuck_readings=4, stuck_min_span_s=20.0)
    tracker = WindowedTracker()
    tracker.observe_run(run(5.0, T, (5.0, T + 5)), params)
    tracker.observe_run(run(5.0, T + 10, (5.0, T + 15)), params)
    assert not tracker.is_stuck(params), "4 readings over 15 s: not long enough"
    tracker.observe_run(run(5.0, T + 20), params)
    assert tracker.is_stuck(params) and tracker.run_count == 5
    assert tracker.status("d", T + 21, 10.0, params).state == "stuck"
    tracker.observe_run(run(5.0, T + 30, (6.0, T + 35)), params)
    assert not tracker.is_stuck(params) and tracker.run_count == 0
    tracker.observe_run(run(7.0, T - 100), params, in_order=False)  # a late part
    assert tracker.run_count == 0 and tracker.last_seen == T + 35
    assert tracker.status("d", T + 80, 10.0, params).state == "silent"
    assert pickle.loads(pickle.dumps(tracker)).last_seen == T + 35


def test_a_tolerance_lets_a_noisy_but_flat_signal_count_as_stuck() -> None:
    params = HealthParams(stuck_readings=3, stuck_min_span_s=0.0, stuck_tolerance=0.1)
    tracker = WindowedTracker()
    for n, value in enumerate((5.0, 5.05, 4.98)):
        tracker.observe_run(run(value, T + n), params)
    assert tracker.is_stuck(params)


def test_a_rejection_travels_from_the_bridge_to_the_flow_as_written() -> None:
    payload = orjson.dumps({"device_id": "pm-1", "kind": "pm25", "value": 9999, "unit": "ug/m3",
                            "ts": "2026-11-26T05:00:01.000Z"})
    rejection = rejection_from_payload("harbour", payload)  # the district: the MQTT topic's
    assert rejection == Rejection("harbour", "pm25", "pm-1", T + 1)
    assert decode_rejection(encode_rejection(rejection)) == rejection
    assert rejection_from_payload("harbour", b"{not json") is None
    assert rejection_from_payload("harbour", b'{"device_id": "pm-1", "kind": "pm25"}') is None
    assert decode_rejection(b"{not json") is None
    assert decode_rejection(b"{}") is None
    encoded = orjson.dumps({"device_id": "pm-2", "district": "old-town", "kind": "pm25",
                            "value": 9999.0, "unit": "ug/m3", "ts": T + 2})
    assert rejection_from_reading(encoded) == Rejection("old-town", "pm25", "pm-2", T + 2)


def test_device_runs_and_energy_merge_exactly_across_parts() -> None:
    readings = [Reading(f"n{i % 2}", "harbour", "noise", 50.0 + i, "dBA", T + i)
                for i in range(6)]
    whole = preaggregate(readings, 10.0, {"noise"})[0]
    part, rest = (preaggregate(readings[:3], 10.0, {"noise"})[0],
                  preaggregate(readings[3:], 10.0, {"noise"})[0])
    part.merge(rest)
    assert part.leq == pytest.approx(whole.leq)
    assert whole.leq == pytest.approx(10 * math.log10(sum(10 ** ((50 + i) / 10)
                                                          for i in range(6)) / 6))
    for device in ("n0", "n1"):
        a, b = part.runs[device], whole.runs[device]
        assert (a.count, a.total, a.lo, a.hi, a.first_ts, a.last_ts) == (
            b.count, b.total, b.lo, b.hi, b.first_ts, b.last_ts)
    assert preaggregate(readings, 10.0)[0].leq is None


def test_key_windows_know_the_boundary_they_passed_and_when_they_reach_the_next() -> None:
    windows = KeyWindows(10.0, 1.0)
    assert windows.passed(100.0) == -math.inf and windows.wall_time_of(T) is None
    (part,) = preaggregate([Reading("a", "harbour", "pm25", 1.0, "ug/m3", T + 15)], 10.0)
    windows.merge(part, now=500.0)
    assert windows.passed(500.0) == T + 10  # watermark T + 14
    assert windows.wall_time_of(T + 20) == 506.0
    assert windows.passed(506.0) == T + 20


def test_a_district_whose_devices_all_fall_silent_still_reports_with_the_wall_clock(
    base_settings: Settings,
) -> None:
    vitals = DistrictVitals(vitals_params(base_settings))
    state = vitals.new_state("harbour")
    now = T + 12.0  # the wall clock, just after the readings (never behind them: max_clock_lead_s)
    for t in (T + 1, T + 11):
        for part in preaggregate([Reading(d, "harbour", "pm25", 20.0, "ug/m3", t)
                                  for d in ("a", "b")], 10.0):
            vitals.merge(state, part, now)
    first = vitals.close(state, now + 1.0)
    assert [r.indicator for r in first.records if r.window_start == T][:2] == [
        "aqi", "aqi_instant"]
    wake = vitals.next_wake(state)
    assert wake is not None and wake > now
    # no more readings: an hour of wall time later the district says its devices are silent
    late = vitals.close(state, now + 3600.0)
    health = [r for r in late.records if r.indicator == "device_health"]
    assert health and health[-1].components[0]["silent"] == ["a", "b"]
    assert health[-1].level == "poor" and not health[-1].confident
    assert isinstance(late.to_city[-1], DistrictProgress)
    assert any(isinstance(f, DistrictWindow) for f in late.to_city)
    assert pickle.loads(pickle.dumps(state)).through == state.through


def test_the_rate_of_rise_is_a_least_squares_slope_in_metres_per_hour() -> None:
    points = [(T + 600 * n, 2.0 + 0.05 * n) for n in range(7)]
    assert rise_rate(points) == pytest.approx(0.3)
    assert rise_rate(points[:1]) == 0.0


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.floats(20, 140), st.floats(0, 9.99)),
             min_size=1, max_size=40),
    st.integers(1, 39),
)
def test_any_split_of_a_window_merges_to_the_same_runs_and_leq(readings, cut: int) -> None:
    items = [Reading(d, "harbour", "noise", v, "dBA", T + t) for d, v, t in readings]
    (whole,) = preaggregate(items, 10.0, {"noise"})
    parts = [preaggregate(chunk, 10.0, {"noise"}) for chunk in (items[:cut], items[cut:])]
    merged, *rest = [p[0] for p in parts if p]
    for part in rest:
        merged.merge(part)
    assert merged.leq == pytest.approx(whole.leq, abs=1e-9)
    assert set(merged.devices) == set(whole.devices)
    for device, run in whole.runs.items():
        other = merged.runs[device]
        assert (other.count, other.lo, other.hi, other.first_ts, other.last_ts) == (
            run.count, run.lo, run.hi, run.first_ts, run.last_ts)
        assert other.total == pytest.approx(run.total)
