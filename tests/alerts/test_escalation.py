"""Escalation of unacknowledged incidents on a clock the test moves; maintenance windows."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.escalation import escalate, next_due, raised, suppression_for
from alerts.incidents import IncidentGrouper
from alerts.lifecycle import Incident, act, replay
from alerts.rules import Alert, alert_id
from settings.incidents import IncidentSettings

T0 = 1_795_669_200.0   # 2026-11-26T05:00:00Z
SETTINGS = IncidentSettings.model_validate({
    "departments": [
        {"id": "water-authority", "name": "Water Authority", "sla_ack_s": 300,
         "sla_resolve_s": 7200, "escalation": [
             {"name": "shift-lead", "notify": ["water-shift-lead"]},
             {"name": "director", "notify": ["water-director", "ops-room"], "after_s": 900}]},
        {"id": "emergency-management", "name": "Emergency Management", "sla_ack_s": 120,
         "sla_resolve_s": 3600},
        {"id": "grid-operator", "name": "Grid Operator", "sla_ack_s": 600,
         "sla_resolve_s": 3600, "escalation": [
             {"name": "log-only", "notify": ["grid-log"], "raise_severity": False}]},
    ],
    "routing": {"rules": [
        {"kinds": ["water_level"], "departments": ["water-authority"]},
        {"kinds": ["power_load"], "departments": ["grid-operator"]},
        {"min_severity": "emergency", "departments": ["emergency-management"]},
    ]},
    "suppression": [{"id": "pump-works", "districts": ["harbour"],
                     "start": "2026-11-26T05:10:00Z", "end": "2026-11-26T05:30:00Z"}],
})


@dataclass
class Clock:
    """The time the test says it is."""

    now: float = T0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def _opening_events(kind: str = "water_level", district: str = "riverside") -> list:
    rule = f"{kind}.threshold"
    record = Alert(
        id=alert_id(rule, district, kind, "warning", T0), rule=rule, district=district,
        kind=kind, severity="warning", value=3.7, threshold=3.5, direction="above", stat="max",
        unit="m", window_start=T0, window_end=T0 + 10, ts=T0, message="high",
    ).record(emitted_at=T0)
    grouper = IncidentGrouper(SETTINGS)
    return list(grouper.add(grouper.new_state(), record).events)


def _incident(kind: str = "water_level", district: str = "riverside") -> Incident:
    return replay(_opening_events(kind, district))


def test_escalation_fires_when_an_incident_is_not_acknowledged_in_time() -> None:
    clock = Clock()
    incident = _incident()
    assert next_due(incident, SETTINGS) == T0 + 300
    incident, events = escalate(incident, SETTINGS, now=clock.advance(299.9))
    assert events == []
    incident, events = escalate(incident, SETTINGS, now=clock.advance(0.1))
    assert [e.action for e in events] == ["escalate"]
    first = events[0]
    assert (first.ts, first.actor, first.sequence) == (T0 + 300, "system", 2)
    assert first.details["level"] == 1 and first.details["name"] == "shift-lead"
    assert first.details["notify"] == ["water-shift-lead"]
    assert (first.details["severity_from"], first.details["severity"]) == ("warning", "critical")
    assert first.details["due_at"] == "2026-11-26T05:05:00.000Z"
    assert incident.severity == "critical" and incident.escalation_level == 1
    assert next_due(incident, SETTINGS) == T0 + 900
    incident, events = escalate(incident, SETTINGS, now=clock.advance(300))
    assert events == []
    incident, events = escalate(incident, SETTINGS, now=clock.advance(300))
    assert [e.details["name"] for e in events] == ["director"]
    assert events[0].details["notify"] == ["water-director", "ops-room"]
    assert incident.severity == "emergency"
    assert incident.departments == ("water-authority", "emergency-management")
    assert events[0].departments == incident.departments
    assert next_due(incident, SETTINGS) is None
    assert escalate(incident, SETTINGS, now=clock.advance(86400))[1] == []


def test_an_incident_acknowledged_in_time_never_escalates() -> None:
    clock = Clock()
    incident, _ = act(_incident(), "acknowledge", actor="ana", at=clock.advance(299))
    assert next_due(incident, SETTINGS) is None
    for _ in range(10):
        incident, events = escalate(incident, SETTINGS, now=clock.advance(600))
        assert events == []
    assert incident.severity == "warning"


def test_a_late_check_fires_every_step_due_in_order() -> None:
    incident = _incident()
    incident, events = escalate(incident, SETTINGS, now=T0 + 1000)
    assert [e.details["level"] for e in events] == [1, 2]
    assert [e.sequence for e in events] == [2, 3]
    assert incident.severity == "emergency"
    assert replay([*_opening_events(), *events]) == incident


def test_a_maintenance_window_holds_escalation_until_it_ends() -> None:
    incident = _incident(district="harbour")
    incident, events = escalate(incident, SETTINGS, now=T0 + 700)   # 05:11:40, in the window
    assert events == []
    incident, events = escalate(incident, SETTINGS, now=T0 + 1799)
    assert events == []
    incident, events = escalate(incident, SETTINGS, now=T0 + 1800)  # 05:30, window over
    assert [e.details["level"] for e in events] == [1, 2]


def test_reopening_restarts_the_ladder_from_the_reopen_time() -> None:
    incident, _ = escalate(_incident(), SETTINGS, now=T0 + 300)
    for action, extra in (("acknowledge", {}), ("resolve", {"outcome": "confirmed"}),
                          ("reopen", {})):
        incident, _ = act(incident, action, actor="ana", at=T0 + 2000, **extra)
    assert incident.escalation_level == 0 and next_due(incident, SETTINGS) == T0 + 2300
    incident, events = escalate(incident, SETTINGS, now=T0 + 2300)
    assert [e.details["level"] for e in events] == [1]
    assert incident.severity == "emergency"   # critical after the first ladder, one step more


def test_the_grouper_escalates_what_is_due_in_its_state() -> None:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    for district, at in (("riverside", T0), ("old-town", T0 + 200)):
        rule = "water_level.threshold"
        grouper.add(state, Alert(
            id=alert_id(rule, district, "water_level", "warning", at), rule=rule,
            district=district, kind="water_level", severity="warning", value=3.7,
            threshold=3.5, direction="above", stat="max", unit="m", window_start=at,
            window_end=at + 10, ts=at, message="high").record(emitted_at=at))
    assert grouper.next_due(state) == T0 + 300
    events = grouper.escalate(state, now=T0 + 300)
    assert [state.incidents[e.incident_id].district for e in events] == ["riverside"]
    assert grouper.next_due(state) == T0 + 500
    assert len(grouper.escalate(state, now=T0 + 500)) == 1
    assert grouper.escalate(state, now=T0 + 500) == []
    assert grouper.next_due(state) == T0 + 900


def test_a_step_may_notify_without_raising_the_severity() -> None:
    incident = _incident(kind="power_load")
    incident, events = escalate(incident, SETTINGS, now=T0 + 600)
    assert events[0].details["notify"] == ["grid-log"]
    assert incident.severity == "warning" and incident.escalation_level == 1


def test_severity_steps_stop_at_emergency() -> None:
    assert [raised(s) for s in ("warning", "critical", "emergency")] == [
        "critical", "emergency", "emergency"]


def test_suppression_matches_district_device_and_kind_within_start_and_end() -> None:
    windows = IncidentSettings.model_validate({"suppression": [
        {"id": "w1", "districts": ["harbour"], "kinds": ["noise"],
         "start": "2026-11-26T05:00:00Z", "end": "2026-11-26T06:00:00Z"},
        {"id": "w2", "devices": ["pm-7"], "start": "2026-11-26T05:00:00+01:00",
         "end": "2026-11-26T07:00:00+01:00"},
    ]}).suppression
    assert suppression_for(windows, district="harbour", at=T0, kind="noise").id == "w1"
    assert suppression_for(windows, district="harbour", at=T0, kind="pm25") is None
    assert suppression_for(windows, district="harbour", at=T0 + 3600, kind="noise") is None
    assert suppression_for(windows, district="harbour", at=T0 - 1, kind="noise") is None
    assert suppression_for(windows, district="old-town", at=T0 + 10, device="pm-7").id == "w2"
    assert suppression_for(windows, district="old-town", at=T0 - 3601, device="pm-7") is None
