"""`cityheart flow` on real Tansu: readings in; vitals, indicators, an alert, dead letters out.

The flow runs as the child process production runs (``python -m cityheart flow --config ...``),
with the wall clock: its windows close because the watermark advances with time, not because
the input ends (a Kafka source never ends). SIGINT or SIGTERM stops it with exit code 0.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest

from cityheart.runtime.servers import spawn
from connectors.kafka import ReliableProducer
from models.reading_batch import ReadingBatch
from models.readings import Reading
from models.timefmt import from_iso
from models.vitals.devices import encode_rejection
from models.vitals.records import Rejection
from settings.config import Settings
from tests.support import consume_all, kafka, write_config

pytestmark = [pytest.mark.services, pytest.mark.timeout(150)]


WINDOW_KEYS = {b"industrial-east/pm25", b"old-town/noise"}
INDICATOR_KEYS = {b"industrial-east/indicator:aqi", b"old-town/indicator:noise",
                  b"city/indicator:aqi", b"industrial-east/indicator:device_health"}


def consume_until(bootstrap: str, topic: str, keys: set[bytes], timeout: float) -> list:
    """Read ``topic`` from the beginning until records with every key in ``keys`` arrived."""
    return kafka.consume_until(bootstrap, topic, lambda records: keys <= {r.key() for r in records},
                               timeout)


def produce_readings(settings: Settings, start: float) -> None:
    """Readings late in the window [start, start+10): it closes ~2 s of wall time after."""
    readings = [
        Reading("pm25-ie-1", "industrial-east", "pm25", 180.0, "ug/m3", start + 7.0),
        Reading("pm25-ie-2", "industrial-east", "pm25", 200.0, "ug/m3", start + 8.0),
        Reading("pm25-ie-3", "industrial-east", "pm25", 220.0, "ug/m3", start + 9.0),
        Reading("noise-ot-1", "old-town", "noise", 50.0, "dBA", start + 8.5),
        Reading("noise-ot-2", "old-town", "noise", 60.0, "dBA", start + 9.5),
    ]
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=5)
    topic = settings.kafka.topics.readings
    # as the bridge writes them, in batches; between them a record that is no reading
    producer.produce(topic, ReadingBatch.of(readings[:2]).encode())
    producer.produce(topic, b'{"device_id": "pm25-ie-9", "kind": 7}', key=b"pm25-ie-9")
    producer.produce(topic, ReadingBatch.of(readings[2:]).encode())
    # the bridge refused a reading of a fourth device as out of range: its dead letter and
    # its rejection record
    payload = orjson.dumps({"device_id": "pm25-ie-4", "kind": "pm25", "value": 9999.0,
                            "unit": "ug/m3", "ts": start + 8.5})
    prefix = settings.mqtt.topic_prefix
    rejection = Rejection("industrial-east", "pm25", "pm25-ie-4", start + 8.5)
    producer.produce(settings.kafka.topics.rejected, encode_rejection(rejection),
                     key=b"pm25-ie-4")
    producer.produce(settings.kafka.topics.dead_letter, payload, key=b"pm25-ie-4", headers=[
        ("reason", b"out_of_range"), ("detail", b"value 9999.0 ug/m3 is outside"),
        ("mqtt_topic", f"{prefix}/industrial-east/pm25/pm25-ie-4".encode()),
        ("received_at", b"2026-11-26T05:00:00.000Z"), ("source", b"bridge"),
    ])
    producer.flush(15)


@pytest.mark.parametrize(
    ("stop_signal", "workers"),
    [(signal.SIGINT, 1), (signal.SIGTERM, 2)],
    ids=["SIGINT-1-worker", "SIGTERM-2-workers"],
)
def test_flow_turns_kafka_readings_into_vitals_and_an_early_alert_and_stops_cleanly(
    settings: Settings, tmp_path: Path, stop_signal: int, workers: int
) -> None:
    settings = settings.model_copy(
        update={"flow": settings.flow.model_copy(update={"workers": workers})}
    )
    bootstrap = settings.kafka.bootstrap
    topics = settings.kafka.topics
    start = (time.time() // 10) * 10 - 60  # a window that ended a minute ago
    produce_readings(settings, start)
    config = write_config(settings, tmp_path / "config.yaml")
    log_path = tmp_path / "flow.log"
    env = {**os.environ, "CITYHEART_KAFKA_BOOTSTRAP": bootstrap}
    flow = spawn("flow", [sys.executable, "-m", "cityheart", "flow", "--config", str(config)],
                 env=env, log_path=log_path)
    try:
        vitals = consume_until(bootstrap, topics.vitals, WINDOW_KEYS | INDICATOR_KEYS, timeout=60)
        alerts = consume_all(bootstrap, topics.alerts, 1, timeout=10)
        dead = consume_all(bootstrap, topics.dead_letter, 2, timeout=10)
        running = flow.running
    finally:
        code = flow.stop(stop_signal, timeout=30)
    log = log_path.read_text(errors="replace")
    assert running, f"the flow exited early:\n{log}"
    assert code == 0, f"exit code {code} after signal {stop_signal}:\n{log}"

    by_key = {m.key(): orjson.loads(m.value()) for m in vitals}
    assert {k for k, v in by_key.items() if "record" not in v} == WINDOW_KEYS, log
    aqi = by_key[b"industrial-east/indicator:aqi"]
    # HJ 633: PM2.5 200 ug/m3 lies in 150-250 -> IAQI 200-300: 250, "Heavily polluted"
    assert (aqi["record"], aqi["value"], aqi["level"]) == ("indicator", 250, "Heavily polluted")
    noise = by_key[b"old-town/indicator:noise"]
    assert noise["value"] == pytest.approx(10 * math.log10((1e5 + 1e6) / 2)), "energy mean"
    assert by_key[b"city/indicator:aqi"]["district"] == "city"
    (pm25,) = by_key[b"industrial-east/indicator:device_health"]["components"]
    assert (pm25["expected"], pm25["out_of_range"]) == (4, ["pm25-ie-4"]), "the bridge's rejection"
    pm25 = by_key[b"industrial-east/pm25"]
    assert (pm25["count"], pm25["mean"], pm25["min"], pm25["max"], pm25["last"]) == (
        3, 200.0, 180.0, 220.0, 220.0)
    assert (pm25["devices"], pm25["late"], pm25["unit"]) == (3, 0, "ug/m3")
    assert from_iso(pm25["window_start"]) == start
    noise = by_key[b"old-town/noise"]
    assert (noise["count"], noise["mean"], noise["last"]) == (2, 55.0, 60.0)

    (message,) = alerts
    alert = orjson.loads(message.value())
    assert message.key() == alert["id"].encode()
    assert (alert["rule"], alert["district"], alert["severity"]) == (
        "pm25.threshold", "industrial-east", "critical")
    assert alert["value"] >= 150.5 and alert["threshold"] == 150.5
    assert from_iso(alert["emitted_at"]) < from_iso(pm25["emitted_at"]), (
        "the alert goes out as the breach is seen, before its window closes"
    )

    (letter,) = [d for d in dead if dict(d.headers())["source"] == b"flow"]
    headers = dict(letter.headers())
    assert letter.key() == b"pm25-ie-9"
    assert letter.value() == b'{"device_id": "pm25-ie-9", "kind": 7}'
    assert (headers["reason"], headers["source"]) == (b"wrong_type", b"flow")
