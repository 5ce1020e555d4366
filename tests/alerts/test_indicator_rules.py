"""Rules on indicators: minimum duration, hysteresis, severities, scope and stable ids."""

from __future__ import annotations

import pickle

import pytest
from pydantic import ValidationError

from alerts.indicator_rules import IndicatorRule, indicator_rules
from alerts.rules import alert_id
from models.vitals.records import IndicatorRecord
from settings.config import Settings
from settings.indicators import IndicatorRuleSettings

T = 1_795_669_200.0


def rule(**changes) -> IndicatorRule:
    base = dict(rule_id="aqi-high", indicator="aqi", stat="value", direction="above",
                warning=151.0, critical=201.0, for_s=900.0, hysteresis=10.0)
    return IndicatorRule(**{**base, **changes})


def record(n: int, value: float, *, district: str = "harbour", score: float | None = 50.0,
           indicator: str = "aqi", length: float = 60.0) -> IndicatorRecord:
    start = T + n * length
    return IndicatorRecord(district, indicator, value, "AQI", "x", score, start, start + length,
                           10, 1.0, True)


def feed(r: IndicatorRule, values: list[float], **options) -> list:
    state = r.new_state()
    alerts = []
    for n, value in enumerate(values):
        alerts += r.on_record(state, record(n, value, **options))
    return alerts


def test_fires_once_the_value_held_for_the_duration_not_before() -> None:
    # one-minute windows: 15 of them above 151 make 15 minutes
    alerts = feed(rule(), [100.0] * 3 + [180.0] * 20)
    (alert,) = alerts
    assert alert.severity == "warning"
    assert alert.window_end - T - 3 * 60 == 900.0, "fires on the window completing 15 minutes"
    assert alert.id == alert_id("aqi-high", "harbour", "aqi", "warning", T + 180)
    assert feed(rule(), [180.0] * 14) == [], "14 minutes are not enough"


def test_hysteresis_keeps_one_episode_while_the_value_wavers_around_the_level() -> None:
    wavering = [160.0, 145.0, 155.0, 142.0] * 10  # dips below 151, never below 141
    assert len(feed(rule(for_s=120), wavering)) == 1
    flapping = [160.0, 130.0] * 20  # falls below 151 - 10: each rise is a new episode
    assert feed(rule(for_s=120), flapping) == []
    assert len(feed(rule(for_s=0, hysteresis=0), flapping)) == 20


def test_an_episode_that_ended_can_fire_again_with_a_new_id() -> None:
    values = [180.0] * 3 + [100.0] + [180.0] * 3
    alerts = feed(rule(for_s=120), values)
    assert len(alerts) == 2 and alerts[0].id != alerts[1].id


def test_escalation_fires_critical_and_straight_to_critical_fires_only_critical() -> None:
    escalating = feed(rule(for_s=60), [160.0, 160.0, 250.0, 250.0, 250.0])
    assert [a.severity for a in escalating] == ["warning", "critical"]
    straight = feed(rule(for_s=60), [250.0, 250.0, 250.0])
    assert [a.severity for a in straight] == ["critical"]


def test_below_rules_on_the_sub_score() -> None:
    r = rule(indicator="score", stat="score", direction="below", warning=40.0, critical=25.0,
             for_s=0.0, hysteresis=5.0)
    alerts = feed(r, [80.0, 80.0, 30.0], indicator="score", score=30.0)
    assert [(a.severity, a.stat, a.unit, a.value) for a in alerts] == [
        ("warning", "score", "score", 30.0)]
    assert "Health score sub-score 30 in harbour" in alerts[0].message


def test_scope_and_districts_decide_where_a_rule_applies() -> None:
    assert rule().applies_to("harbour") and rule().applies_to("city")
    assert not rule(scope="districts").applies_to("city")
    assert not rule(scope="city").applies_to("harbour")
    limited = rule(districts=frozenset({"old-town"}))
    assert limited.applies_to("old-town") and not limited.applies_to("harbour")
    assert "the city" in feed(rule(for_s=0), [300.0], district="city")[0].message


def test_records_of_other_indicators_are_ignored_and_state_pickles() -> None:
    r = rule(for_s=120)
    state = r.new_state()
    assert r.on_record(state, record(0, 999.0, indicator="noise")) == []
    r.on_record(state, record(0, 180.0))
    restored = pickle.loads(pickle.dumps(state))
    assert [a.severity for a in r.on_record(restored, record(1, 180.0))] == ["warning"]


def test_the_shipped_rules_load(base_settings: Settings) -> None:
    rules = indicator_rules(base_settings.indicators.rules)
    ids = [r.rule_id for r in rules]
    assert "aqi-high" in ids and len(set(ids)) == len(ids)
    (aqi,) = [r for r in rules if r.rule_id == "aqi-high"]
    assert (aqi.warning, aqi.critical, aqi.for_s) == (151.0, 201.0, 900.0)


@pytest.mark.parametrize(("direction", "warning", "critical"),
                         [("above", 300.0, 201.0), ("below", 151.0, 201.0)])
def test_critical_must_be_beyond_warning(direction: str, warning: float, critical: float) -> None:
    with pytest.raises(ValidationError, match="must be beyond warning"):
        IndicatorRuleSettings(id="x", indicator="aqi", direction=direction, warning=warning,
                              critical=critical)


def test_a_rule_on_an_unknown_indicator_is_refused() -> None:
    with pytest.raises(ValidationError, match="'ozone' is not one of"):
        IndicatorRuleSettings(id="x", indicator="ozone", direction="above", warning=1,
                              critical=2)
