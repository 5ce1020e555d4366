"""Batches on the readings topic lose nothing: a bridge that dies after Kafka confirmed its
batches but before it acknowledged their MQTT messages leaves them to the broker, which hands
them to the next bridge; storage keeps each reading once.

Real mosquitto, Tansu and PostgreSQL; the bridge that dies is a process of its own, killed with
SIGKILL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from bytewax.testing import TestingSource, run_main

from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from flows.recorder import build_recorder_flow
from lab.audit import stored_readings
from models.timefmt import iso
from settings.config import RateLimitSettings, ReadingsBatchSettings, Settings
from tests.connectors.test_bridge import Device
from tests.support import serving_bridge, wait_until, write_config
from tests.support.kafka import consume_until, readings_of

pytestmark = pytest.mark.timeout(180)

TOTAL = 1000
BATCH = 50  # TOTAL is a whole number of batches: each is sent as it fills, no timer needed

# a bridge that produces its batches but never serves Kafka's delivery reports, so it never
# acknowledges an MQTT message: killed, it is a crash right after Kafka confirmed
NEVER_ACKS = """
import sys
from connectors.bridge import Bridge
from settings.loader import load
bridge = Bridge(load(sys.argv[1]))
bridge.start()
print("subscribed", flush=True)
sys.stdin.read()
"""


def batched(settings: Settings) -> Settings:
    mqtt = settings.mqtt.model_copy(update={"rate_limit": RateLimitSettings(enabled=False)})
    batch = ReadingsBatchSettings(linger_ms=1000, max_readings=BATCH)
    kafka = settings.kafka.model_copy(update={"readings_batch": batch})
    return settings.model_copy(update={"mqtt": mqtt, "kafka": kafka})


def test_a_crash_between_a_batchs_produce_and_its_acknowledgements_loses_nothing(
    settings: Settings, mqtt_broker, database_url: str, tmp_path: Path
) -> None:
    settings = batched(settings)
    config = write_config(settings, tmp_path / "config.yaml")
    bootstrap, topic = settings.kafka.bootstrap, settings.kafka.topics.readings
    child = subprocess.Popen([sys.executable, "-c", NEVER_ACKS, str(config)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    device = Device(mqtt_broker.url, "dev-batches")
    try:
        assert child.stdout is not None and child.stdout.readline() == b"subscribed\n"
        where = f"{settings.mqtt.topic_prefix}/harbour/pm25/pm-7"
        start = time.time() - 60
        for seq in range(TOTAL):  # each its own time: storage keys readings by device and ts
            payload = orjson.dumps({"device_id": "pm-7", "kind": "pm25", "value": 10.0 + seq % 50,
                                    "unit": "ug/m3", "ts": iso(start + seq / 100), "seq": seq})
            device.publish(where, payload, seq=seq)
        device.wait_acked(TOTAL)
        accepted = device.acked
        assert accepted == set(range(TOTAL)), "the broker accepted every reading"

        # every batch is in Kafka, and not one MQTT message acknowledged: then the crash
        def holds(count: int):
            return lambda records: len(readings_of(records)) >= count

        first = readings_of(consume_until(bootstrap, topic, holds(TOTAL), 60))
        assert sorted(r.seq for r in first) == list(range(TOTAL))
        child.send_signal(signal.SIGKILL)
        child.wait(10)

        # the broker redelivers all of them to the next bridge (same persistent session)
        with serving_bridge(settings) as bridge:
            wait_until(lambda: bridge.stats.acknowledged >= TOTAL, 60,
                       lambda: f"{TOTAL} acknowledged (got {bridge.stats.acknowledged})")
            assert bridge.stats.received == TOTAL, "each unacknowledged message came again"
        records = consume_until(bootstrap, topic, holds(2 * TOTAL), 60)
    finally:
        device.close()
        if child.poll() is None:
            child.kill()
            child.wait(10)
    twice = readings_of(records)
    assert len(twice) == 2 * TOTAL, "Kafka holds every reading twice: at least once"
    assert sorted(twice[TOTAL:], key=lambda r: r.seq) == sorted(first, key=lambda r: r.seq)

    # storage keeps each once: the recorder over what Kafka holds, then the soak's reckoning
    options = StorageOptions(url=database_url)
    Storage.open(options).close()
    values = [SimpleNamespace(topic=topic, value=record.value()) for record in records]
    run_main(build_recorder_flow(settings.kafka, options, source=TestingSource(values)))
    stored = stored_readings(database_url)
    acked = {("pm-7", seq) for seq in accepted}
    assert acked - set(stored) == set(), "lost"
    assert {key: n for key, n in stored.items() if n > 1} == {}, "duplicated"
    assert len(stored) == TOTAL
