"""Who is told of an incident event: subscriptions, quiet hours, on-call, escalation targets;
and the notifier's records becoming incident events through the flow's command path."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from alerts.commands import Command, execute, notify_command
from alerts.escalation import escalate
from alerts.lifecycle import Incident, IncidentEvent, act, apply
from alerts.notify_rules import NotifyRules, decide, in_quiet_hours, notification_id, render
from models.claims import Claims
from settings.config import Settings
from settings.incidents import IncidentSettings
from settings.notifications import (
    NotificationSettings,
    QuietHours,
    notification_problems,
    unreachable_targets,
)
from settings.oncall import OncallSchedule


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


T0 = ts("2026-12-07T12:00:00+00:00")   # a Monday, noon in Lisbon (UTC in winter)

INCIDENTS = IncidentSettings.model_validate({
    "departments": [{
        "id": "water-authority", "name": "Water Authority", "sla_ack_s": 60,
        "sla_resolve_s": 3600, "escalation_repeat": 1, "escalation": [
            {"name": "on-call", "notify": ["oncall", "water-hook"]},
            {"name": "backup", "notify": ["oncall-next"], "after_s": 120}]},
        {"id": "operations", "name": "Operations", "sla_ack_s": 600, "sla_resolve_s": 3600}],
    "routing": {"rules": [{"kinds": ["water_level"], "departments": ["water-authority"]}],
                "default": ["operations"]},
})
NOTIFICATIONS = NotificationSettings.model_validate({
    "enabled": True,
    "channels": [
        {"id": "mail", "type": "email", "host": "127.0.0.1", "sender": "ops@city.example"},
        {"id": "water-hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}],
    "people": [
        {"id": "ana", "contacts": {"mail": "ana@city.example"}},
        {"id": "ben", "contacts": {"mail": "ben@city.example"}},
        {"id": "dir", "contacts": {"mail": "dir@city.example"}, "timezone": "Asia/Shanghai",
         "quiet_hours": {"start": "22:00", "end": "07:00", "min_severity": "emergency"}}],
    "subscriptions": [
        {"department": "water-authority", "channels": ["water-hook"],
         "events": ["open", "escalate", "resolve"]},
        {"person": "oncall", "departments": ["water-authority"], "events": ["open"]},
        {"person": "dir", "min_severity": "critical", "kinds": ["water_level"]}],
})
ONCALL = (OncallSchedule(department="water-authority", rotation=("ana", "ben"),
                         timezone="Europe/Lisbon", start=date(2026, 12, 7)),)
RULES = NotifyRules.of(NOTIFICATIONS, ONCALL, "Europe/Lisbon")


def opened(severity: str = "critical", at: float = T0) -> tuple[Incident, IncidentEvent]:
    details: dict[str, Any] = {"district": "harbour", "rule": "water_level.threshold",
                               "kind": "water_level", "severity": severity, "id": "alert-1",
                               "title": "High water in harbour"}
    event = IncidentEvent("inc-1", 1, at, "system", "open", None, ("water-authority",), details)
    return apply(None, event), event


def sent(incident: Incident, event: IncidentEvent) -> set[tuple[str, str, str | None]]:
    return {(n.channel, n.recipient, n.address)
            for n in decide(event, incident, RULES).notifications}


def test_an_opened_incident_reaches_the_department_webhook_the_on_call_person_and_subscribers(
) -> None:
    incident, event = opened()
    assert sent(incident, event) == {
        ("water-hook", "water-authority", None),
        ("mail", "ana", "ana@city.example"),           # on call on Monday
        ("mail", "dir", "dir@city.example"),           # 20:00 in Shanghai: not quiet yet
    }


def test_quiet_hours_hold_back_what_is_below_their_severity_in_the_person_s_zone() -> None:
    night = ts("2026-12-07T16:00:00+00:00")           # midnight in Shanghai
    incident, event = opened(at=night)
    assert ("mail", "dir", "dir@city.example") not in sent(incident, event)
    assert ("mail", "ben", "ben@city.example") not in sent(incident, event)  # ana still on call
    quiet = QuietHours.model_validate({"start": "22:00", "end": "07:00"})
    assert in_quiet_hours(quiet, at=night, timezone="Asia/Shanghai")
    assert not in_quiet_hours(quiet, at=night, timezone="Europe/Lisbon")


def test_min_severity_and_kinds_filter_subscriptions() -> None:
    incident, event = opened(severity="warning")
    assert ("mail", "dir", "dir@city.example") not in sent(incident, event)


def test_escalation_pages_the_on_call_then_the_next_person_and_repeats() -> None:
    incident, _ = opened()
    found: list[tuple[int, set[tuple[str, str, str | None]]]] = []
    for at in (T0 + 60, T0 + 120, T0 + 180, T0 + 240):
        incident, events = escalate(incident, INCIDENTS, now=at)
        found += [(int(e.details["level"]), sent(incident, e)) for e in events]
    assert [level for level, _ in found] == [1, 2, 3, 4]
    assert ("mail", "ana", "ana@city.example") in found[0][1]
    assert ("water-hook", "water-authority", None) in found[0][1]
    assert ("mail", "ben", "ben@city.example") in found[1][1]        # the next person
    assert ("mail", "ana", "ana@city.example") in found[2][1]        # round two
    incident, events = escalate(incident, INCIDENTS, now=T0 + 10_000)
    assert events == []                                              # the ladder is done


def test_an_acknowledged_incident_escalates_no_further() -> None:
    incident, _ = opened()
    incident, _ = act(incident, "acknowledge", actor="ana", at=T0 + 30)
    assert escalate(incident, INCIDENTS, now=T0 + 500) == (incident, [])


def test_notification_ids_are_deterministic_and_distinct_per_address() -> None:
    incident, event = opened()
    first = decide(event, incident, RULES).notifications
    again = decide(event, incident, RULES).notifications
    assert [n.id for n in first] == [n.id for n in again]
    assert len({n.id for n in first}) == len(first)
    assert first[0].id == notification_id(event.id, first[0].channel, first[0].recipient,
                                          first[0].address)


def test_the_notifier_s_own_events_notify_nobody_and_unknown_targets_are_reported() -> None:
    incident, event = opened()
    command = notify_command(incident.id, incident.district, {"status": "sent"}, at=T0 + 1,
                             command_id="ntf-x:sent:0")
    result, after = execute(command, incident)
    assert result.ok and after is not None
    recorded = IncidentEvent.from_record(result.event or {})
    assert recorded.action == "notify" and recorded.details["status"] == "sent"
    assert decide(recorded, after, RULES).notifications == ()
    nobody = IncidentEvent("inc-1", 2, T0 + 60, "system", "escalate", None,
                           ("water-authority",), {"notify": ["nobody"], "level": 1,
                                                  "department": "water-authority"})
    assert decide(nobody, incident, RULES).unresolved == ("nobody",)


def test_only_the_notifier_records_notify_events() -> None:
    incident, _ = opened()
    forged = Command("c-1", incident.id, incident.district, "notify", "mallory", "operator",
                     T0, details={"status": "delivered"})
    result, _ = execute(forged, incident)
    assert result.error == "forbidden"


def test_an_acknowledgement_from_a_link_names_the_notification() -> None:
    incident, _ = opened()
    who = Claims(role="dispatcher", sub="ana", iat=int(T0), exp=int(T0) + 1,
                 department="water-authority")
    command = Command.new(incident, "acknowledge", who, at=T0 + 5, command_id="ack-1")
    command = Command.from_record({**command.to_record(),
                                   "details": {"notification": "ntf-1", "via": "link"}})
    result, after = execute(command, incident)
    assert result.ok and after is not None and after.state == "acknowledged"
    assert (result.event or {})["details"]["notification"] == "ntf-1"


def test_the_message_says_what_happened_and_carries_the_link() -> None:
    incident, event = opened()
    note = decide(event, incident, RULES).notifications[0]
    subject, text = render(note, ack_url="https://ops.example/ack?t=abc")
    assert "High water in harbour" in subject and "CRITICAL" in subject
    assert "https://ops.example/ack?t=abc" in text and incident.id in text


def test_references_to_unknown_people_channels_and_departments_are_refused() -> None:
    broken = NotificationSettings.model_validate({
        "enabled": True, "people": [{"id": "ana", "contacts": {"sms": "+1"}}],
        "subscriptions": [{"person": "zed"}]})
    schedule = OncallSchedule(department="nowhere", rotation=("ana", "ghost"))
    problems = dict(notification_problems(broken, [schedule], INCIDENTS, alert_kinds=()))
    assert "notifications.people[0].contacts" in problems
    assert "notifications.subscriptions[0].person" in problems
    assert "oncall[0].department" in problems and "oncall[0].rotation" in problems
    assert "'ghost' is not a person id" in problems["oncall[0].rotation"]


def test_escalation_targets_that_reach_nobody_are_named() -> None:
    lone = NotificationSettings.model_validate({"people": [{"id": "ana"}]})
    assert unreachable_targets(lone, INCIDENTS) == [
        ("incidents.departments[0].escalation[0].notify", "water-hook")]
    assert unreachable_targets(NOTIFICATIONS, INCIDENTS) == []


def test_the_shipped_config_still_loads_with_notifications_off(base_settings: Settings) -> None:
    assert base_settings.notifications.enabled is False
    assert base_settings.reference_problems() == []
