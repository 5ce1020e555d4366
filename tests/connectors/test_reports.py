"""Reports from people and systems over HTTP against real servers: ``POST /reports`` with a
source's key puts valid reports on the reports topic once Kafka has them, lists and
dead-letters the refused ones with their reasons, and answers 400/401/415 clearly; through
Kafka and ``cityheart flow`` a hotline call joins the incident the noise sensors opened."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from cityheart.runtime.servers import spawn
from connectors.ingest.keys import new_key, save_keys
from connectors.ingest.server import IngestServer
from models.reports import decode_report
from models.timefmt import iso
from settings.config import Settings
from tests.connectors.test_ingest import post
from tests.support.config import write_config
from tests.support.kafka import consume_all, consume_until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def ingest(settings: Settings, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The ingest server on a free port; the hotline's key, and the harbour police's (harbour
    only)."""
    settings = settings.model_copy(update={
        "ingest": settings.ingest.model_copy(update={"port": 0})})
    hotline, hotline_token = new_key("hotline")
    police, police_token = new_key("harbour-police", districts=["harbour"])
    path = tmp_path / "ingest-keys.yaml"
    save_keys(path, [hotline, police])
    with IngestServer(settings, keys_path=path) as server:
        yield SimpleNamespace(url=server.url.replace("/ingest", "/reports"), settings=settings,
                              hotline=hotline_token, police=police_token)


def test_reports_reach_kafka_and_refused_ones_say_why(ingest: SimpleNamespace) -> None:
    ticket = {"id": "ticket-2231", "kind": "noise", "severity": "warning",
              "text": "Loud music from the harbour warehouse since 23:00",
              "district": "harbour", "time": iso(time.time() - 120), "reporter": "hotline:4711",
              "attachments": ["https://hotline.example/recordings/2231.ogg"]}
    camera = {"kind": "crowding", "severity": "critical", "text": "Crowd on the platform edge",
              "lat": 48.16, "lon": 11.595, "reporter": "cam-central-07"}
    body = orjson.dumps([
        ticket, camera,
        {"kind": "noise", "text": "no place", "reporter": "x"},                 # 2
        {**ticket, "district": "atlantis"},                                     # 3
        {**ticket, "attachments": ["file:///etc/passwd"]},                      # 4
        {**ticket, "severity": "apocalyptic"},                                  # 5
        {**ticket, "time": iso(time.time() + 3600)},                            # 6
        "just text",                                                            # 7
    ])
    status, answer, _ = post(ingest.url, body, ingest.hotline)
    assert status == 202, answer
    assert (answer["accepted"], answer["rejected"]) == (2, 6)
    assert answer["ids"][0] == "ticket-2231" and answer["ids"][1].startswith("r-")
    assert [(r["index"], r["reason"]) for r in answer["rejections"]] == [
        (2, "missing_field"), (3, "unknown_district"), (4, "wrong_type"), (5, "wrong_type"),
        (6, "future_timestamp"), (7, "not_an_object")]
    assert "attachments" in answer["rejections"][2]["detail"]
    assert "severity" in answer["rejections"][3]["detail"]

    settings = ingest.settings
    topics = settings.kafka.topics
    records = consume_all(settings.kafka.bootstrap, topics.reports, 2, timeout=10)
    reports = {r.id: r for r in (decode_report(m.value()) for m in records)}
    assert set(reports) == set(answer["ids"])
    kept = reports["ticket-2231"]
    assert (kept.kind, kept.district, kept.source, kept.reporter) == (
        "noise", "harbour", "hotline", "hotline:4711")
    assert kept.attachments == ("https://hotline.example/recordings/2231.ogg",)
    located = reports[answer["ids"][1]]
    assert (located.district, located.severity) == ("central-station", "critical")
    assert abs(located.ts - located.received_at) < 1e-6          # no time: when received
    letters = consume_all(settings.kafka.bootstrap, topics.dead_letter, 6, timeout=10)
    assert len(letters) == 6
    assert {dict(m.headers())["source"] for m in letters} == {b"reports"}
    assert {m.key() for m in letters} == {b"reports/hotline"}

    # the harbour police may report in the harbour only
    status, answer, _ = post(ingest.url, orjson.dumps([ticket, camera]), ingest.police)
    assert status == 202
    assert answer["accepted"] == 1 and answer["rejections"][0]["reason"] == "not_allowed"


def test_bad_requests_are_answered_clearly(ingest: SimpleNamespace) -> None:
    report = orjson.dumps({"kind": "pothole", "text": "x", "district": "harbour",
                           "reporter": "y"})
    assert post(ingest.url, report, None)[0] == 401
    assert post(ingest.url, report, "chk_nope_nope")[0] == 401
    status, answer, _ = post(ingest.url, report, ingest.hotline, content_type="text/csv")
    assert status == 415 and "application/json" in answer["detail"]
    status, answer, _ = post(ingest.url, b"{not json", ingest.hotline)
    assert (status, answer["error"]) == (400, "invalid_json")


def test_a_report_joins_the_incident_the_sensors_opened_through_kafka_and_the_flow(
    ingest: SimpleNamespace, tmp_path: Path,
) -> None:
    settings = ingest.settings
    bootstrap, topics = settings.kafka.bootstrap, settings.kafka.topics
    start = (time.time() // 10) * 10 - 60
    loud = [{"device_id": "noise-7", "district": "harbour", "kind": "noise", "value": 82.0,
             "unit": "dBA", "ts": start + n} for n in range(0, 30, 2)]
    status, answer, _ = post(ingest.url.replace("/reports", "/ingest"), orjson.dumps(loud),
                             ingest.hotline)
    assert (status, answer["accepted"]) == (202, len(loud))
    ticket = {"id": "ticket-77", "kind": "noise", "severity": "critical",
              "text": "Caller says the harbour party is unbearable", "district": "harbour",
              "time": iso(start + 15), "reporter": "hotline:4711"}
    status, answer, _ = post(ingest.url, orjson.dumps(ticket), ingest.hotline)
    assert (status, answer["ids"]) == (202, ["ticket-77"])

    config = write_config(settings, tmp_path / "config.yaml")
    flow = spawn("flow", [sys.executable, "-m", "cityheart", "flow", "--config", str(config)],
                 env={**os.environ, "CITYHEART_KAFKA_BOOTSTRAP": bootstrap},
                 log_path=tmp_path / "flow.log")
    try:
        def joined(records: list[Any]) -> bool:
            events = [orjson.loads(m.value()) for m in records]
            ids = {e.get("details", {}).get("id") for e in events}
            return "report-ticket-77" in ids and any(
                not str(i).startswith("report-") for i in ids if i)

        records = consume_until(bootstrap, topics.incidents, joined, timeout=90)
    finally:
        flow.stop(signal.SIGTERM, timeout=30)
    events = [orjson.loads(m.value()) for m in records]
    grouped = [e for e in events if e["action"] in ("open", "alert")]
    by_alert = {e["details"]["id"]: e["incident_id"] for e in grouped}
    assert "report-ticket-77" in by_alert, (tmp_path / "flow.log").read_text()
    sensors = {i for a, i in by_alert.items() if not a.startswith("report-")}
    assert sensors == {by_alert["report-ticket-77"]}, "one incident: the sensors' and the call"
    final = [e["incident"] for e in events if e["incident_id"] in sensors][-1]
    assert {"noise.threshold", "report.noise"} <= set(final["rules"])
    assert final["severity"] == "critical" and final["district"] == "harbour"
    alerts = consume_until(bootstrap, topics.alerts,
                           lambda r: any(m.key() == b"report-ticket-77" for m in r), 10)
    assert any(m.key() == b"report-ticket-77" for m in alerts), "published like an alert"
