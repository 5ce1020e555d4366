"""Incident events reach PostgreSQL through the recorder; `cityheart incidents`, `kpi` read them."""

from __future__ import annotations

import time
from types import SimpleNamespace

import orjson
import psycopg
import pytest
from bytewax.testing import TestingSource, run_main
from typer.testing import CliRunner

from alerts.incidents import GroupingState, IncidentGrouper
from alerts.lifecycle import act
from cityheart.cli import app
from connectors.kafka import KafkaRecord
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from flows.incidents import IncidentOutputs
from flows.recorder import build_recorder_flow
from models.timefmt import iso
from settings.config import Settings
from tests.support import CONFIG

pytestmark = pytest.mark.timeout(120)


def alert(n: int, ts: float, *, district: str = "riverside", kind: str = "water_level",
          severity: str = "warning") -> dict:
    return {"id": f"al-{district}-{n}", "rule": f"{kind}.threshold", "district": district,
            "kind": kind, "severity": severity, "value": 3.0, "threshold": 2.5,
            "direction": "above", "stat": "mean", "unit": "m", "ts": iso(ts),
            "message": f"{kind} high in {district}"}


def incident_records(settings: Settings, now: float) -> list[KafkaRecord]:
    """What the flow publishes for 20 alerts in riverside and 3 in harbour, plus an ack."""
    grouper, outputs = IncidentGrouper(settings.incidents), IncidentOutputs(settings.kafka.topics)
    records: list[KafkaRecord] = []

    def add(state: GroupingState, record: dict) -> None:
        grouped = grouper.add(state, record)
        for event in grouped.events:
            records.extend(outputs.event_records(event, grouped.incident))

    riverside, harbour = grouper.new_state(), grouper.new_state()
    for n in range(20):
        severity = "critical" if n == 10 else "warning"
        add(riverside, alert(n, now - 3600 + n * 30, severity=severity))
    for n in range(3):
        add(harbour, alert(n, now - 1800 + n * 30, district="harbour", kind="pm25"))
    (incident,) = riverside.incidents.values()
    acked, event = act(incident, "acknowledge", actor="water-lead", at=now - 3600 + 240)
    records.extend(outputs.event_records(event, acked))
    # the flow also writes each event to its departments' dispatch queues; the recorder
    # reads the incidents topic only
    return [r for r in records if r.topic is None]


def record(settings: Settings, url: str, records: list[KafkaRecord]) -> None:
    topic = settings.kafka.topics.incidents
    messages = [SimpleNamespace(topic=topic, value=r.value) for r in records]
    options = StorageOptions(url=url)
    run_main(build_recorder_flow(settings.kafka, options, source=TestingSource(messages)))


@pytest.fixture
def filled(base_settings: Settings, database_url: str) -> SimpleNamespace:
    Storage.open(StorageOptions(url=database_url)).close()
    now = time.time()
    records = incident_records(base_settings, now)
    for _ in range(2):  # a restart reads the topic from its start again: nothing stored twice
        record(base_settings, database_url, records)
    return SimpleNamespace(url=database_url, now=now, records=records)


def test_the_recorder_stores_every_incident_event_once_and_the_latest_incident(
    filled: SimpleNamespace,
) -> None:
    with psycopg.connect(filled.url) as conn:
        events = conn.execute("SELECT count(*) FROM incident_events").fetchone()[0]
        rows = conn.execute(
            "SELECT district, state, severity, departments, sequence, alert_ids "
            "FROM incidents ORDER BY district"
        ).fetchall()
    assert events == len(filled.records) == 24
    (harbour, riverside) = rows
    assert harbour[:5] == ("harbour", "open", "warning", ["environment-bureau"], 3)
    assert riverside[:3] == ("riverside", "acknowledged", "critical")
    assert riverside[3] == ["water-authority", "emergency-management"]
    assert riverside[4] == 21 and len(riverside[5]) == 20


def test_cityheart_incidents_json_lists_the_stored_incidents(filled: SimpleNamespace) -> None:
    env = {"CITYHEART_DATABASE_URL": filled.url}
    result = CliRunner().invoke(app, ["incidents", "--json", "--config", str(CONFIG)], env=env)
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(x["district"], x["state"], x["severity"], x["alert_count"]) for x in lines] == [
        ("riverside", "acknowledged", "critical", 20), ("harbour", "open", "warning", 3),
    ]
    assert {"id", "state", "severity", "district", "departments", "opened_at"} <= set(lines[0])
    assert lines[0]["opened_at"] == iso(filled.now - 3600)
    args = ["incidents", "--json", "--state", "open", "--district", "harbour",
            "--config", str(CONFIG)]
    result = CliRunner().invoke(app, args, env=env)
    assert [orjson.loads(x)["district"] for x in result.stdout.splitlines()] == ["harbour"]
    result = CliRunner().invoke(app, ["incidents", "--state", "nope", "--config", str(CONFIG)],
                                env=env)
    assert result.exit_code == 2 and "not one of" in result.output


def test_cityheart_kpi_json_computes_department_kpis_from_stored_events(
    filled: SimpleNamespace,
) -> None:
    env = {"CITYHEART_DATABASE_URL": filled.url}
    result = CliRunner().invoke(app, ["kpi", "--json", "--config", str(CONFIG)], env=env)
    assert result.exit_code == 0, result.output
    rows = {r["department"]: r for r in map(orjson.loads, result.stdout.splitlines())}
    water = rows["water-authority"]
    assert (water["opened"], water["acknowledged"], water["backlog"]) == (1, 1, 1)
    assert water["median_ack_s"] == 240.0
    assert water["ack_within_sla"] == 1.0   # 240 s against an SLA of 300 s
    env_bureau = rows["environment-bureau"]
    assert (env_bureau["opened"], env_bureau["acknowledged"], env_bureau["backlog"]) == (1, 0, 1)
    assert env_bureau["ack_within_sla"] == 0.0   # unacknowledged for 30 min, SLA 15 min
    assert rows["grid-operator"]["opened"] == 0
    text = CliRunner().invoke(app, ["kpi", "--config", str(CONFIG)], env=env)
    assert text.exit_code == 0 and "water-authority" in text.stdout
