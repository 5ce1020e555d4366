"""The incident lifecycle: what people may do in each state, the audit trail, and replay."""

from __future__ import annotations

import json
import pickle
import random
from datetime import UTC, datetime

import pytest

from alerts.incidents import IncidentGrouper
from alerts.lifecycle import (
    EventGap,
    Incident,
    IncidentEvent,
    InvalidAction,
    InvalidTransition,
    act,
    apply,
    available_actions,
    replay,
)
from alerts.rules import Alert, alert_id
from models.errors import CityheartError
from settings.incidents import IncidentSettings

T0 = 1_795_669_200.0   # 2026-11-26T05:00:00Z
SETTINGS = IncidentSettings.model_validate({
    "departments": [{"id": "water-authority", "name": "Water Authority", "sla_ack_s": 300,
                     "sla_resolve_s": 3600}],
    "routing": {"default": ["water-authority"]},
})


def _alert(ts: float, severity: str = "warning") -> dict:
    start = ts - ts % 10
    return Alert(
        id=alert_id("water_level.threshold", "harbour", "water_level", severity, start),
        rule="water_level.threshold", district="harbour", kind="water_level", severity=severity,
        value=3.8, threshold=3.5, direction="above", stat="max", unit="m", window_start=start,
        window_end=start + 10, ts=ts, message="Water level max 3.8 m in harbour",
    ).record(emitted_at=ts + 0.5)


def _opened() -> tuple[Incident, list[IncidentEvent]]:
    grouper = IncidentGrouper(SETTINGS)
    state = grouper.new_state()
    events = list(grouper.add(state, _alert(T0 + 1)).events)
    grouped = grouper.add(state, _alert(T0 + 21, "critical"))
    events += grouped.events
    assert grouped.incident is not None
    return grouped.incident, events


def test_full_lifecycle_leaves_an_audit_trail_of_who_did_what_when() -> None:
    incident, events = _opened()
    assert (incident.state, incident.severity, incident.alert_count) == ("open", "critical", 2)
    steps = [
        ("acknowledge", "ana", {}, "acknowledged"),
        ("dispatch", "ana", {"team": "pump-crew-3", "comment": "pumps to the quay"}, "dispatched"),
        ("comment", "ben", {"comment": "crew on site"}, "dispatched"),
        ("resolve", "ben", {"outcome": "confirmed", "comment": "drain cleared"}, "resolved"),
        ("close", "ops-lead", {}, "closed"),
    ]
    for number, (action, actor, arguments, state) in enumerate(steps):
        incident, event = act(incident, action, actor=actor, at=T0 + 60 * (number + 1),
                              **arguments)
        events.append(event)
        assert incident.state == state
        assert (event.action, event.actor, event.ts) == (action, actor, T0 + 60 * (number + 1))
        assert event.comment == arguments.get("comment")
        assert event.departments == ("water-authority",)
    assert [e.sequence for e in events] == list(range(1, 8))
    assert [e.id for e in events][-1] == f"{incident.id}:000007"
    assert incident.acknowledged_at == T0 + 60 and incident.acknowledged_by == "ana"
    assert incident.teams == ("pump-crew-3",) and incident.outcome == "confirmed"
    assert events[5].details == {"outcome": "confirmed", "rules": ["water_level.threshold"],
                                 "detectors": []}
    assert (incident.resolved_at, incident.closed_at) == (T0 + 240, T0 + 300)
    assert incident.updated_at == T0 + 300 and incident.sequence == 7


def test_reopen_starts_a_new_cycle() -> None:
    incident, _ = _opened()
    for action, extra in (("acknowledge", {}), ("resolve", {"outcome": "false_alarm"})):
        incident, _ = act(incident, action, actor="ana", at=T0 + 100, **extra)
    incident, event = act(incident, "reopen", actor="ops", at=T0 + 500, comment="it is back")
    assert (incident.state, incident.cycle_started_at, incident.opened_at) == (
        "open", T0 + 500, T0 + 1)
    assert incident.outcome is None and incident.acknowledged_at is None
    assert available_actions(incident) == (
        "acknowledge", "comment", "assign", "transfer", "add_department", "link", "merge")


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ((), "resolve"),
        ((), "dispatch"),
        ((), "close"),
        ((), "reopen"),
        (("acknowledge",), "acknowledge"),
        (("acknowledge", "dispatch"), "close"),
        (("acknowledge", "resolve", "close"), "resolve"),
    ],
)
def test_invalid_transitions_are_refused_naming_incident_state_and_action(
    path: tuple[str, ...], action: str
) -> None:
    incident, _ = _opened()
    for step in path:
        incident, _ = act(incident, step, actor="ana", at=T0 + 60, team="crew",
                          outcome="confirmed")
    before = incident
    with pytest.raises(InvalidTransition) as caught:
        act(incident, action, actor="ana", at=T0 + 120, team="crew", outcome="confirmed")
    message = str(caught.value)
    assert message.startswith(f"incident {incident.id!r} is {incident.state}: cannot {action} it")
    assert "(possible now: " in message
    assert caught.value.state == incident.state and isinstance(caught.value, CityheartError)
    assert incident == before


@pytest.mark.parametrize(
    ("action", "arguments", "fragment"),
    [
        ("dispatch", {}, "dispatch needs a team"),
        ("resolve", {}, "resolve needs an outcome"),
        ("resolve", {"outcome": "fixed"}, "'fixed'"),
        ("comment", {"comment": "  "}, "a comment needs a text"),
        ("escalate", {}, "unknown action 'escalate'"),
    ],
)
def test_actions_missing_what_they_need_are_refused(
    action: str, arguments: dict, fragment: str
) -> None:
    incident, _ = _opened()
    incident, _ = act(incident, "acknowledge", actor="ana", at=T0 + 60)
    with pytest.raises(InvalidAction) as caught:
        act(incident, action, actor="ana", at=T0 + 120, **arguments)
    assert fragment in str(caught.value) and incident.id in str(caught.value)


def _history() -> tuple[Incident, list[IncidentEvent]]:
    incident, events = _opened()
    for action, extra in (("acknowledge", {}), ("dispatch", {"team": "crew-1"}),
                          ("dispatch", {"team": "crew-2"}), ("comment", {"comment": "ok"}),
                          ("resolve", {"outcome": "confirmed"})):
        incident, event = act(incident, action, actor="ana", at=T0 + 60 * len(events), **extra)
        events.append(event)
    return incident, events


def test_replay_of_stored_events_rebuilds_the_incident_whatever_their_order() -> None:
    incident, events = _history()
    shuffled = events + events[2:4]
    random.Random(3).shuffle(shuffled)
    assert replay(shuffled) == incident
    assert incident.teams == ("crew-1", "crew-2")


def test_a_duplicate_event_changes_nothing_and_a_gap_is_reported() -> None:
    incident, events = _history()
    assert apply(incident, events[3]) is incident
    partial = replay(events[:3])
    with pytest.raises(EventGap, match="expected event 4, got 5"):
        apply(partial, events[4])
    with pytest.raises(EventGap, match="first event must be 'open'"):
        replay(events[1:])


def test_incidents_and_events_survive_json_and_pickle() -> None:
    incident, events = _history()
    assert pickle.loads(pickle.dumps(incident)) == incident
    assert Incident.from_record(json.loads(json.dumps(incident.to_record()))) == incident
    for event in events:
        record = json.loads(json.dumps(event.to_record()))
        assert IncidentEvent.from_record(record) == event
        assert pickle.loads(pickle.dumps(event)) == event
    assert incident.to_record()["opened_at"] == "2026-11-26T05:00:01.000Z"


def test_an_event_row_from_storage_is_read_back() -> None:
    _, events = _history()
    event = events[3]
    row = {"id": event.id, "incident_id": event.incident_id,
           "ts": datetime.fromtimestamp(event.ts, UTC), "actor": event.actor,
           "action": event.action, "comment": None,
           "details": {**event.details, "departments": list(event.departments)}}
    back = IncidentEvent.from_record(row)
    assert (back.sequence, back.ts, back.departments) == (4, event.ts, event.departments)
    assert back.details["team"] == event.details["team"]


def test_a_long_incident_keeps_its_latest_alert_ids_and_counts_them_all() -> None:
    from alerts.lifecycle import ALERT_IDS_KEPT, IncidentEvent, apply

    details = {"district": "harbour", "rule": "r", "kind": "water_level", "severity": "warning"}
    incident = apply(None, IncidentEvent("inc-1", 1, 0.0, "system", "open", None, (),
                                         {**details, "id": "a-0"}))
    for n in range(1, 3 * ALERT_IDS_KEPT):
        incident = apply(incident, IncidentEvent("inc-1", n + 1, float(n), "system", "alert",
                                                 None, (), {**details, "id": f"a-{n}"}))
    assert incident.alert_count == 3 * ALERT_IDS_KEPT
    assert len(incident.alert_ids) == ALERT_IDS_KEPT
    assert incident.alert_ids[-1] == f"a-{3 * ALERT_IDS_KEPT - 1}"
