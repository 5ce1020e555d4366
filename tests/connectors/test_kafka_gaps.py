"""Readers never skip records: the gap guard of ``connectors.kafka``, alone and on real Tansu.

Tansu reserves a batch's offsets before it stores the batch. While two producers write one
partition (two bridge members, say), a reader's fetch can return the later batch before the
earlier one exists, and a plain consumer then moves past the earlier batch for good. The
readers of ``tail_consumer`` notice the jump in offsets and go back for what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from connectors.kafka import (
    KEEP,
    REWIND,
    SEEN,
    GapGuard,
    GaplessConsumer,
    KafkaRecord,
    create_topics,
    tail_consumer,
)
from tests.support import unique
from tests.support.kafka import produce

pytestmark = pytest.mark.timeout(60)
services = pytest.mark.services


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_records_in_order_are_kept_and_ones_already_returned_are_dropped() -> None:
    guard = GapGuard()
    guard.expect("readings", 0, 0)
    assert [guard.verdict("readings", 0, offset) for offset in (0, 1, 2)] == [KEEP] * 3
    assert guard.verdict("readings", 0, 1) == SEEN       # read again after a rewind
    assert guard.verdict("readings", 1, 7) == KEEP       # a partition with no expectation yet
    assert guard.verdict("readings", 1, 8) == KEEP


def test_a_gap_rewinds_until_it_fills_or_patience_runs_out(caplog) -> None:
    clock = Clock()
    guard = GapGuard(patience_s=2.0, clock=clock)
    guard.expect("readings", 0, 0)
    assert guard.verdict("readings", 0, 169) == REWIND   # 0-168 are not there yet
    assert guard.expected("readings", 0) == 0
    clock.now = 0.5
    assert guard.verdict("readings", 0, 0) == KEEP       # they came: read on from them
    assert guard.verdict("readings", 0, 1) == KEEP
    assert guard.rewinds == 1
    assert guard.verdict("readings", 0, 9) == REWIND     # a gap that never fills ...
    clock.now = 2.4
    assert guard.verdict("readings", 0, 9) == REWIND
    clock.now = 2.6
    with caplog.at_level(logging.WARNING, logger="connectors.kafka"):
        assert guard.verdict("readings", 0, 9) == KEEP   # ... is accepted after 2 s, loudly
    assert "records 2-8 of readings partition 0 never arrived" in caplog.text
    assert guard.verdict("readings", 0, 10) == KEEP


@contextlib.contextmanager
def reader_of_new_topic(
    bootstrap: str, partitions: int, count: int
) -> Iterator[tuple[str, GaplessConsumer]]:
    """A topic holding records "0" .. ``count - 1``, and a tail_consumer of it (closed after)."""
    topic = unique("gaps")
    create_topics(bootstrap, [topic], partitions)
    produce(bootstrap, [KafkaRecord(f"device-{seq % 7}".encode(), str(seq).encode())
                        for seq in range(count)], topic=topic, flush_s=10)
    consumer = tail_consumer(bootstrap, [topic])
    try:
        yield topic, consumer
    finally:
        consumer.close()


def read(consumer, count: int, timeout: float = 10.0) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of the next ``count`` records (fewer if ``timeout`` passes)."""
    records: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        records += [(m.partition(), m.offset(), m.value())
                    for m in consumer.consume(100, 0.1) if m.error() is None]
    return records


@services
def test_a_reader_from_the_beginning_gets_every_record_once_in_order(kafka_broker) -> None:
    with reader_of_new_topic(kafka_broker.bootstrap, partitions=2, count=300) as (_, consumer):
        records = read(consumer, 300)
        assert read(consumer, 1, timeout=0.5) == []       # nothing twice
    assert sorted(int(value) for _, _, value in records) == list(range(300))
    for partition in (0, 1):
        offsets = [offset for p, offset, _ in records if p == partition]
        assert offsets == list(range(len(offsets)))


@services
def test_a_reader_that_finds_records_missing_goes_back_for_them(kafka_broker) -> None:
    with reader_of_new_topic(kafka_broker.bootstrap, partitions=1, count=20) as (topic, consumer):
        consumer.assign([TopicPartition(topic, 0, 12)])   # the broker would hand 12.. first
        consumer.guard.expect(topic, 0, 5)                # but 5 is the next one due
        records = read(consumer, 15)
    assert [offset for _, offset, _ in records] == list(range(5, 20))
    assert consumer.guard.rewinds >= 1


@services
def test_a_reader_placed_at_an_offset_starts_there(kafka_broker) -> None:
    # the dispatch consumer does this with the offsets of its checkpoint
    with reader_of_new_topic(kafka_broker.bootstrap, partitions=1, count=20) as (topic, consumer):
        consumer.assign([TopicPartition(topic, 0, 15)])
        records = read(consumer, 5)
        assert read(consumer, 1, timeout=0.5) == []
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        again = read(consumer, 20)
    assert [offset for _, offset, _ in records] == [15, 16, 17, 18, 19]
    assert consumer.guard.rewinds == 0
    assert [offset for _, offset, _ in again] == list(range(20))
