"""The flow's incident step as the one writer: alerts, people's commands and escalation on a
controllable clock (the step's logic driven directly, as Bytewax drives it)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from alerts.commands import Command, CommandResult, InvalidCommand
from alerts.incidents import IncidentGrouper
from connectors.tokens import Claims
from flows.incidents import ESCALATION_CHECK_S, IncidentLogic, IncidentOutputs
from models.timefmt import iso
from settings.config import Settings

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def alert(n: int, ts: float, *, district: str = "harbour", kind: str = "water_level",
          severity: str = "warning", rule: str | None = None) -> tuple[str, dict]:
    return ("alert", {"id": f"al-{district}-{kind}-{n}", "rule": rule or f"{kind}.threshold",
                      "district": district, "kind": kind, "severity": severity, "value": 3.0,
                      "ts": iso(ts), "device_id": f"{kind}-7"})


def claims(role: str, department: str | None = None, sub: str = "ana") -> Claims:
    return Claims(role=role, sub=sub, iat=int(T), exp=int(T) + 3600, department=department)


@pytest.fixture
def clock() -> Clock:
    return Clock(T)


@pytest.fixture
def logic(base_settings: Settings, clock: Clock) -> IncidentLogic:
    grouper = IncidentGrouper(base_settings.incidents)
    return IncidentLogic(grouper, IncidentOutputs(base_settings.kafka.topics), clock, None)


def values(records: list) -> list[dict]:
    return [orjson.loads(r.value) for r in records]


def opened(logic: IncidentLogic, clock: Clock) -> dict:
    out, _ = logic.on_item(alert(1, clock.now))
    (event,) = [e for e, r in zip(values(out), out, strict=True) if r.topic is None]
    assert event["action"] == "open"
    return event["incident"]


def command(incident: dict, action: str, who: Claims, at: float, n: int = 1, **extra: str
            ) -> tuple[str, Command]:
    return ("command", Command.new(incident, action, who, at=at, command_id=f"cmd-{n}",
                                   **extra))


def test_a_storm_of_a_thousand_alerts_in_one_district_is_a_handful_of_incidents(
    logic: IncidentLogic, clock: Clock,
) -> None:
    kinds = ["water_level", "rainfall", "pm25", "pm10", "noise"]
    events = []
    for n in range(1000):
        clock.now = T + n * 3
        severity = "critical" if n % 7 == 0 else "warning"
        out, _ = logic.on_item(alert(n, clock.now, kind=kinds[n % len(kinds)],
                                     severity=severity))
        events += [e for e, r in zip(values(out), out, strict=True) if r.topic is None]
    opens = [e for e in events if e["action"] == "open"]
    assert 1 <= len(opens) <= 5, [e["incident"]["title"] for e in opens]
    alerts_joined = [e for e in events if e["action"] in ("open", "alert")]
    assert len(alerts_joined) == 1000  # every alert is in exactly one incident
    assert {e["details"]["id"] for e in alerts_joined} == {
        f"al-harbour-{kinds[n % 5]}-{n}" for n in range(1000)}


def test_the_right_dispatcher_acknowledges_and_the_event_goes_to_every_queue(
    base_settings: Settings, logic: IncidentLogic, clock: Clock,
) -> None:
    incident = opened(logic, clock)
    assert incident["departments"] == ["water-authority"]
    out, _ = logic.on_item(command(incident, "acknowledge",
                                   claims("dispatcher", "water-authority"), T + 60))
    topics = base_settings.kafka.topics
    assert [r.topic for r in out] == [None, topics.dispatch("water-authority"),
                                      topics.command_results]
    event, queued, answer = values(out)
    assert event == queued and out[0].key == out[1].key == incident["id"].encode()
    assert (event["action"], event["actor"], event["sequence"]) == ("acknowledge", "ana", 2)
    assert event["details"]["command_id"] == "cmd-1"
    assert event["incident"]["state"] == "acknowledged"
    result = CommandResult.from_record(answer)
    assert result.ok and result.event == {k: v for k, v in event.items() if k != "incident"}
    assert out[2].key == b"cmd-1"


@pytest.mark.parametrize(("action", "who", "extra", "error"), [
    ("acknowledge", claims("dispatcher", "grid-operator"), {}, "forbidden"),
    ("acknowledge", claims("viewer"), {}, "forbidden"),
    ("close", claims("dispatcher", "water-authority"), {}, "forbidden"),
    ("resolve", claims("dispatcher", "water-authority"), {"outcome": "confirmed"}, "conflict"),
    ("dispatch", claims("operator"), {}, "conflict"),
    ("comment", claims("operator"), {}, "invalid"),
    ("sing", claims("operator"), {}, "forbidden"),
])
def test_a_refused_command_changes_nothing_and_says_why(
    logic: IncidentLogic, clock: Clock, action: str, who: Claims, extra: dict, error: str,
) -> None:
    incident = opened(logic, clock)
    out, _ = logic.on_item(command(incident, action, who, T + 60, **extra))
    (answer,) = values(out)
    assert (answer["ok"], answer["error"]) == (False, error), answer
    assert answer["detail"] and answer["event"] is None
    again, _ = logic.on_item(command(incident, "acknowledge", claims("operator"), T + 61, 2))
    assert values(again)[0]["sequence"] == 2, "the refused command took no sequence number"


def test_a_command_for_an_unknown_incident_or_the_wrong_district_is_not_found(
    logic: IncidentLogic, clock: Clock,
) -> None:
    incident = opened(logic, clock)
    elsewhere = {**incident, "district": "old-town"}
    for target in ({**incident, "id": "inc-nope"}, elsewhere):
        out, _ = logic.on_item(command(target, "acknowledge", claims("operator"), T + 5))
        assert values(out)[0]["error"] == "not_found"


def test_an_unacknowledged_incident_escalates_on_the_clock_and_an_acknowledged_one_does_not(
    base_settings: Settings, logic: IncidentLogic, clock: Clock,
) -> None:
    opened(logic, clock)
    sla = next(d.sla_ack_s for d in base_settings.incidents.departments
               if d.id == "water-authority")
    # bytewax asks when to wake the step: soon, so that an injected clock is looked at often
    wake = logic.notify_at()
    assert wake is not None
    assert (wake - datetime.now(UTC)).total_seconds() <= ESCALATION_CHECK_S
    clock.now = T + sla - 1
    assert logic.on_notify()[0] == []
    clock.now = T + sla + 1
    out, _ = logic.on_notify()
    (event,) = [e for e, r in zip(values(out), out, strict=True) if r.topic is None]
    assert (event["action"], event["actor"], event["details"]["level"]) == (
        "escalate", "system", 1)
    assert event["incident"]["severity"] == "critical"
    assert event["incident"]["escalation_level"] == 1
    # acknowledged: nothing more, however late it gets
    out, _ = logic.on_item(command(event["incident"], "acknowledge",
                                   claims("dispatcher", "water-authority"), clock.now))
    assert values(out)[0]["action"] == "acknowledge"
    clock.now += 10 * sla
    assert logic.on_notify()[0] == []
    assert logic.notify_at() is None


def test_the_state_survives_a_snapshot(base_settings: Settings, logic: IncidentLogic,
                                       clock: Clock) -> None:
    incident = opened(logic, clock)
    logic.on_item(command(incident, "acknowledge", claims("operator"), T + 30))
    resumed = IncidentLogic(IncidentGrouper(base_settings.incidents),
                            IncidentOutputs(base_settings.kafka.topics), clock, logic.snapshot())
    out, _ = resumed.on_item(command(incident, "resolve", claims("operator"), T + 90, 2,
                                     outcome="false_alarm"))
    event = values(out)[0]
    assert (event["sequence"], event["incident"]["state"]) == (3, "resolved")
    assert event["details"]["detectors"] == ["water_level-7"]


def test_command_records_are_checked_field_by_field() -> None:
    good = Command.new({"id": "inc-1", "district": "harbour"}, "comment", claims("operator"),
                       at=T, command_id="cmd-9", comment="  hello  ").to_record()
    assert good["comment"] == "hello"
    assert Command.from_record(good).to_record() == good
    for broken, named in [({**good, "actor": ""}, "actor"), ({**good, "team": 3}, "team"),
                          ({**good, "requested_at": "soon"}, "requested_at"), ([], "object")]:
        with pytest.raises(InvalidCommand, match=named):
            Command.from_record(broken)


def test_a_restarted_step_catches_up_with_what_it_wrote_after_its_snapshot(
    base_settings: Settings, logic: IncidentLogic, clock: Clock,
) -> None:
    incident = opened(logic, clock)
    snapshot = logic.snapshot()
    written = []
    for n in (2, 3):
        out, _ = logic.on_item(alert(n, T + n))
        written += [r for r in out if r.topic is None]
    out, _ = logic.on_item(command(incident, "acknowledge", claims("operator"), T + 10))
    written += [r for r in out if r.topic is None]
    assert [orjson.loads(r.value)["sequence"] for r in written] == [2, 3, 4]
    # the flow died; its state comes back from the snapshot, the topic still holds 2, 3, 4
    restarted = IncidentLogic(IncidentGrouper(base_settings.incidents),
                              IncidentOutputs(base_settings.kafka.topics), clock, snapshot)
    for record in written:
        logged = orjson.loads(record.value)
        assert restarted.on_item(("logged", {**logged, "district": "harbour"}))[0] == []
    # the replayed alerts are known now: nothing is numbered over what the topic holds
    assert restarted.on_item(alert(2, T + 2))[0] == []
    out, _ = restarted.on_item(alert(5, T + 20))
    (event,) = [orjson.loads(r.value) for r in out if r.topic is None]
    assert (event["sequence"], event["incident"]["state"]) == (5, "acknowledged")
    # and in normal running the step's own events read back change nothing
    assert restarted.on_item(("logged", {**event, "district": "harbour"}))[0] == []
    assert restarted.snapshot().incidents[incident["id"]].sequence == 5


def test_a_command_read_again_after_a_restart_is_not_applied_twice(
    base_settings: Settings, logic: IncidentLogic, clock: Clock,
) -> None:
    incident = opened(logic, clock)
    comment = command(incident, "comment", claims("operator"), T + 5, 7, comment="on it")
    out, _ = logic.on_item(comment)
    (written,) = [r for r in out if r.topic is None]
    assert logic.on_item(comment)[0] == [], "the same command again changes nothing"
    # restarted from a snapshot taken before it: the topic's event teaches the state the id
    restarted = IncidentLogic(IncidentGrouper(base_settings.incidents),
                              IncidentOutputs(base_settings.kafka.topics), clock,
                              IncidentGrouper(base_settings.incidents).new_state())
    restarted.on_item(alert(1, T))
    restarted.on_item(("logged", {**orjson.loads(written.value), "district": "harbour"}))
    assert restarted.on_item(comment)[0] == []
    assert restarted.snapshot().incidents[incident["id"]].sequence == 2
