"""Vital signs in the flow, on bytewax's TestingSource/TestingSink with an injected clock.

Indicator records with hand-computed values (AQI of a known PM2.5 window, Leq of known levels),
out-of-order and late readings, a silent device, a stuck sensor, a district with half its
devices down, out-of-range readings dead-lettered by the bridge, and a rule with a duration and
hysteresis that fires once.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import orjson
import pytest

from alerts.rules import alert_id
from connectors.kafka import KafkaRecord
from models.timefmt import iso
from models.vitals.devices import encode_rejection
from models.vitals.records import Rejection
from settings.config import Settings
from settings.loader import dump, load_mapping
from tests.support.flow import FlowOutputs, run_flow
from tests.support.flow import reading_record as msg

pytestmark = pytest.mark.timeout(60)

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z = 06:00 in Berlin (day); windows are 10 s
NOW = T + 3600.0  # the injected wall clock stands still: event time alone moves watermarks


def tuned(base: Settings, **indicators: Any) -> Settings:
    """``base`` with ``indicators`` sections merged in, validated like config.yaml."""
    data = copy.deepcopy(dump(base))
    for section, value in indicators.items():
        if isinstance(value, dict) and isinstance(data["indicators"].get(section), dict):
            data["indicators"][section].update(value)
        else:
            data["indicators"][section] = value
    return load_mapping(data, env={})


def run(settings: Settings, items: list, **options: Any) -> FlowOutputs:
    return run_flow(settings, items, clock=lambda: NOW, **options)


def every(start: float, stop: float, step: float, value: float, **where: Any) -> list:
    return [msg(t, value, **where) for t in _range(start, stop, step)]


def _range(start: float, stop: float, step: float) -> list[float]:
    return [start + n * step for n in range(int(round((stop - start) / step)))]


@pytest.fixture(scope="module")
def short(base_settings: Settings) -> Settings:
    """AQI periods of one window, so that the averaged AQI of a window is its own."""
    return tuned(base_settings, aqi={"periods_s": {"1h": 10, "8h": 10, "24h": 10},
                                     "bucket_s": 10})


# hand-computed values


def test_aqi_of_a_known_pm25_window_and_its_record_shape(short: Settings) -> None:
    out = run(short, [msg(T + 1, 30.0, device="a"), msg(T + 2, 40.0, device="b"),
                      msg(T + 3, 50.0, device="c")])
    # HJ 633: PM2.5 40 ug/m3 lies in 35-75 -> IAQI 50-100: 50 + 50 * 5/40 = 56.25, rounded up
    aqi = out.at("aqi", T)
    assert (aqi["value"], aqi["level"], aqi["unit"]) == (57, "Good", "AQI")
    assert aqi["details"]["primary"] == ["pm25_24h"] and aqi["details"]["level_number"] == 2
    assert (aqi["inputs"], aqi["coverage"], aqi["confident"]) == (3, 1.0, True)
    assert aqi["components"] == [{"name": "pm25_24h", "pollutant": "pm25", "period": "24h",
                                  "concentration": 40.0, "unit": "ug/m3", "iaqi": 57,
                                  "filled": 1.0}]
    assert aqi == {**aqi, "record": "indicator", "kind": "aqi", "district": "harbour",
                   "window_start": "2026-11-26T05:00:00.000Z",
                   "window_end": "2026-11-26T05:00:10.000Z",
                   "emitted_at": "2026-11-26T06:00:00.000Z"}
    instant = out.at("aqi_instant", T)
    assert (instant["value"], instant["details"]["averaging"]) == (57, "instant")
    assert b"harbour/indicator:aqi" in out.indicator_keys
    city = out.at("aqi", T, district="city")
    assert (city["value"], city["details"]["districts"]) == (57, {"harbour": 57})


def test_aqi_under_the_epa_standard_converts_gases_to_ppb(short: Settings) -> None:
    settings = tuned(short, aqi={"standard": "epa"})
    out = run(settings, [
        msg(T + 1, 40.0),                               # EPA 2024: 35.5-55.4 -> 101-150: 112
        msg(T + 2, 188.2, kind="no2", device="n"),      # 188.2 / (46.01/24.45) = 100.01 ppb
    ])
    aqi = out.at("aqi", T)
    iaqi = {c["name"]: (c["iaqi"], c["unit"], c["concentration"]) for c in aqi["components"]}
    assert iaqi["pm25_24h"] == (112, "ug/m3", 40.0)
    assert iaqi["no2_1h"][:2] == (100, "ppb")  # 54-100 ppb -> 51-100; truncated to 100
    assert math.isclose(iaqi["no2_1h"][2], 100.011, abs_tol=1e-3)
    assert (aqi["value"], aqi["level"]) == (112, "Unhealthy for Sensitive Groups")


def test_hj633_above_its_top_breakpoint_reads_500_and_says_so(short: Settings) -> None:
    aqi = run(short, [msg(T + 1, 620.0)]).at("aqi", T)
    assert (aqi["value"], aqi["details"]["level_number"]) == (500, 6)
    assert aqi["details"]["beyond_table"] == ["pm25_24h"]


def test_noise_is_the_energy_average_against_the_zone_limit_of_the_local_hour(
    base_settings: Settings,
) -> None:
    out = run(base_settings, [
        msg(T + 1, 60.0, kind="noise", unit="dBA", device="n1"),
        msg(T + 2, 70.0, kind="noise", unit="dBA", device="n2"),
        msg(T - 6 * 3600 + 1, 50.0, kind="noise", unit="dBA", device="n1", district="university"),
    ])
    noise = out.at("noise", T)
    # 10*log10((10**6 + 10**7) / 2) = 67.40 dB, not the arithmetic 65
    assert math.isclose(noise["value"], 10 * math.log10((1e6 + 1e7) / 2), abs_tol=1e-9)
    assert (noise["details"]["zone"], noise["details"]["period"]) == ("3", "day")
    assert (noise["details"]["limit_db"], noise["level"]) == (65.0, "over")  # 2.4 dB over
    vital = next(v for v in out.vitals if v["kind"] == "noise" and v["district"] == "harbour")
    assert vital["mean"] == 65.0, "the vital record keeps the plain statistics"
    night = out.at("noise", T - 6 * 3600, district="university")  # 00:00 in Berlin
    assert (night["details"]["period"], night["details"]["limit_db"]) == ("night", 45.0)
    assert (night["value"], night["level"]) == (50.0, "over")  # 5 dB over zone 1's: not yet high


def test_traffic_power_crowd_and_water_from_one_window(base_settings: Settings) -> None:
    out = run(base_settings, [
        msg(T + 1, 25.0, kind="traffic_speed", unit="km/h", device="t1"),
        msg(T + 2, 25.0, kind="traffic_speed", unit="km/h", device="t2"),
        msg(T + 1, 60.0, kind="power_load", unit="MW", device="s1"),
        msg(T + 2, 95.0, kind="power_load", unit="MW", device="s2"),
        msg(T + 1, 1.0, kind="crowd_density", unit="persons/m2", device="c1"),
        msg(T + 2, 2.2, kind="crowd_density", unit="persons/m2", device="c2"),
        msg(T + 3, 3.2, kind="water_level", unit="m", device="w1"),
        msg(T + 4, 2.0, kind="water_level", unit="m", device="w2"),
    ])
    traffic = out.at("traffic", T)
    assert (traffic["value"], traffic["level"]) == (2.0, "jammed")  # 50 km/h free flow / 25
    power = out.at("power", T)
    assert (power["value"], power["level"]) == (0.775, "elevated")  # 155 MW of 200 MW
    assert power["details"]["worst_substation"] == "s2"
    crowd = out.at("crowd", T)
    assert (crowd["value"], crowd["level"], crowd["details"]["area"]) == (
        2.2, "over_capacity", "c2")  # safe density 2.0
    water = out.at("water_level", T)
    assert (water["value"], water["level"]) == (3.2, "warning")  # harbour's warning line: 3.0
    score = out.at("score", T)
    used = {c["name"] for c in score["components"] if c["status"] == "used"}
    assert used == {"traffic", "power", "crowd", "water_level"}
    assert 0 <= score["value"] <= 100 and score["level"] in ("good", "fair", "poor", "critical")


# windows, late data and device health


def test_out_of_order_readings_count_and_late_ones_are_reported_not_folded_in(
    short: Settings,
) -> None:
    out = run(short, [
        msg(T + 1, 10.0, device="a"),
        msg(T + 10.5, 40.0, device="a"),   # watermark T+9.5: [T, T+10) still open
        msg(T + 9.8, 30.0, device="b"),    # out of order, within the 1 s allowance
        msg(T + 12, 40.0, device="a"),     # watermark T+11: [T, T+10) closes
        msg(T + 5, 999.0, device="b"),     # too late for the closed window
        msg(T + 25, 40.0, device="a"),
    ])
    first = out.at("aqi_instant", T)
    assert first["inputs"] == 2 and first["components"][0]["concentration"] == 20.0
    second = out.at("aqi_instant", T + 10)
    assert second["components"][0]["concentration"] == 40.0, "the late 999 is not folded in"
    assert [v["late"] for v in out.vitals if v["district"] == "harbour"] == [0, 1, 0]


def pm25_devices(devices: list[str], until: dict[str, float], stop: float) -> list:
    """Readings every 10 s from each device until its time in ``until`` (default ``stop``)."""
    items = []
    for t in _range(T + 1, stop, 10.0):
        items += [msg(t + n * 0.1, 20.0 + n, device=d) for n, d in enumerate(devices)
                  if t < until.get(d, stop)]
    return items


def test_a_silent_device_is_named_after_k_intervals(short: Settings) -> None:
    out = run(short, pm25_devices(["a", "b", "c"], {"a": T + 10}, T + 80))
    health = {r["window_start"]: r for r in out.of("device_health")}
    # a's last reading is at T+1; pm25 reports every 10 s; silent after 3 x 10 s
    before = health[iso(T + 20)]["components"][0]
    after = health[iso(T + 30)]["components"][0]
    assert (before["kind"], before["silent"], before["usable"]) == ("pm25", [], 3)
    assert (after["silent"], after["usable"], after["expected"]) == (["a"], 2, 3)
    aqi = out.at("aqi", T + 30)
    assert (aqi["coverage"], aqi["confident"]) == (0.6667, True)  # 2 of 3 >= 0.6


def test_a_district_with_half_its_devices_down_says_so(short: Settings) -> None:
    items = pm25_devices(["a", "b", "c", "d"], {"a": T + 10, "b": T + 10}, T + 80)
    items += every(T + 1.5, T + 80, 10.0, 40.0, kind="traffic_speed", unit="km/h", device="t")
    out = run(short, sorted(items, key=lambda r: orjson.loads(r.value)["ts"]))
    aqi = out.at("aqi", T + 40)
    assert (aqi["coverage"], aqi["confident"]) == (0.5, False)
    assert out.at("traffic", T + 40)["confident"], "traffic devices are all up"
    health = out.at("device_health", T + 40)
    assert (health["level"], health["confident"], health["value"]) == ("degraded", False, 0.6)
    assert health["details"]["low_coverage_kinds"] == ["pm25"]
    score = out.at("score", T + 40)
    (air,) = [c for c in score["components"] if c["name"] == "aqi"]
    assert air["status"] == "low_coverage" and not score["confident"]
    assert out.at("aqi", T)["confident"], "with every device up the number was trusted"


def test_a_stuck_sensor_is_flagged_once_its_run_is_long_enough(short: Settings) -> None:
    settings = tuned(short, device_health={"stuck_readings": 6, "stuck_min_span_s": 40})
    items = []
    for t in _range(T + 1, T + 100, 5.0):
        items += [msg(t, 42.0, device="stuck"), msg(t + 0.5, 20.0 + (t - T) % 7, device="ok")]
    out = run(settings, items)
    stuck = {r["window_start"]: r["components"][0]["stuck"] for r in out.of("device_health")}
    assert stuck[iso(T + 20)] == [], "6 equal readings, but only 25 s apart"
    assert stuck[iso(T + 40)] == ["stuck"]
    assert out.at("aqi", T + 40)["coverage"] == 0.5


def test_out_of_range_readings_refused_by_the_bridge_count_against_the_device(
    short: Settings,
) -> None:
    readings = pm25_devices(["a", "b"], {}, T + 40)
    # what the bridge writes to the rejections topic for b's out-of-range readings
    rejected = [KafkaRecord(b"b", encode_rejection(Rejection("harbour", "pm25", "b", t)))
                for t in (T + 2, T + 12)]
    rejected.append(KafkaRecord(b"b", b"{}"))  # not a rejection: skipped
    out = run(short, readings, rejections=rejected)
    (pm25,) = out.at("device_health", T + 20)["components"]
    assert (pm25["out_of_range"], pm25["usable"]) == (["b"], 1)  # 2 of its 6 were rejected
    # the flow's own out-of-range refusals count too (and are dead-lettered)
    own = run(short, [msg(T + 1, 20.0, device="a"), msg(T + 2, 5000.0, device="c"),
                      msg(T + 12, 20.0, device="a")])
    assert [dict(r.headers)["reason"] for r in own.dead] == [b"out_of_range"]
    (pm25,) = own.at("device_health", T)["components"]
    assert (pm25["expected"], pm25["out_of_range"]) == (2, ["c"])


# rules on indicators


def test_a_rule_with_duration_and_hysteresis_fires_once(short: Settings) -> None:
    rule = {"id": "aqi-test", "indicator": "aqi", "direction": "above", "warning": 100,
            "critical": 200, "for_s": 30, "hysteresis": 20, "scope": "districts"}
    settings = tuned(short, rules=[rule])
    # per window, PM2.5 -> AQI: 80 -> 107 (above 100), 70 -> 94 (below, but within 20 of it)
    means = [80, 80, 70, 80, 70, 80, 30, 80]
    items = [msg(T + 10 * n + 1, value) for n, value in enumerate(means)]
    out = run(settings, items + [msg(T + 95, 10.0)])
    fired = [a for a in out.alerts if a["rule"] == "aqi-test"]
    assert [(a["district"], a["severity"]) for a in fired] == [("harbour", "warning")]
    (alert,) = fired
    assert alert["id"] == alert_id("aqi-test", "harbour", "aqi", "warning", T)
    assert (alert["kind"], alert["stat"], alert["value"], alert["threshold"]) == (
        "aqi", "value", 107.0, 100.0)
    assert (alert["window_start"], alert["ts"]) == (iso(T + 30), iso(T + 40))
    assert "for 40 s" in alert["message"] and "since 05:00:00" in alert["message"]
    city = [a for a in run(tuned(settings, rules=[{**rule, "scope": "city"}]), items).alerts
            if a["rule"] == "aqi-test"]
    assert [a["district"] for a in city] == ["city"]
    again = run(settings, items + [msg(T + 95, 10.0)], batch_size=3)
    assert [a["id"] for a in again.alerts if a["rule"] == "aqi-test"] == [alert["id"]]


def test_the_kinds_threshold_rules_still_fire_on_raw_readings(base_settings: Settings) -> None:
    out = run(base_settings, [msg(T + 1, 300.0, district="industrial-east"),
                              msg(T + 14, 90.0, district="industrial-east")])
    assert [(a["rule"], a["severity"]) for a in out.alerts] == [
        ("pm25.threshold", "critical"), ("pm25.threshold", "warning")]
