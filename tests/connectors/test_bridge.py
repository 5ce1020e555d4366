"""The MQTT-to-Kafka bridge against real mosquitto and real Tansu.

What operators rely on: every reading a device got acknowledged reaches Kafka, even across a
bridge crash; every bad payload reaches the dead-letter topic with its reason; good readings
around bad ones still flow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cityheart.runtime.readiness import ReadinessListener
from connectors.bridge import Bridge
from models.timefmt import from_iso, iso
from models.vitals.devices import decode_rejection
from settings.config import RateLimitSettings, Settings
from tests.support import consume_all, serving_bridge, wait_until, write_config
from tests.support.kafka import consume_readings, consume_until, readings_of

pytestmark = pytest.mark.timeout(120)


class Device:
    """A plain paho client publishing at QoS 1 and remembering which messages were acknowledged.

    At most 500 messages are in flight (a semaphore released by PUBACKs): flow control.
    """

    def __init__(self, url: str, client_id: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self._room = threading.Semaphore(500)
        self._seq_of_mid: dict[int, int] = {}
        self._acked_mids: list[int] = []
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_publish = self._on_publish
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason, props) -> None:
        self._acked_mids.append(mid)
        self._room.release()

    def publish(self, topic: str, payload: bytes, seq: int = -1) -> None:
        assert self._room.acquire(timeout=30), "no PUBACK for 30 s"
        info = self.client.publish(topic, payload, qos=1)
        self._seq_of_mid[info.mid] = seq

    @property
    def acked(self) -> set[int]:
        return {self._seq_of_mid.get(mid, -1) for mid in list(self._acked_mids)}

    def wait_acked(self, count: int, timeout: float = 30.0) -> None:
        wait_until(lambda: len(self._acked_mids) >= count, timeout,
                   lambda: f"{count} PUBACKs (got {len(self._acked_mids)})", every=0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def reading(device: str, kind: str, value: float, seq: int, unit: str = "ug/m3") -> bytes:
    return orjson.dumps(
        {"device_id": device, "kind": kind, "value": value, "unit": unit, "ts": iso(time.time()),
         "seq": seq}
    )


@pytest.fixture
def bridge(settings: Settings) -> Iterator[Bridge]:
    with serving_bridge(settings) as running:
        yield running


def test_bad_payloads_are_dead_lettered_with_reason_and_good_ones_flow(
    settings: Settings, bridge: Bridge, mqtt_broker
) -> None:
    prefix = settings.mqtt.topic_prefix
    topic = f"{prefix}/old-town/pm25/pm-1"
    now = time.time()
    bad = {
        "invalid_json": (topic, b"{not json"),
        "missing_field": (topic, orjson.dumps({"device_id": "pm-1", "kind": "pm25", "value": 3.0,
                                               "ts": iso(now)})),
        "unknown_unit": (topic, reading("pm-1", "pm25", 3.0, 0, unit="grains")),
        "not_finite": (
            topic, b'{"device_id":"pm-1","kind":"pm25","value":NaN,"unit":"ug/m3","ts":1}'
        ),
        "out_of_range": (topic, reading("pm-1", "pm25", 5000.0, 0)),
        "future_timestamp": (topic, orjson.dumps({"device_id": "pm-1", "kind": "pm25",
                                                  "value": 3.0, "unit": "ug/m3",
                                                  "ts": iso(now + 86400)})),
        "unknown_district": (f"{prefix}/atlantis/pm25/pm-1", reading("pm-1", "pm25", 3.0, 0)),
        "topic_mismatch": (f"{prefix}/old-town/no2/pm-1", reading("pm-1", "pm25", 3.0, 0)),
    }
    device = Device(mqtt_broker.url, "dev-mixed")
    try:
        device.publish(topic, reading("pm-1", "pm25", 10.0, 1), seq=1)
        for seq, (where, payload) in enumerate(bad.values(), start=100):
            device.publish(where, payload, seq=seq)
        device.publish(topic, reading("pm-1", "pm25", 11.0, 2), seq=2)
        device.wait_acked(len(bad) + 2)
    finally:
        device.close()

    dead = consume_all(settings.kafka.bootstrap, settings.kafka.topics.dead_letter, len(bad))
    got = {dict(m.headers())["reason"].decode(): m for m in dead}
    assert sorted(got) == sorted(bad)
    for reason, message in got.items():
        headers = dict(message.headers())
        assert message.value() == bad[reason][1], "the original bytes are kept"
        assert headers["mqtt_topic"].decode() == bad[reason][0]
        assert headers["detail"], reason
        assert headers["source"] == b"bridge"

    # the out-of-range one (only it) is also a Rejection record, for the flow's device health
    (rejected,) = consume_all(settings.kafka.bootstrap, settings.kafka.topics.rejected, 1)
    rejection = decode_rejection(rejected.value())
    assert rejection is not None and rejected.key() == b"pm-1"
    assert (rejection.district, rejection.kind, rejection.device_id) == ("old-town", "pm25", "pm-1")
    assert rejection.ts == from_iso(orjson.loads(bad["out_of_range"][1])["ts"])

    good = consume_readings(settings.kafka.bootstrap, settings.kafka.topics.readings, 2)
    assert [r.seq for r in good] == [1, 2]
    assert [r.device_id for r in good] == ["pm-1", "pm-1"]
    assert [r.district for r in good] == ["old-town", "old-town"]


def test_unit_is_converted_to_the_canonical_one(settings: Settings, bridge: Bridge,
                                                mqtt_broker) -> None:
    device = Device(mqtt_broker.url, "dev-units")
    try:
        payload = reading("tr-1", "traffic_speed", 10.0, 0, unit="m/s")
        device.publish(f"{settings.mqtt.topic_prefix}/harbour/traffic_speed/tr-1", payload)
        device.wait_acked(1)
    finally:
        device.close()
    [record] = consume_readings(settings.kafka.bootstrap, settings.kafka.topics.readings, 1)
    assert record.unit == "km/h"
    assert record.value == pytest.approx(36.0)


def seqs_in(bootstrap: str, topic: str, wanted: set[int], timeout: float) -> set[int]:
    """The reading seqs in ``topic``, read until all of ``wanted`` are there or time is up."""
    seqs: set[int] = set()
    parsed = 0

    def done(records: list) -> bool:
        nonlocal parsed
        seqs.update(r.seq for r in readings_of(records[parsed:]))
        parsed = len(records)
        return wanted <= seqs

    done(consume_until(bootstrap, topic, done, timeout))
    return seqs


def start_bridge_process(
    config: Path, log: Path, ready: ReadinessListener | None = None
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(ready.environ() if ready else {})}
    return subprocess.Popen(
        [sys.executable, "-m", "cityheart", "bridge", "--config", str(config)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
    )


def test_bridge_crash_loses_no_reading_the_broker_accepted(
    settings: Settings, mqtt_broker, tmp_path: Path
) -> None:
    # one device publishes 3,000 readings at once: no per-device limit here (test_bridge_limits)
    unlimited = settings.mqtt.model_copy(update={"rate_limit": RateLimitSettings(enabled=False)})
    settings = settings.model_copy(update={"mqtt": unlimited})
    config = write_config(settings, tmp_path / "config.yaml")
    log = tmp_path / "bridge.log"
    ready = ReadinessListener(Path(tempfile.mkdtemp(prefix="ch-")) / "bridge.notify")
    process = start_bridge_process(config, log, ready)
    ready.wait_ready(timeout=20, process=process)  # READY=1 once its session subscribed
    device = Device(mqtt_broker.url, "dev-crash")
    topic = f"{settings.mqtt.topic_prefix}/university/noise/nz-1"
    total = 3000
    try:
        for seq in range(total):
            if seq == 1000:
                process.send_signal(signal.SIGKILL)  # a crash: no clean shutdown
                process.wait(10)
            if seq == 2000:
                process = start_bridge_process(config, log, ready)
            device.publish(topic, reading("nz-1", "noise", 50.0, seq, unit="dBA"), seq=seq)
        device.wait_acked(total)
        accepted = set(device.acked)
        assert len(accepted) == total, "the broker accepted every reading"

        # a crash redelivers what was not acknowledged, so Kafka may hold duplicates
        seqs = seqs_in(settings.kafka.bootstrap, settings.kafka.topics.readings, accepted, 60)
        assert accepted - seqs == set(), f"lost {len(accepted - seqs)} readings"
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert ready.ready_count == 2, "each run said READY=1 once, after subscribing"
    finally:
        ready.close()
        device.close()
        if process.poll() is None:
            process.kill()
            process.wait(10)
