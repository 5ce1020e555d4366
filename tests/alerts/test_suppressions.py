"""Maintenance windows added at run time, as the flow's incident step applies them: alerts they
cover open and join nothing, incidents they cover do not escalate and say so in their timeline,
ending one early lets both happen again; only operators manage them."""

from __future__ import annotations

import orjson
import pytest

from alerts.commands import Command
from alerts.incidents import IncidentGrouper
from alerts.suppressions import InvalidWindow, window_from_record
from flows.incidents import IncidentLogic, IncidentOutputs
from models.claims import Claims
from models.timefmt import iso
from settings.config import Settings
from tests.alerts.test_incident_commands import Clock, T, alert, claims

OPERATOR = claims("operator", sub="olga")


def window_command(action: str, who: Claims, at: float, n: int, *, district: str = "harbour",
                   window: dict | None = None, target: str | None = None) -> tuple:
    return ("command", Command(
        id=f"cmd-w{n}", incident_id=f"suppression:{(window or {}).get('id', target)}",
        district=district, action=action, actor=who.sub, role=who.role, requested_at=at,
        department=who.department, target=target, window=window))


def split(out: list) -> tuple[list[dict], list[dict]]:
    """(incident events, command answers) of the step's output records."""
    records = [(r.topic, orjson.loads(r.value)) for r in out]
    events = [v for t, v in records if t is None]
    answers = [v for t, v in records if t is not None and "command_id" in v]
    return events, answers


@pytest.fixture
def setup(base_settings: Settings) -> tuple[IncidentLogic, Clock]:
    clock = Clock(T)
    logic = IncidentLogic(IncidentGrouper(base_settings.incidents),
                          IncidentOutputs(base_settings.kafka.topics), clock, None)
    return logic, clock


def test_a_window_silences_alerts_and_escalation_until_it_is_ended(
    base_settings: Settings, setup: tuple[IncidentLogic, Clock],
) -> None:
    logic, clock = setup
    events, _ = split(logic.on_item(alert(1, T))[0])
    incident_id = events[0]["incident_id"]
    pumps = {"id": "pump-works", "districts": ["harbour"], "start": iso(T + 10),
             "end": iso(T + 7200), "reason": "pump station maintenance"}
    clock.now = T + 10
    events, (answer,) = split(logic.on_item(window_command("suppress", OPERATOR, T + 10, 1,
                                                           window=pumps))[0])
    assert answer["ok"] and answer["data"]["incidents"] == [incident_id]
    (marked,) = events
    assert (marked["action"], marked["actor"], marked["comment"]) == (
        "suppress", "olga", "pump station maintenance")
    assert marked["details"]["window"] == "pump-works"
    assert marked["details"]["end"] == iso(T + 7200)
    # an alert it covers opens nothing and joins nothing
    events, _ = split(logic.on_item(alert(2, T + 20, kind="rainfall"))[0])
    assert events == []
    # nor does the incident escalate while it lasts, however late it gets
    sla = base_settings.incidents.department("water-authority").sla_ack_s
    clock.now = T + 3 * sla
    assert split(logic.on_notify()[0])[0] == []
    # dispatchers may list windows, not add or end them
    water = claims("dispatcher", "water-authority")
    _, (listed,) = split(logic.on_item(window_command("list_suppressions", water, clock.now, 2,
                                                      target="list"))[0])
    assert [w["id"] for w in listed["data"]["windows"]] == ["pump-works"]
    _, (refused,) = split(logic.on_item(window_command("end_suppression", water, clock.now, 3,
                                                       target="pump-works"))[0])
    assert refused["error"] == "forbidden" and "only operators" in refused["detail"]
    # ended early: the incident says so, and escalates on its next check
    events, (ended,) = split(logic.on_item(window_command("end_suppression", OPERATOR,
                                                          clock.now, 4, target="pump-works"))[0])
    assert ended["ok"] and [e["action"] for e in events] == ["unsuppress"]
    escalated, _ = split(logic.on_notify()[0])
    assert escalated and {e["action"] for e in escalated} == {"escalate"}
    _, (listed,) = split(logic.on_item(window_command("list_suppressions", OPERATOR,
                                                      clock.now, 5, target="list"))[0])
    assert listed["data"]["windows"] == []
    # the command read again (a restart) changes nothing
    assert logic.on_item(window_command("end_suppression", OPERATOR, clock.now, 4,
                                        target="pump-works"))[0] == []
    events, _ = split(logic.on_item(alert(3, clock.now, kind="rainfall"))[0])
    assert [e["action"] for e in events] == ["alert"]


def test_a_window_is_refused_naming_what_is_wrong(setup: tuple[IncidentLogic, Clock]) -> None:
    logic, _ = setup
    bad = {"id": "x", "districts": ["harbour"], "start": iso(T + 60), "end": iso(T)}
    _, (answer,) = split(logic.on_item(window_command("suppress", OPERATOR, T, 1, window=bad))[0])
    assert answer["error"] == "invalid" and "must be after start" in answer["detail"]
    with pytest.raises(InvalidWindow, match="districts or devices"):
        window_from_record({"id": "x", "start": iso(T), "end": iso(T + 60)})
    elsewhere = {"id": "x", "districts": ["old-town"], "start": iso(T), "end": iso(T + 60)}
    _, (answer,) = split(logic.on_item(window_command("suppress", OPERATOR, T, 2,
                                                      window=elsewhere))[0])
    assert answer["error"] == "invalid" and "'harbour'" in answer["detail"]
