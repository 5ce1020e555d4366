"""A Bytewax source of stored readings, for re-running the city flow over history.

    source = StoredReadingsSource(options, since=t1, until=t2)
    flow = build_flow(settings, source=source, ...)

It yields the readings stored in ``[since, until)`` in time order, as
:class:`~connectors.kafka.KafkaRecord` items shaped like the ``readings`` topic's records (a
:class:`~models.reading_batch.ReadingBatch` each, no key), so the flow runs exactly its live
logic on them. One partition, read through a server-side cursor ``batch`` rows at a time, each
``batch`` rows one record; it ends when the range is exhausted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from connectors.kafka import KafkaRecord
from connectors.storage.history import History
from connectors.storage.options import StorageOptions
from connectors.storage.pool import open_pool
from models.reading_batch import ReadingBatch
from models.readings import Reading

__all__ = ["StoredReadingsSource"]


class _StoredReadings(StatefulSourcePartition[KafkaRecord, None]):
    def __init__(self, source: StoredReadingsSource) -> None:
        self._pool = open_pool(source.options, name="replay-readings")
        readings: Iterator[Reading] = History(self._pool).readings(
            since=source.since, until=source.until, districts=source.districts,
            kinds=source.kinds, batch=source.batch,
        )
        self._readings = readings
        self._batch = source.batch

    def next_batch(self) -> list[KafkaRecord]:
        readings = list(islice(self._readings, self._batch))
        if not readings:
            raise StopIteration
        return [KafkaRecord(None, ReadingBatch.of(readings).encode())]

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._pool.close()


class StoredReadingsSource(FixedPartitionedSource[KafkaRecord, None]):
    """Stored readings of ``[since, until)`` (epoch seconds), optionally of some districts/kinds."""

    def __init__(
        self,
        options: StorageOptions,
        *,
        since: float,
        until: float,
        districts: Sequence[str] = (),
        kinds: Sequence[str] = (),
        batch: int = 5000,
    ) -> None:
        self.options = options
        self.since = since
        self.until = until
        self.districts = tuple(districts)
        self.kinds = tuple(kinds)
        self.batch = batch

    def list_parts(self) -> list[str]:
        """One partition: the range is read in time order."""
        return ["stored-readings"]

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> _StoredReadings:
        """The reader of the range."""
        return _StoredReadings(self)
