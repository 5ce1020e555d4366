"""Reports in the city flow: a report raises an alert (rule ``report.<kind>``) that joins the
incident of its district and kind, or opens one; an info report is no incident."""

from __future__ import annotations

import orjson
import pytest

from connectors.kafka import KafkaRecord
from models.readings import Reading, encode
from models.reports import Report, encode_report
from settings.config import Settings
from tests.flows.test_flow_incidents import NOW, T
from tests.support.flow import run_flow

pytestmark = pytest.mark.timeout(120)


def report(report_id: str, kind: str, district: str, ts: float, severity: str = "warning",
           text: str = "reported") -> KafkaRecord:
    value = Report(id=report_id, kind=kind, text=text, severity=severity,  # type: ignore[arg-type]
                   district=district, ts=ts, reporter="hotline:12", source="hotline",
                   received_at=ts + 5)
    return KafkaRecord(report_id.encode(), encode_report(value))


def loud_night(district: str = "harbour", seconds: int = 900) -> list[KafkaRecord]:
    """Sound levels over the warning limit every 5 s (noise has no correlation rule)."""
    items = []
    for offset in range(0, seconds, 5):
        reading = Reading("noise-7", district, "noise", 82.0, "dBA", T + offset)
        items.append(KafkaRecord(reading.device_id.encode(), encode(reading)))
    return items


def test_reports_join_the_incident_of_their_kind_and_place_or_open_one(
    base_settings: Settings,
) -> None:
    reports = [
        report("ticket-1", "noise", "harbour", T + 600, "critical",
               "Loud music from the warehouse"),                # joins the sensor's incident
        report("ticket-2", "pothole", "harbour", T + 100),       # opens an incident
        report("ticket-3", "pothole", "harbour", T + 400),       # joins ticket-2's
        report("ticket-4", "pothole", "old-town", T + 100),      # elsewhere: its own
        report("ticket-5", "litter", "harbour", T + 100, "info"),  # kept, never an incident
        KafkaRecord(b"x", b"not a report"),                       # skipped
    ]
    out = run_flow(base_settings, loud_night(), batch_size=50, clock=lambda: NOW,
                   reports=reports)
    events = [orjson.loads(r.value) for r in out.incidents if r.topic is None]
    by_alert = {e["details"]["id"]: e for e in events if e["action"] in ("open", "alert")}

    reported = [a for a in out.alerts if a["rule"].startswith("report.")]
    assert sorted(a["id"] for a in reported) == [
        "report-ticket-1", "report-ticket-2", "report-ticket-3", "report-ticket-4"]
    music = next(a for a in reported if a["id"] == "report-ticket-1")
    assert (music["rule"], music["district"], music["severity"]) == (
        "report.noise", "harbour", "critical")
    assert "Loud music" in music["message"] and "hotline:12" in music["message"]
    sensor = next(a for a in out.alerts if a["kind"] == "noise" and a["id"] != music["id"])
    assert music["departments"] == sensor["departments"]        # routed like a noise alert

    noise = {e["incident_id"] for e in events if e["incident"]["kind"] == "noise"}
    assert len(noise) == 1, "the report joined the sensor's incident, or they it"
    assert by_alert["report-ticket-1"]["incident_id"] in noise
    final = [e["incident"] for e in events if e["incident_id"] in noise][-1]
    assert {"noise.threshold", "report.noise"} <= set(final["rules"])
    assert final["severity"] in ("critical", "emergency")     # the report's severity counts

    potholes = {e["details"]["id"]: e["incident_id"] for e in by_alert.values()
                if e["details"]["kind"] == "pothole"}
    assert potholes["report-ticket-2"] == potholes["report-ticket-3"]
    assert potholes["report-ticket-4"] != potholes["report-ticket-2"]
    assert "report-ticket-5" not in by_alert
