"""`cityheart watch` prints one readable line per vital sign window, indicator or alert."""

from __future__ import annotations

import orjson

from cityheart.watch import format_message
from connectors.feed.protocol import CHANNELS, FeedLog


def test_an_indicator_line_names_value_level_and_low_coverage() -> None:
    line = format_message({"type": "indicator", "district": "harbour", "kind": "aqi",
                           "indicator": "aqi", "value": 57.0, "unit": "", "level": "good",
                           "confident": False, "window_end": "2026-11-26T05:00:10.000Z"})
    assert line.startswith("2026-11-26T05:00:10.000Z  harbour")
    assert "aqi" in line and "57.00" in line and "[good]" in line
    assert "low coverage" in line


def test_an_alert_line_carries_severity_and_message() -> None:
    line = format_message({"type": "alert", "district": "harbour", "kind": "pm25",
                           "severity": "critical", "ts": "2026-11-26T05:00:03.000Z",
                           "message": "PM2.5 mean 212 ug/m3 in harbour is above 150.5"})
    assert "CRITICAL" in line and line.endswith("is above 150.5")


T0 = 1_795_000_000.0


def _records() -> dict[str, bytes]:
    """One record of each feed channel, as the topics (and the feed's KPI digest) carry them."""
    from alerts.kpi import DepartmentKpi
    from alerts.lifecycle import Incident, IncidentEvent

    incident = Incident(id="inc-harbour-1", district="harbour", rule="flood-risk",
                        kind="water_level", title="Flood risk in Harbour", state="acknowledged",
                        severity="critical", departments=("water-authority",), opened_at=T0,
                        updated_at=T0 + 60, alert_count=3)
    event = IncidentEvent(incident_id=incident.id, sequence=2, ts=T0 + 60, actor="ana",
                          action="ack", comment="on my way", departments=("water-authority",))
    kpi = DepartmentKpi(department="water-authority", period_start=T0, period_end=T0 + 86400,
                        opened=4, acknowledged=3, resolved=2, median_ack_s=95.0,
                        ack_within_sla=0.75, median_resolve_s=1800.0, resolve_within_sla=0.5,
                        backlog=2, false_alarms=1)
    return {
        "vitals": orjson.dumps({"district": "harbour", "kind": "pm25", "mean": 18.2, "min": 12.0,
                                "max": 25.1, "unit": "ug/m3",
                                "window_end": "2026-11-26T05:00:10.000Z"}),
        "alerts": orjson.dumps({"district": "harbour", "kind": "pm25", "severity": "warning",
                                "ts": "2026-11-26T05:00:03.000Z", "message": "PM2.5 high"}),
        "incidents": orjson.dumps({**event.to_record(), "incident": incident.to_record()}),
        "kpis": orjson.dumps({**kpi.to_record(), "district": "city", "kind": kpi.department}),
    }


def test_every_channel_of_the_feed_prints_a_line_with_what_it_carries() -> None:
    records = _records()
    assert set(records) == set(CHANNELS), "a new feed channel needs a line in cityheart watch"
    log = FeedLog(backlog=10)
    lines = {}
    for channel, record in records.items():
        for message in log.append_all(channel, record, time="2026-11-26T05:01:00.000Z"):
            lines[message.type] = format_message(orjson.loads(message.payload))
    for line in lines.values():
        assert " ? " not in line and " - min" not in line, line
    event, incident = lines["incident_event"], lines["incident"]
    assert "harbour" in event and "inc-harbour-1" in event and "ACK by ana" in event
    assert "on my way" in event
    for words in ("harbour", "acknowledged", "CRITICAL", "inc-harbour-1", "water-authority",
                  "alerts 3", "Flood risk in Harbour"):
        assert words in incident, (words, incident)
    for words in ("water-authority", "opened 4", "backlog 2", "median ack 95s",
                  "(SLA 75%)", "false alarms 1"):
        assert words in lines["kpi"], (words, lines["kpi"])
