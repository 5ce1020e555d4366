"""Incidents people open and hand over: reports, assignment, transfer, another department,
links and merges, each an event with its actor, and who may do which."""

from __future__ import annotations

import pickle

import pytest

from alerts.access import Forbidden, allowed_actions, authorize
from alerts.commands import Command, execute
from alerts.hand_opened import HandOpened, InvalidHandOpened, hand_opened_incident_id, open_by_hand
from alerts.incidents import GroupingState
from alerts.lifecycle import Incident, InvalidAction, InvalidTransition, act, replay
from models.claims import Claims
from settings.config import Settings

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z
REPORT = {"kind": "water_level", "title": "Water over the quay at pier 4",
          "severity": "critical", "district": "harbour", "description": "caller saw it rise",
          "lat": 37.80, "lon": -122.40, "reporter": "harbour master (phone)"}


def claims(role: str, department: str | None = None, sub: str = "olga") -> Claims:
    return Claims(role=role, sub=sub, iat=int(T), exp=int(T) + 3600, department=department)


def create(settings: Settings, who: Claims, report: dict | None = None,
           command_id: str = "cmd-1", known=None) -> tuple:
    report = REPORT if report is None else report
    command = Command(id=command_id, incident_id=hand_opened_incident_id(command_id),
                      district=report["district"], action="create", actor=who.sub,
                      role=who.role, requested_at=T, department=who.department, report=report)
    return execute(command, known, settings.incidents)


def do(settings: Settings, incident, action: str, who: Claims, **args):
    command = Command.new(incident, action, who, at=T + incident.sequence,
                          command_id=f"cmd-{action}-{incident.sequence}", **args)
    return execute(command, incident, settings.incidents)


def test_a_report_opens_an_incident_routed_like_an_alert_with_who_reported_it(
    base_settings: Settings,
) -> None:
    result, incident = create(base_settings, claims("operator"))
    assert result.ok, result.detail
    assert (result.event["action"], result.event["actor"]) == ("open", "olga")
    assert incident.id == hand_opened_incident_id("cmd-1")
    # water_level at critical: the water authority and emergency management, as for an alert
    assert incident.departments == ("water-authority", "emergency-management")
    assert (incident.state, incident.severity, incident.kind, incident.rule) == (
        "open", "critical", "water_level", "report")
    assert (incident.reporter, incident.description, incident.lat, incident.lon) == (
        "harbour master (phone)", "caller saw it rise", 37.80, -122.40)
    assert incident.alert_count == 0 and incident.title == REPORT["title"]
    # the same command applied again finds its incident there: nothing new
    again, _ = create(base_settings, claims("operator"), known=incident)
    assert again.error == "conflict"


def test_a_report_is_refused_naming_what_is_wrong(base_settings: Settings) -> None:
    viewer, _ = create(base_settings, claims("viewer"))
    assert viewer.error == "forbidden" and "operator" in str(viewer.detail)
    bad, _ = create(base_settings, claims("operator"), {**REPORT, "severity": "bad"})
    assert bad.error == "invalid" and "'warning', 'critical', 'emergency'" in str(bad.detail)
    with pytest.raises(InvalidHandOpened, match="needs a title"):
        HandOpened.from_record({**REPORT, "title": "  "})
    with pytest.raises(InvalidHandOpened, match="both lat and lon"):
        HandOpened.from_record({**REPORT, "lon": None})
    # a dispatcher's report is routed to their department too, so they see what they opened
    own, incident = create(base_settings, claims("dispatcher", "traffic-police"),
                           {**REPORT, "kind": "noise", "severity": "warning"})
    assert own.ok and incident.departments == ("environment-bureau", "traffic-police")


def test_assign_transfer_and_add_a_department_are_events_with_their_actor(
    base_settings: Settings,
) -> None:
    _, incident = create(base_settings, claims("operator"))
    operator = claims("operator")
    result, incident = do(base_settings, incident, "assign", operator, target="wei")
    assert result.ok and incident.assignee == "wei"
    # a dispatcher of the water authority hands it to the grid operator: it leaves them
    water = claims("dispatcher", "water-authority", sub="ana")
    result, incident = do(base_settings, incident, "transfer", water, target="grid-operator",
                          comment="pump station power cut")
    assert result.ok, result.detail
    assert incident.departments == ("grid-operator", "emergency-management")
    assert incident.assignee is None
    assert result.event["details"] == {"department": "grid-operator", "from": "water-authority",
                                       "command_id": "cmd-transfer-2"}
    assert (result.event["actor"], result.event["comment"]) == ("ana", "pump station power cut")
    # ... and may no longer act on it
    refused, _ = do(base_settings, incident, "assign", water, target="ana")
    assert refused.error == "forbidden" and "not to department 'water-authority'" in str(
        refused.detail)
    # unknown departments are refused naming the known ones; adding one needs a reason
    unknown, _ = do(base_settings, incident, "transfer", operator, target="fire-brigade")
    assert unknown.error == "invalid" and "'traffic-police'" in str(unknown.detail)
    no_reason, _ = do(base_settings, incident, "add_department", operator, target="operations")
    assert no_reason.error == "invalid" and "reason" in str(no_reason.detail)
    grid = claims("dispatcher", "grid-operator", sub="gus")
    result, incident = do(base_settings, incident, "add_department", grid, target="operations",
                          comment="road closures needed")
    assert result.ok and incident.departments[-1] == "operations"
    result, incident = do(base_settings, incident, "acknowledge", grid)
    result, incident = do(base_settings, incident, "resolve", grid, outcome="confirmed")
    assert incident.state == "resolved"


def test_the_events_of_a_handover_rebuild_the_incident() -> None:
    incident, opened = open_by_hand(HandOpened.from_record(REPORT), incident_id="inc-r1",
                                   actor="olga", at=T,
                                   departments=("water-authority", "emergency-management"))
    events = [opened]
    for action, args in (("assign", {"target": "wei"}),
                         ("transfer", {"target": "traffic-police"}),
                         ("link", {"target": "inc-other"})):
        incident, event = act(incident, action, actor="olga", at=T + incident.sequence, **args)
        events.append(event)
    rebuilt = replay(reversed(events))
    assert rebuilt == incident
    assert rebuilt.departments == ("traffic-police", "emergency-management")
    assert (rebuilt.links, rebuilt.assignee) == (("inc-other",), None)


def test_merge_closes_the_duplicate_and_is_for_operators(base_settings: Settings) -> None:
    _, incident = create(base_settings, claims("operator"))
    water = claims("dispatcher", "water-authority", sub="ana")
    refused, _ = do(base_settings, incident, "merge", water, target="inc-main")
    assert refused.error == "forbidden" and "dispatchers may only" in str(refused.detail)
    with pytest.raises(InvalidAction, match="itself"):
        act(incident, "link", actor="olga", at=T, target=incident.id)
    result, merged = do(base_settings, incident, "merge", claims("operator"), target="inc-main")
    assert result.ok
    assert (merged.state, merged.merged_into, merged.links) == ("closed", "inc-main",
                                                                ("inc-main",))
    with pytest.raises(InvalidTransition):
        act(merged, "assign", actor="olga", at=T, target="wei")
    assert "merge" not in allowed_actions(claims("operator"), merged)
    assert "transfer" in allowed_actions(water, incident)
    with pytest.raises(Forbidden):
        authorize(claims("dispatcher", "traffic-police"), "assign", incident)


def test_a_snapshot_pickled_before_these_fields_still_loads() -> None:
    """Recovery snapshots pickle Incidents and GroupingStates: one taken by the version before
    the handover fields (their values in field order, up to ``sequence``; a state without
    ``suppressions``) loads with the new fields at their defaults."""
    incident, _ = open_by_hand(HandOpened.from_record(REPORT), incident_id="inc-old", actor="olga",
                              at=T, departments=("water-authority",))
    old_fields = [getattr(incident, name) for name in (
        "id", "district", "rule", "kind", "title", "state", "severity", "departments",
        "opened_at", "cycle_started_at", "updated_at", "first_alert_at", "last_alert_at",
        "alert_count", "alert_ids", "kinds", "rules", "detectors", "correlations",
        "acknowledged_at", "acknowledged_by", "teams", "resolved_at", "outcome", "closed_at",
        "escalation_level", "sequence")]
    loaded = Incident.__new__(Incident)
    loaded.__setstate__(old_fields)
    assert loaded.sequence == 1 and (loaded.assignee, loaded.links) == (None, ())
    state = GroupingState.__new__(GroupingState)
    state.__setstate__((None, {"incidents": {"inc-old": loaded}, "commands": {}}))
    assert state.suppressions == {} and state.incidents["inc-old"].id == "inc-old"
    assert pickle.loads(pickle.dumps(state)).incidents == state.incidents
