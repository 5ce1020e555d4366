"""Incidents on the push feed: every event reaches clients, resumes have no gap or duplicate,
and each role sees what it may (real Tansu, real feed server, real websocket clients)."""

from __future__ import annotations

import time
from itertools import islice

import orjson
import pytest
from websockets.sync.client import connect

from alerts.access import view
from alerts.incidents import IncidentGrouper
from alerts.lifecycle import act
from connectors.feed.client import FeedClient
from connectors.kafka import KafkaRecord
from connectors.tokens import Claims, issue_token, verify_token
from flows.incidents import IncidentOutputs
from models.timefmt import iso
from settings.config import Settings
from tests.support.feed import FeedThread
from tests.support.kafka import produce
from tests.support.relay import CuttableRelay

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

SECRET = "feed-secret-0123456789abcdef-0123"


def incident_history(settings: Settings, alerts: int) -> list[KafkaRecord]:
    """What the flow writes to the incidents topic for ``alerts`` alerts in harbour and a
    dispatcher's acknowledgement with a comment."""
    grouper, outputs = IncidentGrouper(settings.incidents), IncidentOutputs(settings.kafka.topics)
    state = grouper.new_state()
    start = time.time() - 3600
    records: list[KafkaRecord] = []
    for n in range(alerts):
        grouped = grouper.add(state, {
            "id": f"al-{n}", "rule": "water_level.threshold", "district": "harbour",
            "kind": "water_level", "severity": "warning", "value": 3.1, "ts": iso(start + n),
            "device_id": "wl-harbour-7"})
        records += [r for e in grouped.events for r in outputs.event_records(e, grouped.incident)]
    (incident,) = state.incidents.values()
    acked, event = act(incident, "acknowledge", actor="ana", at=start + alerts,
                       comment="crew on the way to pier 4")
    records += outputs.event_records(event, acked)
    return [r for r in records if r.topic is None]


def produce_incidents(settings: Settings, records: list[KafkaRecord]) -> None:
    """Write ``records`` to the test's ``incidents`` topic."""
    produce(settings.kafka.bootstrap, records, topic=settings.kafka.topics.incidents)


def test_a_client_cut_off_during_a_burst_of_incident_events_resumes_with_no_gap_or_duplicate(
    settings: Settings,
) -> None:
    records = incident_history(settings, alerts=150)
    first, middle, rest = records[:20], records[20:80], records[80:]
    produce_incidents(settings, first)
    with FeedThread(settings, heartbeat_s=0.2) as feed, CuttableRelay(feed.port) as link:
        url = f"ws://127.0.0.1:{link.port}{settings.feed.path}"
        with FeedClient(url, channels=["incidents"], since=0) as client:
            messages = client.messages(timeout=30)
            received = list(islice(messages, 10))
            produce_incidents(settings, middle)  # the burst; the network fails in the middle of it
            received += islice(messages, 50)
            link.cut()
            produce_incidents(settings, rest)
            received += islice(messages, 2 * len(records) - len(received))
            assert client.connections == 2, (len(received), 2 * len(records))
    seqs = [m["seq"] for m in received]
    assert seqs == list(range(1, 2 * len(records) + 1)), "no gap, no duplicate"
    events = [m for m in received if m["type"] == "incident_event"]
    assert [e["sequence"] for e in events] == list(range(1, len(records) + 1))
    assert events[-1]["action"] == "acknowledge"
    assert received[-1]["type"] == "incident" and received[-1]["state"] == "acknowledged"
    assert {m["district"] for m in received} == {"harbour"}


def test_each_role_sees_incidents_as_it_may(settings: Settings) -> None:
    records = incident_history(settings, alerts=3)
    produce_incidents(settings, records)
    count = 2 * len(records)  # an incident_event and an incident message each

    def authenticate(token: str) -> Claims:
        return verify_token(token, secret=SECRET, now=time.time())

    def token(role: str, department: str | None = None) -> str:
        return issue_token(role=role, department=department, sub=f"{role}-x", secret=SECRET,
                           now=time.time(), ttl_s=600)

    seen: dict[str, list[dict]] = {}
    with FeedThread(settings, heartbeat_s=0.2, authenticate=authenticate, view=view) as feed:
        base = f"ws://127.0.0.1:{feed.port}{settings.feed.path}?token="
        for name, who in [
            ("operator", token("operator")),
            ("water", token("dispatcher", "water-authority")),
            ("viewer", token("viewer")),
        ]:
            with FeedClient(base + who, channels=["incidents"], since=0) as client:
                seen[name] = list(islice(client.messages(timeout=30), count))
        # another department's dispatcher is offered none of the feed's messages
        with connect(base + token("dispatcher", "grid-operator")) as ws:
            assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
            ws.send(orjson.dumps({"op": "subscribe", "channels": ["incidents"], "since": 0}))
            subscribed = orjson.loads(ws.recv(timeout=10))
            assert (subscribed["type"], subscribed["last_seq"]) == ("subscribed", count)
            assert subscribed["replay"] == 0

    operator = orjson.dumps(seen["operator"]).decode()
    assert "crew on the way to pier 4" in operator and "wl-harbour-7" in operator
    assert len(seen["operator"]) == count
    assert seen["water"] == seen["operator"], "its own department's incident, unmasked"
    viewer = orjson.dumps(seen["viewer"]).decode()
    for secret in ("crew on the way", "wl-harbour-7", '"ana"', "al-0"):
        assert secret not in viewer, f"a viewer sees {secret}"
    assert [m["type"] for m in seen["viewer"]][-2:] == ["incident_event", "incident"]
    assert seen["viewer"][-1]["state"] == "acknowledged"


def test_the_feed_publishes_each_departments_kpis_to_whom_may_see_them(
    settings: Settings,
) -> None:
    from alerts.access import may_subscribe
    from cityheart.services.kpi_digest import KpiDigest

    records = incident_history(settings, alerts=3)   # opened ~1 h ago, acknowledged
    produce_incidents(settings, records)

    def authenticate(token: str) -> Claims:
        return verify_token(token, secret=SECRET, now=time.time())

    def token(role: str, department: str | None = None) -> str:
        return issue_token(role=role, department=department, sub=f"{role}-k", secret=SECRET,
                           now=time.time(), ttl_s=600)

    digest = KpiDigest(settings, interval_s=0.2)
    departments = [d.id for d in settings.incidents.departments]
    with FeedThread(settings, heartbeat_s=0.2, authenticate=authenticate, view=view,
                    may_subscribe=may_subscribe, digests=[digest]) as feed:
        base = f"ws://127.0.0.1:{feed.port}{settings.feed.path}?token="
        with FeedClient(base + token("operator"), channels=["kpis"]) as client:
            operator = list(islice(client.messages(timeout=30), len(departments)))
        with FeedClient(base + token("dispatcher", "water-authority"), channels=["kpis"]
                        ) as client:
            water = list(islice(client.messages(timeout=30), 2))
        with connect(base + token("viewer")) as ws:
            assert "kpis" not in orjson.loads(ws.recv(timeout=10))["channels"]
            ws.send(orjson.dumps({"op": "subscribe", "channels": ["kpis"], "since": None}))
            assert orjson.loads(ws.recv(timeout=10))["error"] == "forbidden_channel"
    assert {m["type"] for m in operator} == {"kpi"}
    assert sorted(m["department"] for m in operator) == sorted(departments)
    (authority,) = [m for m in operator if m["department"] == "water-authority"]
    assert (authority["opened"], authority["acknowledged"], authority["backlog"]) == (1, 1, 1)
    assert {m["department"] for m in water} == {"water-authority"}
