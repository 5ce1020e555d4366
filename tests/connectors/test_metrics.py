"""Prometheus ``/metrics`` of the components, scraped over HTTP from real servers.

What operators rely on: the bridge's ingest and dead-letter counts, the feed's clients, the
flow sources' consumer lag, the window latency and the open incidents per department are on
``/metrics`` and right; the settings and ``CITYHEART_METRICS_*`` say where each listens.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from cityheart.metrics import component_metrics, metrics_urls
from connectors.feed.server import FeedServer
from connectors.kafka import ReliableProducer, kafka_source
from connectors.metrics import serve_metrics
from models.timefmt import iso
from settings.config import Settings
from settings.loader import load
from tests.connectors.test_bridge import Device, reading
from tests.support import wait_until, write_config

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample on ``url``, parsed by prometheus_client: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(url: str, condition: Callable[[Samples], bool], timeout: float = 30) -> Samples:
    """Scrape ``url`` until ``condition`` holds; fail with the last scrape after ``timeout``."""
    last: list[Samples] = []

    def met() -> Samples | None:
        last[:] = [scrape(url)]
        return last[0] if condition(last[0]) else None

    def seen() -> str:
        ours = {k: v for k, v in last[0].items() if k[0].startswith("cityheart_")}
        return f"the metrics condition; cityheart samples: {ours}"

    return wait_until(met, timeout, seen, every=0.1)


def with_metrics_port(settings: Settings, port: int | None) -> Settings:
    metrics = settings.metrics.model_copy(update={"enabled": True, "port": port})
    return settings.model_copy(update={"metrics": metrics})


# -- settings --------------------------------------------------------------------------------


def test_each_component_has_its_port_and_the_environment_overrides_it() -> None:
    shipped = load(ROOT / "config.yaml", env={})
    urls = metrics_urls(shipped, ("feed", "bridge", "simulate"))
    assert urls == {"feed": "http://127.0.0.1:9130/metrics",
                    "bridge": "http://127.0.0.1:9110/metrics"}
    assert shipped.metrics.port_of("flow", 2) == shipped.metrics.ports.flow + 2
    env = {"CITYHEART_METRICS_PORT": "9100", "CITYHEART_METRICS_HOST": "0.0.0.0"}
    container = load(ROOT / "config.yaml", env=env)
    assert container.metrics.port_of("recorder") == 9100
    assert container.metrics.host == "0.0.0.0"
    off = load(ROOT / "config.yaml", env={"CITYHEART_METRICS_ENABLED": "false"})
    assert metrics_urls(off, ("feed",)) == {}


# -- bridge ----------------------------------------------------------------------------------


def test_bridge_process_counts_readings_in_and_dead_letters_by_reason(
    settings: Settings, mqtt_broker: Any, tmp_path: Path
) -> None:
    config = write_config(with_metrics_port(settings, 0), tmp_path / "config.yaml")
    log = tmp_path / "bridge.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "cityheart", "bridge", "--config", str(config)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = wait_for_metrics_url(log, "bridge", process)
        topic = f"{settings.mqtt.topic_prefix}/old-town/pm25/pm-1"
        device = Device(mqtt_broker.url, f"dev-{uuid.uuid4().hex[:8]}")
        try:
            for seq in range(5):
                device.publish(topic, reading("pm-1", "pm25", 10.0 + seq, seq), seq=seq)
            device.publish(topic, b"{not json")
            device.publish(topic, reading("pm-1", "pm25", 5000.0, 9))
            device.publish(topic, reading("pm-1", "pm25", 7000.0, 10))
            device.wait_acked(8)
        finally:
            device.close()
        samples = scrape_until(
            url, lambda s: value(s, "cityheart_bridge_acknowledged_total") >= 8
        )
        assert value(samples, "cityheart_mqtt_messages_total") == 8
        assert value(samples, "cityheart_readings_ingested_total") == 5
        assert value(samples, "cityheart_dead_letters_total", reason="invalid_json") == 1
        assert value(samples, "cityheart_dead_letters_total", reason="out_of_range") == 2
    finally:
        process.terminate()
        assert process.wait(30) == 0, log.read_text()


def wait_for_metrics_url(log: Path, component: str, process: subprocess.Popen) -> str:
    """The /metrics URL a component logged at start (it listens on a free port)."""
    pattern = re.compile(rf"{component}: metrics at (http://\S+/metrics)")

    def logged() -> str | None:
        text = log.read_text(errors="replace")
        if (found := pattern.search(text)) and "subscribed to" in text:
            return found.group(1)
        assert process.poll() is None, f"{component} exited:\n{text}"
        return None

    return wait_until(logged, 30, lambda: f"a metrics URL in {log}:\n"
                                          f"{log.read_text(errors='replace')}")


# -- feed ------------------------------------------------------------------------------------


def test_feed_counts_connected_clients_and_messages_sent(settings: Settings) -> None:
    server = serve_metrics("127.0.0.1", 0)

    async def scenario() -> None:
        async with FeedServer(settings, heartbeat_s=0.2) as feed:
            before = await asyncio.to_thread(scrape, server.url)
            clients = [await connect(feed.url) for _ in range(2)]
            for ws in clients:
                await ws.recv()  # hello
                await ws.send(orjson.dumps({"op": "subscribe", "channels": ["alerts"]}).decode())
                assert orjson.loads(await ws.recv())["type"] == "subscribed"
            during = await asyncio.to_thread(scrape, server.url)
            assert value(during, "cityheart_feed_clients") == value(
                before, "cityheart_feed_clients") + 2
            assert value(during, "cityheart_feed_messages_sent_total") >= value(
                before, "cityheart_feed_messages_sent_total") + 2
            await clients[0].close()
            await asyncio.to_thread(scrape_until, server.url, lambda s: value(
                s, "cityheart_feed_clients") == value(before, "cityheart_feed_clients") + 1)
            await clients[1].close()

    try:
        asyncio.run(scenario())
    finally:
        server.close()


# -- consumer lag ----------------------------------------------------------------------------


def test_flow_source_reports_consumer_lag_per_partition(settings: Settings) -> None:
    topic = settings.kafka.topics.readings
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=5)
    for n in range(10):  # one batch each: Tansu's end offset is its last batch's first + 1
        producer.produce(topic, b'{"n": %d}' % n, key=b"k")
        producer.flush(30)
    source = kafka_source(settings.kafka.bootstrap, [topic], batch_size=4)
    [part] = source.list_parts()
    partition = source.build_part("read_readings", part, None)
    server = serve_metrics("127.0.0.1", 0)
    try:
        read = 0
        deadline = time.monotonic() + 30
        while read < 4:
            read += len(list(partition.next_batch()))
            assert time.monotonic() < deadline, "no records from Kafka"
        samples = scrape(server.url)
        assert value(samples, "cityheart_consumer_lag", topic=topic, partition="0") == 10 - read
        while read < 10:
            read += len(list(partition.next_batch()))
            assert time.monotonic() < deadline, "not every record from Kafka"
        samples = scrape(server.url)
        assert ("cityheart_consumer_lag", (("partition", "0"), ("topic", topic))) in samples
        assert value(samples, "cityheart_consumer_lag", topic=topic, partition="0") == 0
        partition.close()  # a closed source no longer reports
        samples = scrape(server.url)
        assert ("cityheart_consumer_lag", (("partition", "0"), ("topic", topic))) not in samples
    finally:
        server.close()


# -- window latency and open incidents -------------------------------------------------------


def incident_record(incident_id: str, sequence: int, state: str, departments: list[str]) -> bytes:
    incident = {"id": incident_id, "sequence": sequence, "state": state,
                "departments": departments, "district": "old-town", "kind": "pm25"}
    event = {"id": f"{incident_id}:{sequence}", "incident_id": incident_id,
             "sequence": sequence, "action": "open" if sequence == 1 else "resolve"}
    return orjson.dumps({**event, "incident": incident})


def test_watch_reports_window_latency_and_open_incidents_per_department(
    settings: Settings,
) -> None:
    topics = settings.kafka.topics
    environment, water = f"env-{uuid.uuid4().hex[:6]}", f"water-{uuid.uuid4().hex[:6]}"
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=5)
    for record in (
        incident_record("inc-1", 1, "open", [environment]),
        incident_record("inc-2", 1, "open", [environment, water]),
        incident_record("inc-3", 1, "open", [water]),
        incident_record("inc-3", 2, "resolved", [water]),
    ):
        producer.produce(topics.incidents, record)
    producer.flush(30)
    recorder = with_metrics_port(settings, 0)
    with component_metrics(recorder, "recorder") as server:  # the recorder runs the watch
        assert server is not None
        before = scrape_until(server.url, lambda s: value(
            s, "cityheart_incidents_open", department=water) == 1 and value(
            s, "cityheart_incidents_open", department=environment) == 2)
        now = time.time()
        for latency in (0.5, 1.5):
            vital = {"district": "old-town", "kind": "pm25", "window_start": iso(now - 10),
                     "window_end": iso(now), "emitted_at": iso(now + latency)}
            producer.produce(topics.vitals, orjson.dumps(vital))
        producer.produce(topics.incidents, incident_record("inc-1", 2, "closed", [environment]))
        producer.flush(30)

        def count(s: Samples) -> float:
            return value(s, "cityheart_window_latency_seconds_count", record="window")

        samples = scrape_until(server.url, lambda s: count(s) >= count(before) + 2 and value(
            s, "cityheart_incidents_open", department=environment) == 1)
        total = value(samples, "cityheart_window_latency_seconds_sum", record="window")
        assert total - value(before, "cityheart_window_latency_seconds_sum",
                             record="window") == pytest.approx(2.0, abs=0.01)
        within_1s = value(samples, "cityheart_window_latency_seconds_bucket",
                          record="window", le="1.0")
        assert within_1s - value(before, "cityheart_window_latency_seconds_bucket",
                                 record="window", le="1.0") == 1
        assert value(samples, "cityheart_incidents_open", department=water) == 1


def test_a_metrics_port_in_use_does_not_stop_the_component(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    taken = serve_metrics("127.0.0.1", 0)
    try:
        busy = with_metrics_port(settings, taken.port)
        with component_metrics(busy, "bridge") as server:
            assert server is None
        assert f"127.0.0.1:{taken.port}" in caplog.text
        assert "running without /metrics" in caplog.text
    finally:
        taken.close()
