"""Hostile devices at the bridge, against real mosquitto and real Tansu.

What operators rely on: a device that floods is throttled (its excess dead-lettered as
``rate_limited``, nothing lost) while a well-behaved device's readings all arrive; an oversized
payload is refused with the reason ``oversized``; each throttled device is reported in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from connectors.bridge import Bridge
from models.timefmt import iso
from settings.config import RateLimitSettings, Settings
from tests.support import consume_all, serving_bridge
from tests.support.kafka import consume_readings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

RATE, BURST = 5.0, 50


class Publisher:
    """A device: a paho client publishing at QoS 1, counting the broker's PUBACKs."""

    def __init__(self, url: str, client_id: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.acked = 0
        self._lock = threading.Lock()
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason, props) -> None:
        with self._lock:
            self.acked += 1

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def reading(device: str, seq: int, *, pad: int = 0) -> bytes:
    record = {"device_id": device, "kind": "pm25", "value": 12.5, "unit": "ug/m3",
              "ts": iso(time.time()), "seq": seq}
    if pad:
        record["note"] = "x" * pad
    return orjson.dumps(record)


@pytest.fixture
def limited(settings: Settings) -> Settings:
    """The test's settings with a known per-device limit."""
    limit = RateLimitSettings(per_device_per_s=RATE, burst=BURST, report_every_s=1.0)
    return settings.model_copy(
        update={"mqtt": settings.mqtt.model_copy(update={"rate_limit": limit})}
    )


@pytest.fixture
def bridge(limited: Settings) -> Iterator[Bridge]:
    with serving_bridge(limited) as running:
        yield running


def test_a_flooding_device_is_throttled_and_the_calm_one_is_not(
    limited: Settings, bridge: Bridge, mqtt_broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.bridge")
    prefix = limited.mqtt.topic_prefix
    flood_topic, calm_topic = f"{prefix}/harbour/pm25/flood-1", f"{prefix}/harbour/pm25/calm-1"
    flood, calm = Publisher(mqtt_broker.url, "flood-1"), Publisher(mqtt_broker.url, "calm-1")
    sent_flood, sent_calm = 1000, 20
    started = time.monotonic()
    try:
        for seq in range(sent_flood):  # as fast as the client goes
            flood.publish(flood_topic, reading("flood-1", seq))
            if seq % 50 == 0:
                calm.publish(calm_topic, reading("calm-1", seq // 50))
        wait_until(lambda: flood.acked == sent_flood and calm.acked == sent_calm, 60,
                   "the broker to accept every message")
        total = sent_flood + sent_calm
        wait_until(lambda: bridge.stats.acknowledged >= total, 60,
                   "the bridge to hand every message to Kafka")
        handled_in = time.monotonic() - started  # the bridge saw every message within this
    finally:
        flood.close()
        calm.close()

    topics = limited.kafka.topics
    forwarded, dead = bridge.stats.forwarded, bridge.stats.dead_lettered
    good = consume_readings(limited.kafka.bootstrap, topics.readings, forwarded)
    letters = consume_all(limited.kafka.bootstrap, topics.dead_letter, dead)
    seqs: dict[str, list[int]] = {"flood-1": [], "calm-1": []}
    for record in good:
        seqs[record.device_id].append(record.seq)
    assert sorted(seqs["calm-1"]) == list(range(sent_calm)), "every calm reading arrives"

    assert {dict(m.headers())["reason"] for m in letters} == {b"rate_limited"}
    assert {dict(m.headers())["mqtt_topic"].decode() for m in letters} == {flood_topic}
    thrown = [orjson.loads(m.value())["seq"] for m in letters]  # the original bytes
    accepted = seqs["flood-1"]
    assert sorted(accepted + thrown) == list(range(sent_flood)), "none lost, none twice"
    # the burst at once, then the rate
    assert BURST <= len(accepted) <= BURST + RATE * handled_in + 1
    detail = dict(letters[0].headers())["detail"].decode()
    assert "more than 5 messages a second" in detail

    bridge.stop()  # reports what is still pending
    reports = [r.getMessage() for r in caplog.records if "throttled" in r.getMessage()]
    assert reports and all(flood_topic in report for report in reports)
    counted = sum(int(report.split(": ")[1].split()[0]) for report in reports)
    assert counted == len(thrown), "each throttled message is reported once"


def test_an_oversized_payload_is_refused_with_its_reason(
    limited: Settings, bridge: Bridge, mqtt_broker
) -> None:
    limit = limited.mqtt.max_payload_bytes
    topic = f"{limited.mqtt.topic_prefix}/old-town/pm25/big-1"
    big = reading("big-1", 1, pad=3 * limit)
    device = Publisher(mqtt_broker.url, "big-1")
    try:
        device.publish(topic, big)
        device.publish(topic, reading("big-1", 2))
        wait_until(lambda: device.acked == 2, 30, "the broker to accept both messages")
    finally:
        device.close()

    topics = limited.kafka.topics
    (letter,) = consume_all(limited.kafka.bootstrap, topics.dead_letter, 1)
    headers = dict(letter.headers())
    assert headers["reason"] == b"oversized"
    assert letter.value() == big[:limit], "only the first max_payload_bytes are kept"
    detail = headers["detail"].decode()
    assert f"exceeds {limit}" in detail
    assert f"keeps the first {limit} of {len(big)} bytes" in detail
    (good,) = consume_readings(limited.kafka.bootstrap, topics.readings, 1)
    assert good.seq == 2, "the next reading still flows"
