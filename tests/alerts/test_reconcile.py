"""Incident ids name their log; history and the log are reconciled when the flow starts."""

from __future__ import annotations

import orjson
import pytest

from alerts.commands import Command, CommandResult
from alerts.incidents import IncidentGrouper, incident_id
from alerts.lifecycle import Incident, act
from alerts.reconcile import LOST_LOG, LOST_TAIL, reconcile
from connectors.tokens import Claims
from flows.incidents import QUIET_S, IncidentLogic, IncidentOutputs
from models.timefmt import iso
from settings.config import Settings

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z
NOW = T + 3600.0
ANA = Claims(role="dispatcher", sub="ana", iat=0, exp=2**40, department="environment-bureau")


def alert(n: int, ts: float, district: str = "harbour") -> dict:
    return {"id": f"al-{district}-{n}", "rule": "pm25.threshold", "district": district,
            "kind": "pm25", "severity": "warning", "value": 90.0, "ts": iso(ts)}


def opened(settings: Settings, n: int = 0, *, log: str = "", alerts: int = 1) -> Incident:
    grouper = IncidentGrouper(settings.incidents, log=log)
    state = grouper.new_state()
    for k in range(alerts):
        grouped = grouper.add(state, alert(n * 100 + k, T + n * 1000 + k))
    assert grouped.incident is not None
    return grouped.incident


def test_an_incident_id_is_the_same_in_a_replay_of_its_log_and_new_in_another_log(
    base_settings: Settings,
) -> None:
    assert opened(base_settings, log="log-a").id == opened(base_settings, log="log-a").id
    assert opened(base_settings, log="log-a").id != opened(base_settings, log="log-b").id
    # without a log's identity, the id is the hash of rule, district, kind and window alone
    window = T // 900 * 900
    assert opened(base_settings).id == incident_id("pm25.threshold", "harbour", "pm25", window)


def test_history_and_log_are_reconciled_by_restoring_what_the_log_lost(
    base_settings: Settings,
) -> None:
    lost = opened(base_settings, 1, alerts=3)                    # events 1-3, none in the log
    behind = opened(base_settings, 2, alerts=4)                  # the log holds 1-2 of 4
    agreed = opened(base_settings, 3, alerts=2)
    ahead = opened(base_settings, 4, alerts=2)                   # the recorder is behind
    acked, _ = act(opened(base_settings, 5), "acknowledge", actor="ana", at=T + 400)
    resolved, _ = act(acked, "resolve", actor="ana", at=T + 500, outcome="confirmed")
    old, _ = act(resolved, "close", actor="olga", at=T + 600)
    old = Incident.from_record({**old.to_record(), "id": "inc-old",  # closed a day ago
                                "updated_at": iso(NOW - QUIET_S - 1)})
    logged = {behind.id: 2, agreed.id: agreed.sequence, ahead.id: ahead.sequence + 1}

    plan = reconcile([lost, behind, agreed, ahead, resolved, old], logged, now=NOW,
                     keep_s=QUIET_S)

    assert [(e.incident_id, e.sequence, e.action, e.details["reason"], e.ts)
            for e, _ in plan.restored] == [
        (lost.id, 4, "restore", LOST_LOG, NOW), (behind.id, 5, "restore", LOST_TAIL, NOW)]
    assert "the event log that held this incident was lost" in (plan.restored[0][0].comment or "")
    assert "lost events 3 to 4" in (plan.restored[1][0].comment or "")
    # the state starts with the restored ones (after their event), the agreed and the recent
    # resolved one; the log wins where it is ahead; a long-closed incident is left alone
    assert [(i.id, i.sequence, i.state) for i in plan.adopted] == [
        (lost.id, 4, "open"), (behind.id, 5, "open"), (agreed.id, 2, "open"),
        (resolved.id, resolved.sequence, "resolved")]
    assert set(plan.by_district()) == {"harbour"}


def command(incident: Incident, action: str = "acknowledge", **kwargs: str) -> tuple:
    return ("command", Command.new(incident, action, ANA, at=NOW, command_id=f"cmd-{action}",
                                   **kwargs))


def answers(records: list) -> list[CommandResult]:
    return [orjson.loads(r.value) for r in records if r.topic and "command" in r.topic]


def logic(settings: Settings, restored: dict | None = None, now: float = NOW) -> IncidentLogic:
    return IncidentLogic(IncidentGrouper(settings.incidents, log="log-b"),
                         IncidentOutputs(settings.kafka.topics), lambda: now, None, restored)


def test_the_incident_step_starts_with_the_incidents_taken_up_from_history(
    base_settings: Settings,
) -> None:
    incident = opened(base_settings, 1, log="log-a", alerts=2)
    ((event, restored),) = reconcile([incident], {}, now=NOW, keep_s=QUIET_S).restored

    fresh = logic(base_settings)  # what a flow on a lost log knew before: nothing
    (refused,) = answers(fresh.on_item(command(incident))[0])
    assert refused["error"] == "not_found"

    step = logic(base_settings, {"harbour": [restored]})
    out, _ = step.on_item(command(restored))
    (answer,) = answers(out)
    assert answer["ok"] and answer["incident"]["state"] == "acknowledged"
    assert answer["event"]["sequence"] > event.sequence  # (after an overdue escalation)
    # a new alert of the same rule and window joins it instead of opening another incident
    out, _ = step.on_item(("alert", alert(999, T + 1070)))
    joined = [orjson.loads(r.value) for r in out if r.topic is None]
    assert [(e["incident_id"], e["action"]) for e in joined] == [(incident.id, "alert")]


def test_a_logged_restore_event_brings_the_incident_it_carries(base_settings: Settings) -> None:
    incident = opened(base_settings, 1, log="log-a", alerts=2)
    ((event, restored),) = reconcile([incident], {}, now=NOW, keep_s=QUIET_S).restored
    outputs = IncidentOutputs(base_settings.kafka.topics)
    (record, *_) = outputs.event_records(event, restored)
    logged = orjson.loads(record.value)
    logged["district"] = "harbour"

    step = logic(base_settings)
    step.on_item(("logged", logged))
    (answer,) = answers(step.on_item(command(restored))[0])
    assert answer["ok"], answer


@pytest.mark.parametrize("sequence", [1, 2])
def test_a_logged_event_is_not_taken_over_what_the_state_knows(
    base_settings: Settings, sequence: int,
) -> None:
    incident = opened(base_settings, 1, log="log-a", alerts=2)
    step = logic(base_settings, {"harbour": [incident]}, now=T + 1010)  # nothing overdue
    step.on_item(("alert", alert(100, T + 1000)))  # a duplicate: makes nothing
    older = {**incident.to_record(), "sequence": sequence, "alert_count": 0}
    event = {"id": f"{incident.id}:{sequence:06d}", "incident_id": incident.id,
             "sequence": sequence, "ts": iso(T), "actor": "system", "action": "comment",
             "district": "harbour", "incident": older}
    step.on_item(("logged", event))
    assert step.snapshot().incidents[incident.id] == incident
