"""Threshold rules fire early on the running window, once per severity and window, stable ids."""

from __future__ import annotations

import pickle

import pytest

from alerts.rules import Alert, ThresholdRule, alert_id, rules_for_kinds
from models.readings import Reading
from models.windows import KeyWindows, Window, preaggregate
from settings.config import Settings

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z


@pytest.fixture(scope="module")
def rules(base_settings: Settings) -> dict[str, ThresholdRule]:
    return {kind: rule for kind, (rule,) in rules_for_kinds(base_settings.kinds).items()}


class Series:
    """One district/kind: readings go into windows, the rule sees every update, alerts collect."""

    def __init__(self, rule: ThresholdRule, district: str = "industrial-east") -> None:
        self.rule = rule
        self.district = district
        self.state = rule.new_state()
        self.windows = KeyWindows(10.0, 1.0)
        self.alerts: list[Alert] = []

    def add(self, ts: float, *values: float) -> None:
        """One batch: readings at ``ts`` from devices d0, d1, ... with ``values``."""
        readings = [
            Reading(f"d{n}", self.district, self.rule.kind, value, self.rule.unit, ts)
            for n, value in enumerate(values)
        ]
        for part in preaggregate(readings, 10.0):
            running = self.windows.merge(part, ts)
            assert running is not None
            self.alerts += self.rule.on_update(self.state, running, ts=ts)
        for window in self.windows.close_due(ts):
            self.alerts += self.rule.on_close(self.state, window)


def test_every_kind_of_the_city_has_its_threshold_rule(base_settings: Settings) -> None:
    rules = rules_for_kinds(base_settings.kinds)
    assert set(rules) == set(base_settings.kinds)
    (pm25,) = rules["pm25"]
    assert (pm25.rule_id, pm25.direction, pm25.stat) == ("pm25.threshold", "above", "mean")
    assert (pm25.warning, pm25.critical) == (55.5, 150.5)


def test_a_breach_fires_as_soon_as_the_running_mean_crosses_and_only_once(rules) -> None:
    series = Series(rules["pm25"])
    series.add(T + 1, 20.0, 30.0)
    assert series.alerts == []
    series.add(T + 2, 200.0)  # mean (20+30+200)/3 = 83.3: warning, before the window closes
    (alert,) = series.alerts
    assert (alert.severity, alert.threshold, alert.ts) == ("warning", 55.5, T + 2)
    assert alert.value == pytest.approx(250 / 3)
    series.add(T + 3, 90.0)
    series.add(T + 4, 100.0)
    assert len(series.alerts) == 1, "same severity, same window: no second alert"


def test_a_window_escalating_to_critical_fires_the_critical_alert_too(rules) -> None:
    series = Series(rules["pm25"])
    series.add(T + 1, 100.0)
    series.add(T + 2, 300.0)  # mean 200
    series.add(T + 3, 400.0)
    assert [(a.severity, a.value) for a in series.alerts] == [
        ("warning", 100.0), ("critical", 200.0)]
    assert series.alerts[0].id != series.alerts[1].id


def test_a_window_breaching_critical_at_once_fires_only_critical_and_never_warning(rules) -> None:
    series = Series(rules["pm25"])
    series.add(T + 1, 400.0)
    series.add(T + 2, 0.0, 0.0, 0.0, 0.0)  # mean falls back to 80: warning level
    assert [a.severity for a in series.alerts] == ["critical"]


def test_each_window_fires_again(rules) -> None:
    series = Series(rules["pm25"])
    series.add(T + 1, 100.0)
    series.add(T + 12, 100.0)  # next window; the first one closes
    assert [(a.severity, a.window_start) for a in series.alerts] == [
        ("warning", T), ("warning", T + 10)]
    assert series.state == {("warning", T + 10)}, "closed windows are forgotten"


def test_below_rules_fire_when_the_statistic_is_at_or_under_the_level(rules) -> None:
    series = Series(rules["traffic_speed"], district="central-station")
    series.add(T + 1, 40.0, 30.0)
    series.add(T + 2, 0.0, 5.0)  # mean 18.75: fine
    assert series.alerts == []
    series.add(T + 3, 0.0, 0.0, 0.0)  # mean 75/7 = 10.7: at or under 15
    series.add(T + 4, 0.0, 0.0, 0.0, 0.0, 0.0)  # mean 75/12 = 6.25: under 8
    assert [(a.severity, a.direction, a.threshold) for a in series.alerts] == [
        ("warning", "below", 15.0), ("critical", "below", 8.0)]
    assert series.alerts[1].message == (
        "Average traffic speed mean 6.25 km/h in central-station is below the critical level 8"
    )


def test_levels_are_inclusive(rules) -> None:
    rule = rules["pm25"]
    assert rule.breached(55.5) == "warning"
    assert rule.breached(55.49) is None
    assert rule.breached(150.5) == "critical"
    assert rules["traffic_speed"].breached(15.0) == "warning"


def test_max_and_last_statistics(rules, base_settings: Settings) -> None:
    series = Series(rules["water_level"], district="riverside")
    series.add(T + 1, 1.0, 3.6, 1.0)  # max 3.6 >= 3.5 though the mean is low
    assert [(a.stat, a.value, a.severity) for a in series.alerts] == [("max", 3.6, "warning")]
    last = ThresholdRule("noise", "Sound level", "dBA", "above", "last", 75.0, 90.0)
    series = Series(last, district="old-town")
    series.add(T + 1, 95.0)
    series.add(T + 2, 50.0)  # last is now 50: nothing new
    series.add(T + 3, 91.0)  # critical already fired in this window
    assert [(a.value, a.severity) for a in series.alerts] == [(95.0, "critical")]


def test_the_message_names_kind_statistic_value_district_and_level(rules) -> None:
    rule = rules["pm25"]
    window = Window("industrial-east", "pm25", T, T + 10, 212.43, T + 3.5, "pm-1")
    (alert,) = rule.on_update(rule.new_state(), window, ts=T + 3.5)
    assert alert.message == (
        "PM2.5 mean 212.4 ug/m3 in industrial-east is above the critical level 150.5"
    )
    assert alert.record(emitted_at=T + 4) == {
        "id": alert_id("pm25.threshold", "industrial-east", "pm25", "critical", T),
        "rule": "pm25.threshold",
        "district": "industrial-east",
        "kind": "pm25",
        "severity": "critical",
        "value": 212.43,
        "threshold": 150.5,
        "direction": "above",
        "stat": "mean",
        "unit": "ug/m3",
        "window_start": "2026-11-26T05:00:00.000Z",
        "window_end": "2026-11-26T05:00:10.000Z",
        "ts": "2026-11-26T05:00:03.500Z",
        "emitted_at": "2026-11-26T05:00:04.000Z",
        "message": alert.message,
    }


def test_alert_ids_are_deterministic_and_differ_by_each_part() -> None:
    base = ("pm25.threshold", "harbour", "pm25", "warning", T)
    assert alert_id(*base) == alert_id(*base)
    assert alert_id(*base) == "d9618311128260a5f70a"  # stable across runs and processes
    variants = {
        alert_id(*base),
        alert_id("pm10.threshold", *base[1:]),
        alert_id(base[0], "old-town", *base[2:]),
        alert_id(*base[:2], "pm10", *base[3:]),
        alert_id(*base[:3], "critical", T),
        alert_id(*base[:4], T + 10),
    }
    assert len(variants) == 6


def test_replaying_the_same_readings_yields_the_same_alerts(rules) -> None:
    runs = []
    for _ in range(2):
        series = Series(rules["pm25"])
        series.add(T + 1, 100.0)
        series.add(T + 2, 400.0)
        runs.append(series.alerts)
    assert runs[0] == runs[1] and len(runs[0]) == 2


def test_rule_state_is_picklable(rules) -> None:
    series = Series(rules["pm25"])
    series.add(T + 1, 100.0)
    state = pickle.loads(pickle.dumps(series.state))
    assert state == {("warning", T)}
