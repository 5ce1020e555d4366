"""The bridge's batching: when a batch ends, where it goes, whom it acknowledges."""

from __future__ import annotations

import pytest

from connectors.batcher import Batcher, after_all, pack, partition_of
from connectors.kafka import ReliableProducer, create_topics
from models.reading_batch import decode_batch
from models.readings import Reading
from settings.config import Settings
from tests.support import consume_all, unique

T = 1_795_669_200.0


def reading(n: int, device: str | None = None) -> Reading:
    return Reading(device or f"pm-{n}", "harbour", "pm25", float(n), "ug/m3", T + n, n)


class Acks:
    def __init__(self) -> None:
        self.done: list[int] = []

    def of(self, n: int):
        return lambda: self.done.append(n)


def test_a_batch_is_sent_when_its_interval_is_over_with_every_reading_in_order() -> None:
    batcher = Batcher(1, linger_s=0.005, max_readings=1000, max_bytes=262_144)
    acks = Acks()
    for n in range(3):
        assert batcher.add(reading(n), acks.of(n), now=10.0 + n * 0.001) == []
    assert batcher.next_due() == pytest.approx(10.005)
    assert batcher.due(10.004) == []
    (ready,) = batcher.due(10.005)
    assert (ready.partition, ready.count) == (0, 3)
    assert decode_batch(ready.value).readings() == [reading(n) for n in range(3)]
    assert acks.done == [], "nothing is acknowledged before Kafka confirmed the batch"
    ready.delivered()
    assert acks.done == [0, 1, 2]
    assert batcher.next_due() is None and len(batcher) == 0


def test_a_reading_after_the_interval_sends_the_batch_that_waited() -> None:
    batcher = Batcher(1, linger_s=0.005, max_readings=1000, max_bytes=262_144)
    batcher.add(reading(0), lambda: None, now=10.0)
    (ready,) = batcher.add(reading(1), lambda: None, now=10.006)
    assert ready.count == 1
    assert len(batcher) == 1, "the new reading opens the next batch"


def test_a_batch_ends_at_max_readings_and_before_max_bytes() -> None:
    batcher = Batcher(1, linger_s=1.0, max_readings=3, max_bytes=262_144)
    sent = [r for n in range(7) for r in batcher.add(reading(n), lambda: None, now=10.0)]
    assert [r.count for r in sent] == [3, 3]
    assert len(batcher) == 1

    small = Batcher(1, linger_s=1.0, max_readings=1000, max_bytes=1024)
    sent = [r for n in range(100) for r in small.add(reading(n, "d" * 50), lambda: None,
                                                    now=10.0)]
    assert sent and all(len(r.value) <= 1024 for r in sent)
    assert sum(r.count for r in sent) + len(small) == 100


def test_no_linger_sends_each_reading_at_once() -> None:
    batcher = Batcher(1, linger_s=0.0, max_readings=1000, max_bytes=262_144)
    assert [r.count for r in batcher.add(reading(0), lambda: None, now=10.0)] == [1]


def test_a_devices_readings_stay_in_its_partition_in_order() -> None:
    batcher = Batcher(3, linger_s=1.0, max_readings=1000, max_bytes=262_144)
    for n in range(60):
        batcher.add(reading(n, f"dev-{n % 6}"), lambda: None, now=10.0)
    by_partition = {r.partition: decode_batch(r.value).readings() for r in batcher.drain()}
    assert len(by_partition) > 1
    for partition, readings in by_partition.items():
        for device in {r.device_id for r in readings}:
            assert partition == partition_of(device, 3)
            seqs = [r.seq for r in readings if r.device_id == device]
            assert seqs == sorted(seqs)


def test_a_message_of_several_readings_is_acknowledged_after_the_last_batch() -> None:
    acks = Acks()
    acknowledge = after_all(2, acks.of(7))
    acknowledge()
    assert acks.done == []
    acknowledge()
    assert acks.done == [7]


def test_pack_makes_the_records_the_bridge_would() -> None:
    batches = list(pack((reading(n) for n in range(2500)), 1, max_readings=1000))
    assert [b.count for b in batches] == [1000, 1000, 500]
    assert [r.seq for b in batches for r in decode_batch(b.value).readings()] == list(range(2500))


def test_the_partition_is_the_one_librdkafka_gives_the_device_key(settings: Settings) -> None:
    # the bridge before batches produced readings keyed by device id with librdkafka's default
    # partitioner; batches must keep each device in that partition
    topic = unique("partitions")
    create_topics(settings.kafka.bootstrap, [topic], 3)
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=5)
    devices = [f"pm25-harbour-{n:03}" for n in range(40)]
    for device in devices:
        producer.produce(topic, b"{}", key=device.encode())
    producer.flush(30)
    records = consume_all(settings.kafka.bootstrap, topic, len(devices))
    placed = {m.key().decode(): m.partition() for m in records}
    assert placed == {device: partition_of(device, 3) for device in devices}
    assert set(placed.values()) == {0, 1, 2}
