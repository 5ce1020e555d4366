"""Kafka for tests: write records into a test's topics, read a topic until what a test waits for
is there.

    produce(settings.kafka.bootstrap, [KafkaRecord(key, value), ...], topic=topic)
    records = consume_all(bootstrap, topic, expected=3)
    records = consume_until(bootstrap, topic, lambda records: ..., timeout=60)
    readings = consume_readings(bootstrap, topic, expected=3)   # out of the batches
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from connectors.kafka import KafkaRecord
from models.reading_batch import readings_in
from models.readings import Reading

__all__ = ["consume_all", "consume_readings", "consume_until", "produce", "readings_of"]


def produce(bootstrap: str, records: Iterable[KafkaRecord], *, topic: str | None = None,
            flush_s: float = 15.0) -> None:
    """Write ``records`` (their key and value) in order with one producer, each to its own
    ``topic`` or else to ``topic``; then flush, waiting up to ``flush_s`` s for every delivery."""
    from connectors.kafka import ReliableProducer

    producer = ReliableProducer(bootstrap, linger_ms=5)
    for record in records:
        target = record.topic or topic
        assert target is not None, f"no topic for {record}: give produce(..., topic=)"
        producer.produce(target, record.value, key=record.key)
    producer.flush(flush_s)


def consume_until(bootstrap: str, topic: str, done: Callable[[list[Any]], bool],
                  timeout: float = 30.0) -> list[Any]:
    """Read ``topic`` from the start until ``done(records so far)`` or ``timeout`` passed; the
    records (confluent-kafka messages), every one read (the last batch whole): the caller
    asserts on them."""
    import time

    from connectors.kafka import tail_consumer

    consumer = tail_consumer(bootstrap, [topic])
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(records) and time.monotonic() < deadline:
            records += [m for m in consumer.consume(1000, 0.1) if m.error() is None]
    finally:
        consumer.close()
    return records


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """Read ``topic`` from the start until ``expected`` records arrived or ``timeout`` passed."""
    return consume_until(bootstrap, topic, lambda records: len(records) >= expected, timeout)


def readings_of(records: Iterable[Any]) -> list[Reading]:
    """The readings in ``readings`` records (confluent-kafka messages), in order."""
    return [reading for record in records for reading in readings_in(record.value() or b"")]


def consume_readings(bootstrap: str, topic: str, expected: int,
                     timeout: float = 30.0) -> list[Reading]:
    """Read a ``readings`` topic from the start until its batches hold ``expected`` readings or
    ``timeout`` passed; the readings, in order."""
    records = consume_until(bootstrap, topic,
                            lambda records: len(readings_of(records)) >= expected, timeout)
    return readings_of(records)
