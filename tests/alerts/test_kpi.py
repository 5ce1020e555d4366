"""Department KPIs from a known event history, checked against arithmetic done by hand."""

from __future__ import annotations

import json

import pytest

from alerts.kpi import department_kpis, incident_facts
from alerts.lifecycle import event_id
from models.timefmt import iso
from settings.incidents import Department

T0 = 1_795_669_200.0       # 2026-11-26T05:00:00Z
DAY = 86400.0
NOW = T0 + 7200            # 07:00
WATER = Department(id="water-authority", name="Water Authority", sla_ack_s=300,
                   sla_resolve_s=3600)
TRAFFIC = Department(id="traffic-police", name="Traffic Police", sla_ack_s=120,
                     sla_resolve_s=1800)
GRID = Department(id="grid-operator", name="Grid Operator", sla_ack_s=300, sla_resolve_s=3600)
DEPARTMENTS = [WATER, TRAFFIC, GRID]


def _history() -> list[dict]:
    """Event records as the store returns them: incident, sequence, time, action, details."""
    events: list[dict] = []

    def incident(name: str, departments: list[str], steps: list[tuple]) -> None:
        for sequence, (at, action, details) in enumerate(steps, start=1):
            events.append({
                "id": event_id(name, sequence), "incident_id": name, "sequence": sequence,
                "ts": iso(at), "actor": "system" if action in ("open", "alert") else "ana",
                "action": action, "comment": None, "departments": departments,
                "details": details,
            })

    def alert(rule: str, detector: str | None = None) -> dict:
        return {"id": f"{rule}-{detector}", "rule": rule, "kind": "k", "severity": "warning",
                "district": "harbour", **({"detector": detector} if detector else {})}

    water, both, traffic = ["water-authority"], ["water-authority", "traffic-police"], [
        "traffic-police"]
    incident("A", water, [(T0, "open", alert("water_level.threshold", "wl-1")),
                          (T0 + 120, "acknowledge", {}),
                          (T0 + 200, "dispatch", {"team": "crew"}),
                          (T0 + 1000, "resolve", {"outcome": "confirmed"}),
                          (T0 + 1100, "close", {})])
    incident("B", both, [(T0 + 600, "open", alert("rainfall.threshold", "rg-1")),
                         (T0 + 650, "alert", alert("water_level.threshold", "rg-2")),
                         (T0 + 1100, "acknowledge", {}),
                         (T0 + 1500, "resolve", {"outcome": "false_alarm"})])
    incident("C", water, [(T0 + 3000, "open", alert("water_level.threshold", "wl-1"))])
    incident("D", water, [(T0 + 6900, "open", alert("water_level.threshold"))])
    incident("E", traffic, [(T0 + 100, "open", alert("traffic_speed.threshold", "ts-1")),
                            (T0 + 160, "acknowledge", {}),
                            (T0 + 400, "resolve", {"outcome": "false_alarm"}),
                            (T0 + 500, "reopen", {})])
    incident("F", traffic, [(T0 - DAY + 100, "open", alert("traffic_speed.threshold", "ts-1")),
                            (T0 - DAY + 200, "acknowledge", {}),
                            (T0 - DAY + 300, "resolve", {"outcome": "false_alarm"}),
                            (T0 - DAY + 400, "close", {})])
    incident("G", ["parks"], [(T0 + 10, "open", alert("noise.threshold")),
                              (T0 + 20, "acknowledge", {})])
    return events + [events[1], events[3]]   # two duplicates, as a replayed topic would bring


def test_kpis_of_a_known_history_match_the_hand_computed_values() -> None:
    events = json.loads(json.dumps(_history()))
    rows = {row.department: row for row in department_kpis(events, DEPARTMENTS, now=NOW)}
    assert list(rows) == ["water-authority", "traffic-police", "grid-operator", "parks"]

    water = rows["water-authority"]                       # incidents A, B, C, D
    assert (water.opened, water.acknowledged, water.resolved) == (4, 2, 2)
    assert water.mean_ack_s == (120 + 500) / 2 == 310      # A: 120 s, B: 1100 - 600 = 500 s
    assert water.median_ack_s == 310
    assert water.mean_resolve_s == (1000 + 900) / 2 == 950  # A: 1000 s, B: 1500 - 600 = 900 s
    # ack SLA 300 s: A in time; B (500 s) late; C unacknowledged 7200 - 3000 = 4200 s > 300:
    # late; D unacknowledged 7200 - 6900 = 300 s, not past 300: not known yet -> 1 of 3
    assert water.ack_within_sla == pytest.approx(1 / 3)
    # resolve SLA 3600 s: A 1000 and B 900 in time; C 4200 s unresolved: late; D pending
    assert water.resolve_within_sla == pytest.approx(2 / 3)
    assert water.backlog == 2                              # C and D still open
    assert water.false_alarms == 1                         # B
    assert water.false_alarms_by_rule == {"rainfall.threshold": 1, "water_level.threshold": 1}
    assert water.false_alarms_by_detector == {"rg-1": 1, "rg-2": 1}

    traffic = rows["traffic-police"]                       # incidents B, E, F
    assert (traffic.opened, traffic.acknowledged, traffic.resolved) == (3, 3, 3)
    assert traffic.mean_ack_s == (500 + 60 + 100) / 3 == 220   # E: 160 - 100, F: 200 - 100
    assert traffic.median_ack_s == 100
    assert traffic.mean_resolve_s == pytest.approx((900 + 300 + 200) / 3)  # E's first resolve
    assert traffic.median_resolve_s == 300
    assert traffic.ack_within_sla == pytest.approx(2 / 3)  # SLA 120 s: B 500 late, E, F in time
    assert traffic.resolve_within_sla == 1.0               # SLA 1800 s: 900, 300, 200
    assert traffic.backlog == 1                            # E was reopened
    assert traffic.false_alarms == 2                       # B and F; E's verdict was withdrawn
    assert traffic.false_alarms_by_rule == {
        "rainfall.threshold": 1, "water_level.threshold": 1, "traffic_speed.threshold": 1}
    assert traffic.false_alarms_by_detector == {"rg-1": 1, "rg-2": 1, "ts-1": 1}

    grid = rows["grid-operator"]                           # idle
    assert (grid.opened, grid.backlog, grid.mean_ack_s, grid.ack_within_sla) == (0, 0, None, None)
    parks = rows["parks"]                                  # not configured: no SLA
    assert (parks.opened, parks.mean_ack_s, parks.ack_within_sla) == (1, 10, None)


def test_kpis_per_day_put_each_incident_in_the_day_it_opened() -> None:
    rows = department_kpis(_history(), DEPARTMENTS, now=NOW, period_s=DAY)
    keys = [(r.department, iso(r.period_start)) for r in rows]  # type: ignore[arg-type]
    assert keys == [
        ("water-authority", "2026-11-26T00:00:00.000Z"),
        ("traffic-police", "2026-11-25T00:00:00.000Z"),
        ("traffic-police", "2026-11-26T00:00:00.000Z"),
        ("parks", "2026-11-26T00:00:00.000Z"),
    ]
    day_before, day = rows[1], rows[2]
    assert (day_before.opened, day_before.mean_ack_s, day_before.false_alarms) == (1, 100, 1)
    assert day_before.period_end == T0 - 5 * 3600
    assert (day.opened, day.mean_ack_s, day.median_ack_s) == (2, 280, 280)  # (500 + 60) / 2
    assert day.mean_resolve_s == 600                        # (900 + 300) / 2
    assert (day.ack_within_sla, day.resolve_within_sla, day.backlog) == (0.5, 1.0, 1)


def test_a_range_keeps_the_incidents_opened_in_it() -> None:
    rows = department_kpis(_history(), [WATER], now=NOW, since=T0, until=T0 + 6000)
    water = rows[0]                                         # A, B, C; D opened after until
    assert (water.department, water.opened, water.backlog) == ("water-authority", 3, 1)
    assert water.ack_within_sla == pytest.approx(1 / 3)
    record = water.to_record()
    assert record["period_start"] == "2026-11-26T05:00:00.000Z"
    assert record["period_end"] == "2026-11-26T06:40:00.000Z"
    assert record["ack_within_sla"] == 0.333
    json.dumps(record)


def test_incident_facts_skip_incidents_whose_opening_is_not_in_the_events() -> None:
    events = [e for e in _history() if not (e["incident_id"] == "A" and e["action"] == "open")]
    assert "A" not in {f.incident_id for f in incident_facts(events)}
    with pytest.raises(ValueError, match="period_s=0"):
        department_kpis(events, DEPARTMENTS, now=NOW, period_s=0)
