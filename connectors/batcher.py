"""The bridge's batching of readings: one record per partition every few milliseconds.

    batcher = Batcher(partitions=3, linger_s=0.02, max_readings=1000, max_bytes=262_144)
    for ready in batcher.add(reading, acknowledge, now=time.monotonic()):
        produce(ready)                      # full: send at once
    for ready in batcher.due(now=time.monotonic()):
        produce(ready)                      # the interval is over: send what there is
    ready.value, ready.partition            # the record; call ready.delivered() once confirmed

Pure (no I/O, no clock: ``now`` comes in), not thread-safe: the bridge holds a lock around it
and its produce calls, so a partition's batches reach the producer in the order they filled.

Partitions: a reading goes to ``crc32(device_id) % partitions`` (:func:`partition_of`), what
librdkafka's default partitioner (``consistent_random``) computes for a record keyed by the
device id, so a device's readings stay in the partition where single-reading records put them,
in order. A batch ends when it holds ``max_readings`` readings, when the next reading would
take its estimated size over ``max_bytes``, or ``linger_s`` after its first reading.

Each reading comes with the acknowledgement of the message that carried it;
:meth:`Ready.delivered` calls them all, once Kafka confirmed the batch. A message whose
readings are in several batches (a pack) is acknowledged after the last of them
(:func:`after_all`).

:func:`pack` batches a backlog at once, as the bridge would (benchmarks and tests fill topics
with it).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from models.reading_batch import ReadingBatch
from models.readings import Reading

__all__ = ["Batcher", "Ready", "after_all", "pack", "partition_of"]

Ack = Callable[[], None]

_OVERHEAD = 160   # bytes of a batch's keys and series beyond its readings
_PER_READING = 48  # bytes of a reading's value, ts, seq and index, besides its device id


def partition_of(device_id: str, partitions: int) -> int:
    """The partition of a device's readings: librdkafka's consistent partitioner (CRC32)."""
    return zlib.crc32(device_id.encode()) % partitions


def after_all(count: int, acknowledge: Ack) -> Ack:
    """A callable that calls ``acknowledge`` on its ``count``-th call (``count`` >= 1)."""
    if count == 1:
        return acknowledge
    left = [count]

    def one_delivered() -> None:
        left[0] -= 1
        if left[0] == 0:
            acknowledge()

    return one_delivered


@dataclass
class Ready:
    """A batch to produce: its partition, record value and the acknowledgements it holds."""

    partition: int
    value: bytes
    count: int
    acks: list[Ack]

    def delivered(self) -> None:
        """Kafka confirmed the batch: acknowledge every message it holds."""
        for acknowledge in self.acks:
            acknowledge()


@dataclass
class _Open:
    started: float
    readings: list[Reading] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    size: int = _OVERHEAD


class Batcher:
    """Open batches per partition; see the module doc."""

    def __init__(
        self, partitions: int, *, linger_s: float, max_readings: int, max_bytes: int
    ) -> None:
        if partitions < 1:
            msg = f"partitions must be >= 1, got {partitions}"
            raise ValueError(msg)
        self.partitions = partitions
        self._linger_s = linger_s
        self._max_readings = max_readings
        self._max_bytes = max_bytes
        self._open: dict[int, _Open] = {}
        self._next_due = float("inf")

    def __len__(self) -> int:
        """Readings held in open batches."""
        return sum(len(batch.readings) for batch in self._open.values())

    def add(self, reading: Reading, acknowledge: Ack, *, now: float) -> list[Ready]:
        """Hold ``reading`` (``acknowledge`` once its batch is confirmed); the batches that
        are ready now: its own when full, and any whose interval is over."""
        ready = self.due(now) if now >= self._next_due else []
        partition = partition_of(reading.device_id, self.partitions)
        size = _PER_READING + len(reading.device_id)
        batch = self._open.get(partition)
        if batch is not None and batch.size + size > self._max_bytes:
            ready.append(self._close(partition))
            batch = None
        if batch is None:
            batch = self._open[partition] = _Open(now)
            self._next_due = min(self._next_due, now + self._linger_s)
        batch.readings.append(reading)
        batch.acks.append(acknowledge)
        batch.size += size
        if len(batch.readings) >= self._max_readings or self._linger_s <= 0:
            ready.append(self._close(partition))
        return ready

    def due(self, now: float) -> list[Ready]:
        """The batches whose interval is over at ``now`` (monotonic seconds)."""
        if now < self._next_due:
            return []
        deadline = now - self._linger_s
        ready = [self._close(p) for p, b in list(self._open.items()) if b.started <= deadline]
        self._next_due = min((b.started for b in self._open.values()), default=float("inf"))
        self._next_due += self._linger_s
        return ready

    def next_due(self) -> float | None:
        """When the oldest open batch is due (monotonic seconds), None when none is open."""
        return None if not self._open else self._next_due

    def drain(self) -> list[Ready]:
        """Every open batch, ready now (the bridge is stopping)."""
        ready = [self._close(p) for p in list(self._open)]
        self._next_due = float("inf")
        return ready

    def _close(self, partition: int) -> Ready:
        batch = self._open.pop(partition)
        value = ReadingBatch.of(batch.readings).encode()
        return Ready(partition, value, len(batch.readings), batch.acks)


def pack(
    readings: Iterable[Reading], partitions: int, *, max_readings: int = 1000,
    max_bytes: int = 262_144,
) -> Iterator[Ready]:
    """``readings`` in the records the bridge would make of them, had they come at once."""
    batcher = Batcher(partitions, linger_s=float("inf"), max_readings=max_readings,
                      max_bytes=max_bytes)
    for reading in readings:
        yield from batcher.add(reading, _nothing, now=0.0)
    yield from batcher.drain()


def _nothing() -> None:
    """No message to acknowledge."""
