"""The flow scaled out on real Tansu: readings over partitions that divide unevenly.

Bytewax 0.21 is known to stall when Kafka partitions divide unevenly across workers (bytewax
pull request 556: the worker with fewer partitions ends up reading one batch per epoch while the
other is busy). These tests run ``cityheart flow`` with 2 workers in one process, and as 2
processes of one Bytewax cluster, over a ``readings`` topic of 3 partitions holding a backlog,
and wait, with a deadline, until every reading is counted in a closed window: a stalled
partition misses the deadline.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest

from cityheart.runtime.servers import spawn
from connectors.batcher import pack
from connectors.kafka import ReliableProducer, create_topics, tail_consumer
from models.readings import Reading
from settings.config import Settings
from tests.support import write_config

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

PARTITIONS = 3
DEVICES = 48               # spread over every district and kind, keys over all partitions
SECONDS = 3000             # of event time, a reading per device every 2 s: 72,000 readings
EVERY = 2.0
DEADLINE_S = 120.0


def with_partitions(settings: Settings, partitions: int) -> Settings:
    """``settings`` with a readings topic of its own with ``partitions`` partitions."""
    topics = settings.kafka.topics
    readings = f"{topics.readings}.p{partitions}"
    create_topics(settings.kafka.bootstrap, [readings], partitions)
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"topics": topics.model_copy(update={"readings": readings})})})


def backlog(settings: Settings, start: float) -> int:
    """Produce the readings; returns how many."""
    districts = settings.district_ids()
    kinds = list(settings.kinds)
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=20)
    readings = [
        Reading(f"{kind_id}-{n}", district, kind_id, low + 0.3 * (high - low),
                settings.kinds[kind_id].unit, start + step * EVERY + 0.5)
        for step in range(int(SECONDS / EVERY))
        for n in range(DEVICES)
        for district, kind_id in [(districts[n % len(districts)], kinds[n % len(kinds)])]
        for low, high in [settings.kinds[kind_id].range]
    ]
    # in the bridge's batches (100 readings: 5 ms of 20,000 readings/s), each to its device's
    # partition
    for batch in pack(readings, PARTITIONS, max_readings=100):
        producer.produce(settings.kafka.topics.readings, batch.value, partition=batch.partition)
    producer.flush(30)
    return len(readings)


def counted_until(bootstrap: str, topic: str, expected: int, flow_running: object,
                  timeout: float) -> tuple[int, float]:
    """Sum window records' counts until ``expected`` or the deadline; (sum, seconds taken)."""
    consumer = tail_consumer(bootstrap, [topic])
    began = time.monotonic()
    total = 0
    try:
        while total < expected and time.monotonic() - began < timeout:
            for message in consumer.consume(1000, 0.2):
                if message.error() is None:
                    vital = orjson.loads(message.value())
                    if "record" not in vital:
                        total += vital["count"] + vital["late"]
            if not flow_running():  # type: ignore[operator]
                break
    finally:
        consumer.close()
    return total, time.monotonic() - began


@pytest.mark.parametrize(
    "options", [["--workers", "2"], ["--processes", "2"]], ids=["2-workers", "2-processes"]
)
def test_three_partitions_over_two_workers_do_not_stall(
    settings: Settings, tmp_path: Path, options: list[str]
) -> None:
    settings = with_partitions(settings, PARTITIONS)
    start = (time.time() // 60) * 60 - 2 * SECONDS
    expected = backlog(settings, start)
    config = write_config(settings, tmp_path / "config.yaml")
    log_path = tmp_path / "flow.log"
    env = {**os.environ, "CITYHEART_KAFKA_BOOTSTRAP": settings.kafka.bootstrap}
    flow = spawn("flow", [sys.executable, "-m", "cityheart", "flow", "--config", str(config),
                          *options], env=env, log_path=log_path)
    try:
        total, took = counted_until(settings.kafka.bootstrap, settings.kafka.topics.vitals,
                                    expected, lambda: flow.running, DEADLINE_S)
        running = flow.running
    finally:
        code = flow.stop(signal.SIGTERM, timeout=30)
    log = log_path.read_text(errors="replace")
    assert running, f"the flow exited early:\n{log}"
    assert total == expected, f"{total} of {expected} readings in windows after {took:.0f} s"
    assert code == 0, log
    print(f"{options}: {expected} readings in windows within {took:.1f} s")
