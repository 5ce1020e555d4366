"""People teach the flow's anomaly detectors: an anomaly incident resolved as a false alarm
stops that harmless pattern alerting again, a real anomaly still fires, and reopening the
incident undoes it. Driven through the district state's Detectors as the flow drives them,
with the incident records the flow itself writes."""

from __future__ import annotations

import math
import pickle
import random

import orjson
import pytest

from alerts.anomaly_rules import AnomalyRule
from alerts.feedback import DetectorFeedback, detector_feedback
from alerts.incidents import IncidentGrouper
from alerts.lifecycle import act
from connectors.kafka import KafkaRecord
from flows.anomaly import Detectors
from flows.incidents import IncidentOutputs
from flows.steps import Feedback
from models.windows import Window
from settings.config import Settings
from settings.loader import load
from tests.support import CONFIG

T0 = 1_795_651_200.0   # 2026-11-26T00:00:00Z
BLOCK = 300.0
PER_DAY = 288
SERIES = "riverside/water_pressure"
# a harmless +bump (a valve exercised) on days 5, 7, 8 and 9 at irregular times
BUMPS = [int(day * PER_DAY + hour * 12) for day, hour in ((5, 13.0), (7, 3.2), (8, 17.7), (9, 9.3))]
SPIKE = 11 * PER_DAY + 16 * 12   # a real anomaly: far beyond the bumps


def value(i: int, rng: random.Random) -> float:
    phase = (i % PER_DAY) / PER_DAY - 8.0 / 24.0
    v = 5.0 + 1.0 * math.cos(2.0 * math.pi * phase) + rng.gauss(0.0, 0.2)
    v += 2.0 if i in BUMPS else 0.0
    return v + (4.5 if i == SPIKE else 0.0)


def window(i: int, rng: random.Random) -> Window:
    ts = T0 + i * BLOCK
    return Window("riverside", "water_pressure", ts, ts + BLOCK, value(i, rng), ts + 1, "wp-1")


@pytest.fixture(scope="module")
def rule(base_settings: Settings) -> AnomalyRule:
    assert base_settings.anomaly.interval_s == BLOCK
    return AnomalyRule.from_settings(base_settings.anomaly, base_settings.kinds)


def alerted_points(rule: AnomalyRule, detectors: Detectors, teach: dict[int, object]) -> list[int]:
    """Feed 12 days; at point i in ``teach`` hand the detectors that feedback (or a callable
    making it from the alerts so far). The points that alerted."""
    rng = random.Random(3)
    alerted: list[int] = []
    alerts: list[dict] = []
    for i in range(12 * PER_DAY):
        if i in teach:
            lesson = teach[i]
            feedback = lesson(alerts) if callable(lesson) else lesson
            assert detectors.on_feedback(feedback), "the feedback changed something"
        for alert in detectors.on_window(rule, window(i, rng)):
            alerts.append(alert.record(emitted_at=T0))
            alerted.append(i)
    return alerted


def false_alarm(alerts: list[dict]) -> DetectorFeedback:
    """What the flow reads back once an operator resolves the bump's incident as a false alarm."""
    record = incident_records(alerts, "false_alarm")[-1]
    feedback = detector_feedback(orjson.loads(record.value))
    assert feedback is not None and feedback.false_alarm
    return feedback


def incident_records(alerts: list[dict], outcome: str, *, reopen: bool = False
                     ) -> list[KafkaRecord]:
    settings = load(CONFIG, env={})
    grouper, outputs = IncidentGrouper(settings.incidents), IncidentOutputs(settings.kafka.topics)
    state = grouper.new_state()
    records: list[KafkaRecord] = []
    for alert in alerts:
        grouped = grouper.add(state, alert)
        records += [r for e in grouped.events for r in outputs.event_records(e, grouped.incident)]
    (incident,) = state.incidents.values()
    resolved, event = act(incident, "acknowledge", actor="ops", at=incident.last_alert_at + 60)
    resolved, event = act(resolved, "resolve", actor="ops", at=incident.last_alert_at + 120,
                          outcome=outcome)
    records += outputs.event_records(event, resolved)
    if reopen:
        reopened, event = act(resolved, "reopen", actor="ops", at=incident.last_alert_at + 180)
        records += outputs.event_records(event, reopened)
    return [r for r in records if r.topic is None]


def test_the_harmless_bump_alerts_again_and_again_unless_someone_says_so(
    rule: AnomalyRule,
) -> None:
    untaught = alerted_points(rule, Detectors(), {})
    assert BUMPS[0] in untaught and SPIKE in untaught
    # it recurs; the alert rate (models.anomaly.alarms.AlertRate) discounts the crowded later
    # bumps on its own, but only the operator's word stops them all (the next test)
    assert any(b in untaught for b in BUMPS[1:]), "it recurs"


def test_a_false_alarm_stops_recurring_while_a_real_anomaly_still_fires(
    rule: AnomalyRule,
) -> None:
    taught = alerted_points(rule, Detectors(), {BUMPS[0] + 3: false_alarm})
    assert BUMPS[0] in taught
    assert not any(b in taught for b in BUMPS[1:]), "the bump no longer alerts"
    assert SPIKE in taught, "a real anomaly still does"


def test_reopening_the_incident_undoes_the_lesson(rule: AnomalyRule) -> None:
    untaught = alerted_points(rule, Detectors(), {})
    lesson: dict[str, DetectorFeedback] = {}

    def learn(alerts: list[dict]) -> DetectorFeedback:
        lesson["given"] = false_alarm(alerts)
        return lesson["given"]

    def unlearn(_alerts: list[dict]) -> DetectorFeedback:
        given = lesson["given"]
        return DetectorFeedback(given.district, given.incident_id, given.detectors,
                                given.since, given.until, false_alarm=False)

    undone = alerted_points(rule, Detectors(), {BUMPS[0] + 3: learn, BUMPS[0] + 6: unlearn})
    assert undone == untaught


def test_the_lesson_rides_in_the_snapshot(rule: AnomalyRule) -> None:
    detectors = Detectors()
    rng = random.Random(3)
    alerts = []
    for i in range(BUMPS[0] + 3):
        alerts += [a.record(emitted_at=T0) for a in detectors.on_window(rule, window(i, rng))]
    detectors.on_feedback(false_alarm(alerts))
    resumed = pickle.loads(pickle.dumps(detectors))
    detector = resumed.get(SERIES)
    assert detector is not None and len(detector.false_alarms) == 1
    given = false_alarm(alerts)
    assert resumed.on_feedback(given) == [], "the same record read again marks nothing twice"
    undo = DetectorFeedback(given.district, given.incident_id, given.detectors, given.since,
                            given.until, false_alarm=False)
    assert resumed.on_feedback(undo) and detector.false_alarms == ()


def test_only_anomaly_incidents_resolved_as_false_alarms_teach(rule: AnomalyRule) -> None:
    threshold_alert = {"id": "al-1", "rule": "water_pressure.threshold", "district": "riverside",
                       "kind": "water_pressure", "severity": "warning", "value": 9.0,
                       "ts": "2026-11-26T05:00:00Z"}
    records = incident_records([threshold_alert], "false_alarm")
    assert Feedback()(records) == []
    anomaly = {**threshold_alert, "id": "al-2", "rule": "anomaly.water_pressure",
               "detector": SERIES}
    assert Feedback()(incident_records([anomaly], "confirmed")) == []
    (taught,) = Feedback()(incident_records([anomaly], "false_alarm"))
    assert (taught.detectors, taught.false_alarm) == ((SERIES,), True)
    *_, reopened = Feedback()(incident_records([anomaly], "false_alarm", reopen=True))
    assert reopened.false_alarm is False
