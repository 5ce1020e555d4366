"""The feed's AsyncAPI document: served at /asyncapi.json, and true to what the feed sends.

A real feed (real Tansu) is driven to send every message type the document lists (each data
type, hello, subscribed, heartbeat and several errors); every message received must validate
against its type's JSON Schema in the document, so the document cannot drift from the code.
"""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest
from jsonschema import Draft7Validator
from websockets.sync.client import connect

from connectors.feed.asyncapi import DATA_TYPES, asyncapi, message_schemas
from connectors.feed.client import DATA_TYPES as CLIENT_DATA_TYPES
from connectors.feed.protocol import ERROR_CODES
from models.reports import Report, encode_report
from settings.config import Settings
from tests.connectors.test_feed import T0, alert, vital
from tests.connectors.test_feed_incidents import incident_history
from tests.support.feed import FeedThread
from tests.support.feed import produce as produce_feed
from tests.support.kafka import produce

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


def indicator(district: str, name: str) -> tuple[str, bytes, bytes]:
    value = {"record": "indicator", "district": district, "indicator": name, "kind": name,
             "value": 42.0, "unit": "", "level": "good", "score": 42.0, "window_start": T0,
             "window_end": T0, "inputs": {}, "coverage": 1.0, "confident": True,
             "components": [], "details": {}, "emitted_at": T0}
    return "vitals", f"{district}/indicator:{name}".encode(), orjson.dumps(value)


def report(report_id: str, district: str) -> tuple[str, bytes, bytes]:
    value = Report(id=report_id, kind="pothole", text="A deep pothole by the gate",
                   severity="warning", district=district, ts=time.time() - 60,
                   reporter="officer-17", source="field-officers", received_at=time.time(),
                   attachments=("https://photos.example/1.jpg",))
    return "reports", report_id.encode(), encode_report(value)


def test_the_document_lists_every_channel_message_and_error_code() -> None:
    document = asyncapi(server="ws://127.0.0.1:8765/feed", title="feed")
    payloads = {n: m["payload"] for n, m in document["components"]["messages"].items()}
    for payload in payloads.values():
        Draft7Validator.check_schema(payload)
    assert set(DATA_TYPES) == set(CLIENT_DATA_TYPES)
    assert set(payloads) == {*DATA_TYPES, "hello", "subscribed", "heartbeat", "error",
                             "batch", "subscribe"}
    assert payloads["error"]["properties"]["error"]["enum"] == list(ERROR_CODES)
    assert document["servers"]["feed"]["host"] == "127.0.0.1:8765"


def test_every_message_the_feed_sends_matches_the_served_document(settings: Settings) -> None:
    from cityheart.services.kpi_digest import KpiDigest

    produce_feed(settings, [vital("old-town", "pm25", 10), indicator("city", "aqi"),
                            alert("al-1", "old-town", "pm25"), report("ticket-1", "harbour")])
    produce(settings.kafka.bootstrap, incident_history(settings, alerts=2),
            topic=settings.kafka.topics.incidents)
    validators = {t: Draft7Validator(s) for t, s in message_schemas().items()}
    received: list[dict] = []
    with FeedThread(settings, heartbeat_s=0.2,
                    digests=[KpiDigest(settings, interval_s=0.2)]) as feed:
        doc_url = f"http://127.0.0.1:{feed.port}/asyncapi.json"
        with urllib.request.urlopen(doc_url, timeout=10) as response:  # noqa: S310 (loopback)
            assert response.headers["Content-Type"] == "application/json"
            served = orjson.loads(response.read())
        with connect(feed.url) as ws:
            received.append(orjson.loads(ws.recv(timeout=10)))
            for op in (b"not json", b'{"op": "unsubscribe"}', b'{"op": "subscribe", "since": '
                       b'999999}', b'{"op": "subscribe", "districts": ["atlantis"]}'):
                ws.send(op.decode())
                received.append(orjson.loads(ws.recv(timeout=10)))
            ws.send('{"op": "subscribe", "since": 0}')
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and {m["type"] for m in received} != set(
                    validators) - {"batch"}:
                received.append(orjson.loads(ws.recv(timeout=10)))
        with connect(feed.url) as ws:  # a batch subscriber: live messages grouped
            ws.recv(timeout=10)  # hello
            ws.send('{"op": "subscribe", "channels": ["vitals", "alerts"], "batch": true}')
            answer = orjson.loads(ws.recv(timeout=10))
            assert (answer["type"], answer["batch"]) == ("subscribed", True)
            produce_feed(settings, [vital("old-town", "pm25", 11), alert("al-2", "old-town",
                                                                         "pm25")])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "batch" not in {m["type"] for m in received}:
                received.append(orjson.loads(ws.recv(timeout=10)))
        batches = [m for m in received if m["type"] == "batch"]
        assert batches and all(m["type"] in DATA_TYPES for b in batches for m in b["messages"])
    assert served == asyncapi(server=feed.url, title=served["info"]["title"])
    assert {m["type"] for m in received} == set(validators)
    assert {m["error"] for m in received if m["type"] == "error"} == {
        "invalid_json", "unknown_op", "resync", "unknown_district"}
    for message in received:
        errors = [e.message for e in validators[message["type"]].iter_errors(message)]
        assert not errors, (message, errors)
