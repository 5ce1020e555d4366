"""Anomaly alerts in the flow, on bytewax's TestingSource/TestingSink with an injected clock.

A district's water level that slowly drains away from its learned daily pattern while staying
far inside every threshold raises an ``anomaly.water_level`` alert with the expected band; the
same series without the loss raises none; a replay yields the same alert ids; the detectors
ride in the district's recovery snapshot and resume where they were.
"""

from __future__ import annotations

import copy
import math
import pickle
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource

from alerts.anomaly_rules import AnomalyRule, Observation, anomaly_alert_id
from connectors.kafka import KafkaRecord
from flows.anomaly import Detectors
from models.anomaly import KINDS
from models.readings import Reading
from models.timefmt import from_iso, iso
from models.windows import Window
from settings.config import Settings
from settings.loader import dump, load_mapping
from tests.support.flow import FlowRecords, batch_record, run_flow, run_flow_records

pytestmark = pytest.mark.timeout(120)

T0 = 1_795_651_200.0        # 2026-11-26T00:00:00Z
DAY = 86_400.0
BLOCK = 300.0               # anomaly.interval_s: a day is 288 points of the district's series
EVERY = 60.0                # one water level reading a minute
LOSS_FROM = T0 + 3 * DAY    # three days to learn the daily pattern, then the loss begins
END = T0 + 4 * DAY
LOSS = 0.1                  # m/h: 2.4 m a day, never near the 3.5 m warning line
NOW = END + 3600.0          # the injected wall clock stands still: event time moves watermarks


def level(ts: float, rng: random.Random, loss_m_per_h: float) -> float:
    """Riverside's level: 1.6 m +/- 0.1 m a day (peak 06:00), noise, and a slow loss."""
    value = 1.6 + 0.1 * math.cos(2 * math.pi * ((ts % DAY) / 3600 - 6) / 24)
    value += rng.gauss(0.0, 0.02)
    if ts >= LOSS_FROM:
        value -= loss_m_per_h * (ts - LOSS_FROM) / 3600
    return value


def readings(loss_m_per_h: float) -> list[KafkaRecord]:
    rng = random.Random(11)
    out = []
    for n in range(int((END - T0) / EVERY)):
        ts = T0 + n * EVERY + 5.0
        reading = Reading("wl-1", "riverside", "water_level", level(ts, rng, loss_m_per_h), "m",
                          ts)
        out.append(batch_record([reading]))
    return out


@pytest.fixture(scope="module")
def shipped(base_settings: Settings) -> Settings:
    """config.yaml as shipped: 10-s windows, one anomaly point per series every 5 minutes."""
    assert base_settings.flow.window_s == 10 and base_settings.anomaly.interval_s == BLOCK
    return base_settings


def run(settings: Settings, items: list[KafkaRecord]) -> list[dict[str, Any]]:
    out = run_flow(settings, items, batch_size=60, clock=lambda: NOW)
    return [alert | {"key": key} for alert, key in zip(out.alerts, out.alert_keys, strict=True)]


@pytest.fixture(scope="module")
def draining(shipped: Settings) -> list[dict[str, Any]]:
    return run(shipped, readings(loss_m_per_h=LOSS))


def test_a_slow_loss_inside_the_thresholds_raises_an_anomaly_alert_with_the_band(
    draining: list[dict[str, Any]], shipped: Settings,
) -> None:
    anomalies = [a for a in draining if a["rule"] == "anomaly.water_level"]
    districts = [a for a in anomalies if a["scope"] == "district"]
    assert districts, draining
    first = districts[0]
    # no threshold rule saw it: the level never came near the 3.5 m warning line
    assert [a for a in draining if not a["rule"].startswith("anomaly.")] == []
    assert shipped.kinds["water_level"].thresholds.warning == 3.5 and first["value"] < 3.5
    assert LOSS_FROM <= from_iso(first["window_start"]) <= LOSS_FROM + 12 * 3600
    assert from_iso(first["window_end"]) - from_iso(first["window_start"]) == BLOCK
    assert first["district"] == "riverside" and first["kind"] == "water_level"
    assert first["severity"] == "warning" and first["stat"] == "mean"
    assert first["score"] >= first["threshold"] == shipped.anomaly.threshold
    assert first["low"] < first["expected"] < first["high"]
    assert first["value"] < first["expected"] and first["direction"] == "below"
    assert first["device_id"] is None and first["detector"] == "riverside/water_level"
    assert first["evidence"] in KINDS + ("stuck", "beyond_range")
    assert first["unit"] == "m" and first["emitted_at"] == iso(NOW)
    assert first["message"].startswith("River and drain water level ")
    assert " m in riverside is unusual: expected " in first["message"]
    assert f"(score {first['score']:.2f}, " in first["message"]
    start = from_iso(first["window_start"])
    assert first["id"] == anomaly_alert_id("anomaly.water_level", "riverside", "water_level",
                                           start)
    assert first["key"] == first["id"].encode()


def test_a_clean_seasonal_series_raises_no_anomaly_alert(shipped: Settings) -> None:
    assert run(shipped, readings(loss_m_per_h=0.0)) == []


def test_replaying_the_same_readings_yields_the_same_anomaly_alert_ids(
    draining: list[dict[str, Any]], shipped: Settings,
) -> None:
    again = run(shipped, readings(loss_m_per_h=LOSS))
    assert [a["id"] for a in again] == [a["id"] for a in draining]
    assert len({a["id"] for a in draining}) == len(draining)


def test_detectors_resume_from_the_snapshot_as_if_never_stopped(shipped: Settings) -> None:
    # what DistrictLogic.snapshot does (deepcopy), then bytewax's pickling, then a resume
    rule = AnomalyRule.from_settings(shipped.anomaly, shipped.kinds)
    rng = random.Random(5)
    points = [(T0 + n * BLOCK, level(T0 + n * BLOCK, rng, 0.0)) for n in range(600)]
    uninterrupted = rule.new_detector()
    expected = [rule.on_observation(uninterrupted, Observation(
        "riverside", "water_level", None, ts, ts + BLOCK, ts, value)) for ts, value in points]
    live = Detectors()
    got = [live.on_window(rule, _window(ts, value)) for ts, value in points[:400]]
    resumed = pickle.loads(pickle.dumps(copy.deepcopy(live)))
    got += [resumed.on_window(rule, _window(ts, value)) for ts, value in points[400:]]
    series = "riverside/water_level"
    assert pickle.dumps(_detector(resumed, series)) == pickle.dumps(uninterrupted)
    assert _detector(resumed, series).seen == 600 and len(resumed) == 2  # district, wl-1
    district_alerts = [[a.record(emitted_at=NOW)["id"] for a in out
                        if a.record(emitted_at=NOW)["device_id"] is None] for out in got]
    assert district_alerts == [[] if a is None else [a.id] for a in expected]


def test_per_device_detectors_alert_on_the_device_that_drifts(
    draining: list[dict[str, Any]], shipped: Settings,
) -> None:
    assert shipped.anomaly.per_device
    devices = [a for a in draining if a["scope"] == "device"]
    assert devices and all(a["device_id"] == "wl-1" for a in devices)
    assert {a["detector"] for a in devices} == {"riverside/water_level/wl-1"}
    assert " at wl-1 in riverside is unusual" in devices[0]["message"]
    districts = {a["id"] for a in draining if a["device_id"] is None}
    assert districts and districts.isdisjoint(a["id"] for a in devices)


def test_without_per_device_only_the_district_series_alerts(shipped: Settings) -> None:
    data = copy.deepcopy(dump(shipped))
    data["anomaly"]["per_device"] = False
    alerts = run(load_mapping(data, env={}), readings(loss_m_per_h=LOSS))
    assert alerts and {a["scope"] for a in alerts} == {"district"}


def _detector(detectors: Detectors, series: str) -> Any:
    detector = detectors.get(series)
    assert detector is not None
    return detector


def _window(ts: float, value: float) -> Window:
    return Window("riverside", "water_level", ts, ts + BLOCK, value, ts, "wl-1")


def test_a_restarted_flow_resumes_its_detectors_from_the_recovery_snapshot(
    draining: list[dict[str, Any]], shipped: Settings, tmp_path: Path,
) -> None:
    items: list[Any] = readings(loss_m_per_h=LOSS)
    crash = int((LOSS_FROM - 6 * 3600 - T0) / EVERY)   # the flow dies 6 h before the loss
    items.insert(crash, TestingSource.ABORT())
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))

    def run() -> FlowRecords:
        return run_flow_records(shipped, items, batch_size=60, clock=lambda: NOW,
                                recovery=recovery, epoch_interval=timedelta(0))

    first = run()  # stops at the crash
    assert first.alerts == [] and first.vitals
    second = run()
    # the second run went on from the snapshot, not from the first reading
    restarted = min(from_iso(orjson.loads(r.value)["window_start"]) for r in second.vitals)
    assert restarted > LOSS_FROM - 7 * 3600
    # relearning from zero would need 200 points (17 h) of warm-up: no alert would come
    alerts = first.alerts + second.alerts
    resumed = {orjson.loads(r.value)["id"]: orjson.loads(r.value)["score"] for r in alerts}
    assert resumed == {a["id"]: a["score"] for a in draining}


def jumped(settings: Settings, detector: str) -> Settings:
    """``settings`` with ``anomaly.detector`` set to ``detector``."""
    data = copy.deepcopy(dump(settings))
    data["anomaly"]["detector"] = detector
    return load_mapping(data, env={})


def jump_readings(jump_m: float) -> list[KafkaRecord]:
    """Riverside's usual level, which jumps by ``jump_m`` at LOSS_FROM (still under 3.5 m)."""
    rng = random.Random(11)
    out = []
    for n in range(int((END - T0) / EVERY)):
        ts = T0 + n * EVERY + 5.0
        value = level(ts, rng, 0.0) + (jump_m if ts >= LOSS_FROM else 0.0)
        out.append(batch_record([Reading("wl-1", "riverside", "water_level", value, "m", ts)]))
    return out


def test_a_river_detector_chosen_by_config_scores_the_series(shipped: Settings) -> None:
    data = copy.deepcopy(dump(shipped))
    data["anomaly"].update(detector="river.GaussianScorer", threshold=0.99, critical=0.999)
    settings = load_mapping(data, env={})
    assert run(settings, jump_readings(0.0)) == []
    alerts = [a for a in run(settings, jump_readings(1.0)) if a["rule"].startswith("anomaly.")]
    assert alerts and {a["rule"] for a in alerts} == {"anomaly.water_level"}
    first = [a for a in alerts if a["scope"] == "district"][0]
    assert from_iso(first["window_start"]) == LOSS_FROM
    assert first["evidence"] == "GaussianScorer" and 0.99 <= first["score"] <= 1.0
    assert first["low"] < first["expected"] < first["high"] < first["value"]
    assert first["message"].endswith(f"(score {first['score']:.2f}, GaussianScorer)")
    series = {a["detector"] for a in alerts}
    assert series == {"riverside/water_level", "riverside/water_level/wl-1"}


def test_river_half_space_trees_ride_in_the_snapshot_and_resume(shipped: Settings) -> None:
    settings = jumped(shipped, "river.HalfSpaceTrees")
    rule = AnomalyRule.from_settings(settings.anomaly, settings.kinds)
    rng = random.Random(5)
    points = [(T0 + n * BLOCK, level(T0 + n * BLOCK, rng, 0.0)) for n in range(400)]
    uninterrupted = rule.new_detector()
    assert type(uninterrupted).__name__ == "RiverDetector"
    scores = [uninterrupted.update(ts + 0.5 * BLOCK, value).score for ts, value in points]
    assert scores[:200] == [0.0] * 200 and len(set(scores[200:])) > 10   # River's own scores
    live = Detectors()
    for ts, value in points[:250]:
        live.on_window(rule, _window(ts, value))
    resumed = pickle.loads(pickle.dumps(copy.deepcopy(live)))
    detector = _detector(resumed, "riverside/water_level")
    assert detector.seen == 250
    assert [detector.update(ts + 0.5 * BLOCK, value).score
            for ts, value in points[250:]] == scores[250:]


def test_an_unknown_detector_is_refused_with_the_valid_names(shipped: Settings) -> None:
    with pytest.raises(Exception, match="river.HalfSpaceTrees") as caught:
        jumped(shipped, "river.Nope")
    assert "anomaly" in str(caught.value) and "detector" in str(caught.value)
