"""One truth across restarts: the city stack run twice on one database, the second time on a
Kafka that lost everything (a fresh Tansu, as ``cityheart up``'s in-memory broker after a restart).

Real Tansu (two of them), real PostgreSQL, the flow and the recorder as the child processes
production runs, the dispatch API in this process; its clock is the test's, so the history the
KPIs are computed from is known to the second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from alerts.lifecycle import IncidentEvent, replay
from cityheart.cli import app
from cityheart.runtime.servers import start_kafka_broker
from connectors.kafka import ReliableProducer, create_topics
from connectors.tokens import Claims, verify_token
from models.readings import Reading, encode
from settings.config import Settings
from tests.conftest import CONFIG
from tests.dispatch_support import dispatch_stack
from tests.test_dispatch_api import SECRET, call, token, wait_for

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]

BUREAU = "environment-bureau"


def authenticate(text: str) -> Claims:
    return verify_token(text, secret=SECRET, now=time.time())


def pollution(settings: Settings, district: str, *, after: float = 0.0) -> float:
    """PM2.5 far over the critical level in ``district`` (seconds ago): an incident. The
    readings' window starts after ``after`` (a window of its own: the same window's alert has
    the same id, a duplicate); returns its start."""
    start = max((time.time() // 10) * 10 - 30, after + 10)
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=5)
    for n, value in enumerate((180.0, 200.0, 220.0)):
        reading = Reading(f"pm25-{district}-{n}", district, "pm25", value, "ug/m3", start + 5 + n)
        producer.produce(settings.kafka.topics.readings, encode(reading),
                         key=reading.device_id.encode())
    producer.flush(15)
    return start


@contextmanager
def fresh_kafka(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """``settings`` on a Tansu of its own with the same (empty) topics: a Kafka that lost all."""
    server = start_kafka_broker(log_path=tmp_path / "kafka-2.log")
    try:
        departments = [d.id for d in settings.incidents.departments]
        create_topics(server.bootstrap, settings.kafka.topics.every(departments), partitions=1)
        yield settings.model_copy(update={"kafka": settings.kafka.model_copy(
            update={"bootstrap": server.bootstrap})})
    finally:
        server.stop()


class Api:
    """The dispatch API as an operator sees it, and a dispatcher of the bureau acting at the
    times the test gives (the API's clock)."""

    def __init__(self, base: str, clock: list[float]) -> None:
        self.base, self.clock = base, clock
        self.operator = token("operator", sub="olga")
        self.ana = token("dispatcher", BUREAU, sub="ana")

    def incidents(self, state: str | None = None) -> list[dict]:
        status, document = call(self.base, "GET", "/api/incidents", self.operator)
        assert status == 200, document
        return [i for i in document["incidents"] if state is None or i["state"] == state]

    def one(self, district: str, state: str = "open") -> dict | None:
        found = [i for i in self.incidents(state) if i["district"] == district]
        return found[0] if found else None

    def act(self, incident: dict, at: float, **body: str) -> tuple[int, dict]:
        self.clock[0] = at
        return call(self.base, "POST", f"/api/incidents/{incident['id']}/actions", self.ana,
                    body)

    def timeline(self, incident_id: str) -> dict:
        status, document = call(self.base, "GET", f"/api/incidents/{incident_id}", self.operator)
        assert status == 200, document
        return document


def folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def opened(incident: dict) -> float:
    return IncidentEvent.from_record({"incident_id": "-", "sequence": 1, "ts": incident[
        "opened_at"], "actor": "-", "action": "open"}).ts


def test_a_second_run_on_a_lost_kafka_keeps_one_truth(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # one grouping window for the whole test: run 2's incident falls in run 1's window
    settings = settings.model_copy(update={"incidents": settings.incidents.model_copy(
        update={"grouping_window_s": 7 * 86400.0})})
    clock = [time.time()]

    # run 1: two incidents; the one in industrial-east is worked to the end, harbour's stays open
    with dispatch_stack(settings, database_url, folder(tmp_path / "run1"),
                        authenticate=authenticate, clock=lambda: clock[0]) as stack:
        api = Api(stack.url, clock)
        polluted = pollution(settings, "industrial-east")
        pollution(settings, "harbour")
        first = wait_for(lambda: api.one("industrial-east"), 90, "run 1's incident")
        left_open = wait_for(lambda: api.one("harbour"), 90, "run 1's harbour incident")
        status, answer = api.act(first, opened(first) + 240, action="acknowledge")
        assert status == 200, answer
        status, answer = api.act(first, opened(first) + 600, action="resolve",
                                 outcome="false_alarm")
        assert status == 200, answer
        wait_for(lambda: api.one("industrial-east", "resolved"), 60, "the resolve stored")

    # run 2: the same database, a Kafka that lost everything
    with fresh_kafka(settings, tmp_path) as settings2, dispatch_stack(
        settings2, database_url, folder(tmp_path / "run2"), authenticate=authenticate,
        clock=lambda: clock[0],
    ) as stack:
        api = Api(stack.url, clock)
        pollution(settings2, "industrial-east", after=polluted)
        second = wait_for(lambda: api.one("industrial-east"), 90, "run 2's incident")
        assert second["id"] != first["id"], "run 2 reused the id of run 1's incident"

        # every incident listed open can be acknowledged: run 1's too
        listed = {i["id"]: i for i in api.incidents("open")}
        assert set(listed) == {left_open["id"], second["id"]}
        for incident, after in ((left_open, 300), (second, 120)):
            status, answer = api.act(incident, opened(incident) + after, action="acknowledge")
            assert status == 200, (incident["id"], answer)

        restored = api.timeline(left_open["id"])["events"]
        restore = [e for e in restored if e["action"] == "restore"]
        assert len(restore) == 1, restored
        assert "the event log that held this incident was lost" in restore[0]["comment"]
        assert restore[0]["details"]["reason"] == "log_lost"
        wait_for(lambda: not api.incidents("open") and len(api.incidents("acknowledged")) == 2,
                 60, "both acknowledgements stored")
        storage = stack.storage
        incidents = {r["id"]: r["record"] for r in storage.history.incidents(limit=100)}

        # no id holds events of two incidents: each stored timeline is one incident's, whole
        assert len(incidents) == 3
        for incident_id, record in incidents.items():
            events = storage.history.incident_events(incident_id=incident_id)
            assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
            assert [e["action"] for e in events].count("open") == 1
            assert replay(map(IncidentEvent.from_record, events)).to_record() == record

    # the KPIs of that history, exactly
    env = {"CITYHEART_DATABASE_URL": database_url}
    result = CliRunner().invoke(app, ["kpi", "--json", "--config", str(CONFIG)], env=env)
    assert result.exit_code == 0, result.output
    rows = {r["department"]: r for r in map(orjson.loads, result.stdout.splitlines())}
    bureau = rows[BUREAU]
    assert (bureau["opened"], bureau["acknowledged"], bureau["resolved"], bureau["backlog"],
            bureau["false_alarms"]) == (3, 3, 1, 2, 1)
    assert (bureau["median_ack_s"], bureau["mean_ack_s"]) == (240.0, 220.0)
    assert (bureau["median_resolve_s"], bureau["ack_within_sla"]) == (600.0, 1.0)
