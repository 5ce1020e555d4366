"""The embedded Kafka's durable storage: Tansu on s3rver keeps topics, records and consumer
group offsets across a restart of both servers, even when Tansu is killed outright."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cityheart.runtime.kafka_store import TANSU_STORAGE, start_s3_store, tansu_s3_env
from cityheart.runtime.servers import EmbeddedServer, start_kafka_broker
from connectors.kafka import create_topics

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

GROUP = "cityheart-durability"


@contextmanager
def durable_kafka(data_dir: Path, log_dir: Path) -> Iterator[EmbeddedServer]:
    """Tansu on s3rver with its files in ``data_dir``; Tansu is SIGKILLed at the end (a crash),
    then the store stopped."""
    store = start_s3_store(data_dir, log_path=log_dir / "s3rver.log")
    try:
        kafka = start_kafka_broker(log_path=log_dir / "tansu.log", storage=TANSU_STORAGE,
                                   storage_env=tansu_s3_env(store))
        try:
            yield kafka
        finally:
            kafka.child.stop(signal.SIGKILL)
    finally:
        store.stop()


def read_all(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        for _ in range(200):
            if len(values) >= count:
                break
            values += [m.value() for m in consumer.consume(count - len(values), 0.5)
                       if m.error() is None]
        return values
    finally:
        consumer.close()


def committed(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP})
    try:
        [position] = consumer.committed([TopicPartition(topic, 0)], timeout=15)
        return position.offset
    finally:
        consumer.close()


def test_topics_records_and_offsets_survive_a_restart(tmp_path: Path) -> None:
    data, topic = tmp_path / "kafka", "readings"
    sent = [f"reading-{n}".encode() for n in range(300)]
    with durable_kafka(data, tmp_path) as kafka:
        create_topics(kafka.bootstrap, [topic], 1)
        producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 5})
        for n, value in enumerate(sent):
            producer.produce(topic, value)
            if n % 50 == 49:
                assert producer.flush(15) == 0  # several batches, each its own object
        consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": GROUP})
        consumer.commit(offsets=[TopicPartition(topic, 0, 120)], asynchronous=False)
        consumer.close()
    with durable_kafka(data, tmp_path) as kafka:
        assert read_all(kafka.bootstrap, topic, len(sent)) == sent
        assert committed(kafka.bootstrap, topic) == 120
        create_topics(kafka.bootstrap, [topic], 1)  # an existing topic is kept as it is
        assert read_all(kafka.bootstrap, topic, len(sent)) == sent
