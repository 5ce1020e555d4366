"""Who sees what on the feed, and who may act on an incident: roles from real signed tokens."""

from __future__ import annotations

import pytest

from alerts.access import Forbidden, allowed_actions, authorize, view
from alerts.incidents import IncidentGrouper
from alerts.lifecycle import Incident, IncidentEvent, act
from alerts.rules import Alert, alert_id
from connectors.tokens import Claims, issue_token, verify_token
from models.timefmt import iso
from settings.incidents import IncidentSettings

T0 = 1_795_669_200.0
SECRET = "feed-secret-for-the-access-tests"
SETTINGS = IncidentSettings.model_validate({
    "departments": [
        {"id": "water-authority", "name": "Water Authority", "sla_ack_s": 300,
         "sla_resolve_s": 7200},
        {"id": "traffic-police", "name": "Traffic Police", "sla_ack_s": 300,
         "sla_resolve_s": 3600},
    ],
    "routing": {"rules": [{"kinds": ["water_level"], "departments": ["water-authority"]},
                          {"kinds": ["traffic_speed"], "departments": ["traffic-police"]}]},
})


def _claims(role: str, department: str | None = None, sub: str = "someone") -> Claims:
    token = issue_token(role=role, department=department, sub=sub, secret=SECRET, now=T0,
                        ttl_s=3600)
    return verify_token(token, secret=SECRET, now=T0 + 1)


OPERATOR = _claims("operator", sub="olga")
WATER = _claims("dispatcher", "water-authority", sub="ana")
TRAFFIC = _claims("dispatcher", "traffic-police", sub="tom")
VIEWER = _claims("viewer", sub="lobby-screen")


def _incident() -> Incident:
    rule = "water_level.threshold"
    record = Alert(
        id=alert_id(rule, "harbour", "water_level", "critical", T0), rule=rule,
        district="harbour", kind="water_level", severity="critical", value=4.7, threshold=4.5,
        direction="above", stat="max", unit="m", window_start=T0, window_end=T0 + 10, ts=T0,
        message="Water level max 4.7 m in harbour",
    ).record(emitted_at=T0)
    record |= {"detector": "wl-harbour-007", "lat": 48.14101, "lon": 11.65502}
    grouper = IncidentGrouper(SETTINGS)
    grouped = grouper.add(grouper.new_state(), record)
    assert grouped.incident is not None
    return grouped.incident


def _message(kind: str, record: dict, seq: int = 7) -> dict:
    return {"type": kind, "seq": seq, "time": iso(T0 + 5), **record}


def test_full_lifecycle_by_the_dispatcher_of_the_department() -> None:
    incident = _incident()
    steps = [("acknowledge", {}), ("dispatch", {"team": "pump-crew-3"}),
             ("comment", {"comment": "crew on site"}), ("resolve", {"outcome": "confirmed"})]
    for number, (action, extra) in enumerate(steps):
        assert action in allowed_actions(WATER, incident)
        authorize(WATER, action, incident)
        with pytest.raises(Forbidden) as caught:
            authorize(TRAFFIC, action, incident)
        assert str(caught.value) == (
            f"'tom' (dispatcher of 'traffic-police') may not {action} incident "
            f"'{incident.id}': it is routed to ['water-authority'], not to department "
            "'traffic-police'")
        with pytest.raises(Forbidden, match="role 'viewer' takes no actions"):
            authorize(VIEWER, action, incident)
        incident, _ = act(incident, action, actor=WATER.sub, at=T0 + 60 * number, **extra)
    assert incident.state == "resolved" and allowed_actions(TRAFFIC, incident) == ()
    with pytest.raises(Forbidden, match="dispatchers may only acknowledge, dispatch, comment"):
        authorize(WATER, "close", incident)
    assert allowed_actions(WATER, incident) == ("comment",)
    assert allowed_actions(OPERATOR, incident) == ("comment", "close", "reopen")
    authorize(OPERATOR, "close", incident)


def test_operator_and_viewer_see_the_same_incident_with_the_right_fields_masked() -> None:
    incident = _incident()
    incident, _ = act(incident, "acknowledge", actor="ana", at=T0 + 30)
    message = _message("incident", incident.to_record())
    operator, viewer = view(OPERATOR, message), view(VIEWER, message)
    assert operator == message
    assert viewer is not None
    for same in ("id", "state", "severity", "district", "kind", "title", "opened_at",
                 "alert_count", "departments", "seq", "type"):
        assert viewer[same] == operator[same]
    assert operator["detectors"] == ["wl-harbour-007"] and operator["acknowledged_by"] == "ana"
    for hidden in ("detectors", "alert_ids", "acknowledged_by", "teams", "rules"):
        assert hidden not in viewer
    assert "wl-harbour-007" not in str(viewer) and "ana" not in str(viewer)


def test_viewers_get_no_comments_or_names_from_incident_events() -> None:
    incident = _incident()
    incident, _ = act(incident, "acknowledge", actor="ana", at=T0 + 30)
    _, event = act(incident, "resolve", actor="ana", at=T0 + 90, outcome="false_alarm",
                   comment="Mr Smith at Quay 4 flushed the gauge")
    message = _message("incident_event", event.to_record())
    assert view(OPERATOR, message) == message
    assert view(WATER, message) == message
    viewer = view(VIEWER, message)
    assert viewer == {"type": "incident_event", "seq": 7, "time": message["time"],
                      "id": event.id, "incident_id": incident.id, "sequence": event.sequence,
                      "ts": message["ts"], "action": "resolve",
                      "departments": ["water-authority"], "details": {"outcome": "false_alarm"}}
    assert view(TRAFFIC, message) is None


def test_the_open_event_hides_the_device_from_viewers() -> None:
    opened = IncidentEvent.from_record({
        "id": "inc-1:000001", "incident_id": "inc-1", "ts": iso(T0), "actor": "system",
        "action": "open", "departments": ["water-authority"],
        "details": {"detector": "wl-harbour-007", "severity": "critical", "rule": "r"}})
    viewer = view(VIEWER, _message("incident_event", opened.to_record()))
    assert viewer is not None and viewer["details"] == {"severity": "critical"}


def test_vital_signs_reach_everyone_and_viewers_lose_devices_and_places() -> None:
    vital = _message("vital", {"district": "harbour", "kind": "water_level", "unit": "m",
                               "count": 12, "mean": 3.1, "devices": 4})
    for claims in (OPERATOR, WATER, TRAFFIC, VIEWER):
        assert view(claims, vital) == vital
    indicator = _message("indicator", {
        "record": "indicator", "district": "harbour", "indicator": "crowd", "kind": "crowd",
        "value": 3.2, "level": "busy",
        "details": {"area": "crowd-harbour-002", "density": 3.2, "safe_density": 2.0},
        "components": [{"name": "x", "station": "wl-9", "location": [11.6, 48.1], "v": 1}],
    })
    assert view(WATER, indicator) == indicator
    viewer = view(VIEWER, indicator)
    assert viewer is not None
    assert viewer["details"] == {"density": 3.2, "safe_density": 2.0}
    assert viewer["components"] == [{"name": "x", "v": 1}]
    assert viewer["value"] == 3.2 and viewer["level"] == "busy"


def test_device_health_tells_viewers_how_many_devices_but_not_which() -> None:
    health = _message("indicator", {
        "record": "indicator", "district": "harbour", "indicator": "device_health",
        "kind": "device_health", "value": 0.5, "level": "poor",
        "details": {"expected": 4, "reporting": 2, "usable": 2, "share": 0.5, "confident": False,
                    "silent": ["pm25-hb-1", "pm25-hb-2"], "stuck": ["nz-hb-3"],
                    "out_of_range": ["wl-hb-4"]},
    })
    assert view(OPERATOR, health) == health
    viewer = view(VIEWER, health)
    assert viewer is not None
    assert viewer["details"] == {"expected": 4, "reporting": 2, "usable": 2, "share": 0.5,
                                 "confident": False}
    assert "hb-" not in str(viewer)


def test_alerts_and_kpis_follow_the_department() -> None:
    alert = _message("alert", {"id": "a1", "district": "harbour", "kind": "water_level",
                               "departments": ["water-authority"]})
    kpi = _message("kpi", {"department": "water-authority", "opened": 3})
    assert view(WATER, alert) == alert and view(WATER, kpi) == kpi
    assert view(TRAFFIC, alert) is None and view(TRAFFIC, kpi) is None
    assert view(VIEWER, alert) is None and view(VIEWER, kpi) is None
    assert view(OPERATOR, alert) == alert and view(OPERATOR, kpi) == kpi
    unrouted = _message("alert", {"id": "a2", "district": "harbour", "kind": "noise"})
    assert view(WATER, unrouted) is None


def test_control_messages_reach_everyone_and_unknown_types_only_operators() -> None:
    heartbeat = {"type": "heartbeat", "time": iso(T0)}
    for claims in (OPERATOR, WATER, VIEWER):
        assert view(claims, heartbeat) == heartbeat
    odd = _message("debug_dump", {"district": "harbour", "kind": "x", "secret": 1})
    assert view(OPERATOR, odd) == odd
    assert view(WATER, odd) is None and view(VIEWER, odd) is None
