"""Two runs of ``cityheart up``'s stack on one data directory keep one truth: the incident the
first run opened is still in the log, the flow still knows it, and it can be acknowledged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from cityheart.runtime.servers import free_port
from cityheart.runtime.up import RunningCity, city_stack
from cityheart.services.dispatch import DispatchService
from connectors.command_bus import CommandBus
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.tokens import Claims
from models.reading_batch import readings_in as batch_readings
from models.readings import Reading
from settings.config import Settings
from tests.support import write_config
from tests.support.dispatch import raise_pollution
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]


def durable_city(settings: Settings, root: Path) -> Settings:
    """``settings`` with an embedded, durable Kafka and PostgreSQL keeping their data in
    ``root``, on free loopback ports, and the flow's recovery left to ``up``."""
    return settings.model_copy(update={
        "mqtt": settings.mqtt.model_copy(update={"embedded": False}),  # no bridge runs
        "kafka": settings.kafka.model_copy(update={
            "bootstrap": f"127.0.0.1:{free_port()}", "embedded": True, "storage": "durable",
            "data_dir": str(root / "kafka")}),
        "database": settings.database.model_copy(update={
            "url": SecretStr(f"postgresql://postgres@127.0.0.1:{free_port()}/cityheart"),
            "embedded": True, "data_dir": str(root / "pgdata")}),
        "flow": settings.flow.model_copy(update={"recovery_dir": None,
                                                 "snapshot_interval_s": 1.0}),
        "metrics": settings.metrics.model_copy(update={"enabled": False}),
    })


@contextmanager
def run_up(settings: Settings, root: Path, run: int) -> Iterator[tuple[RunningCity, Storage]]:
    """One run of the stack (the flow and the recorder), and the recorder's database."""
    config = write_config(settings, root / f"config-{run}.yaml")
    with city_stack(settings, config_path=config, log_dir=root / f"log-{run}",
                    components=("flow", "recorder")) as city:
        storage = Storage.open(StorageOptions(url=settings.database.url.get_secret_value()))
        try:
            yield city, storage
        finally:
            storage.close()


def readings_in(bootstrap: str, topic: str, wanted: int) -> list[Reading]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "restart-check",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        readings: list[Reading] = []
        deadline = time.monotonic() + 30
        while len(readings) < wanted and time.monotonic() < deadline:
            readings += [reading for m in consumer.consume(10, 0.5) if m.error() is None
                         for reading in batch_readings(m.value())]
        return readings
    finally:
        consumer.close()


def test_an_incident_of_the_first_run_can_be_acknowledged_after_a_restart(
    base_settings: Settings, tmp_path: Path
) -> None:
    first = durable_city(base_settings, tmp_path)
    with run_up(first, tmp_path, 1) as (city, storage):
        assert city.kafka_storage == "durable"
        assert city.flow_recovery == (tmp_path / "kafka" / "flow-recovery").resolve()
        raise_pollution(first)
        opened = wait_until(lambda: storage.history.incidents(states=["open"]), 90,
                            "an incident opened by the first run", every=0.2)
    # a second `up`: new ports, the same data directories
    second = durable_city(base_settings, tmp_path)
    with run_up(second, tmp_path, 2) as (city, storage):
        readings = readings_in(city.kafka_bootstrap, second.kafka.topics.readings, 3)
        assert len(readings) == 3, "the first run's readings are still in the topic"
        still_open = storage.history.incidents(states=["open"])
        assert {i["id"] for i in opened} <= {i["id"] for i in still_open}
        topics = second.kafka.topics
        with CommandBus(city.kafka_bootstrap, topics.commands, topics.command_results) as bus:
            service = DispatchService(second, storage=lambda: storage, bus=bus, timeout=60)
            now = int(time.time())
            operator = Claims(role="operator", sub="olga", iat=now, exp=now + 3600)
            for incident in still_open:
                status, answer = service.act(operator, incident["id"], {"action": "ack"})
                assert status == 200, (incident["id"], answer)
                assert answer["incident"]["state"] == "acknowledged"
