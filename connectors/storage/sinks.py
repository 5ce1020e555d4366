"""Bytewax sinks that store the flow's output in PostgreSQL, batch by batch.

    op.output("store_readings", readings, PostgresSink(options, "readings"))
    op.output("store_vitals", vital_records, PostgresSink(options, "vitals"))
    op.output("store_alerts", alert_records, PostgresSink(options, "alerts"))

Items are what :data:`rows.ROW_BUILDERS` takes for the table (a Reading or a wire record dict),
or anything else with ``to_row`` given. Each worker opens its own small pool and
:class:`~connectors.storage.writers.BatchWriter`; ``write_batch`` returns once the rows are
committed, so Bytewax never gets ahead of what PostgreSQL stored (backpressure: a slow database
slows the flow, which then reads Kafka more slowly, instead of buffering). While the database
is down the writer retries the batch (the flow waits); an error that retrying cannot fix stops
the flow with a ConnectorError. Writes are idempotent, so a flow restarted from earlier Kafka
offsets stores nothing twice.

The schema must exist: run :func:`connectors.storage.Storage.open` (which migrates) once at
start, before building the flow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from psycopg_pool import ConnectionPool

from connectors.storage.options import StorageOptions
from connectors.storage.pool import open_pool
from connectors.storage.rows import ROW_BUILDERS, Row
from connectors.storage.writers import BatchWriter, backoff, is_retryable

__all__ = ["PostgresSink", "RoutedPostgresSink"]

log = logging.getLogger(__name__)

X = TypeVar("X")


def _worker_pool(options: StorageOptions, name: str) -> ConnectionPool:
    """A small pool (at most two connections) for one worker's sink partition."""
    small = StorageOptions(
        url=options.url, timescale=options.timescale, pool_min=1,
        pool_max=min(2, options.pool_max), pool_timeout_s=options.pool_timeout_s,
        batch_rows=options.batch_rows, copy=options.copy,
    )
    return open_pool(small, name=name, wait=False)


class _Partition(StatelessSinkPartition[X], Generic[X]):
    def __init__(self, pool: ConnectionPool, writer: BatchWriter, to_row: Callable[[X], Row]):
        self._pool = pool
        self._writer = writer
        self._to_row = to_row

    def write_batch(self, items: list[X]) -> None:
        if items:
            self._writer.write([self._to_row(item) for item in items])

    def close(self) -> None:
        self._pool.close()


class PostgresSink(DynamicSink[X], Generic[X]):
    """A Bytewax sink writing items to ``table``; see the module doc."""

    def __init__(
        self,
        options: StorageOptions,
        table: str,
        *,
        to_row: Callable[[Any], Row] | None = None,
        is_retryable: Callable[[Exception], bool] = is_retryable,
        delays: Callable[[], Iterator[float]] = backoff,
        give_up_after: float | None = None,
    ) -> None:
        if to_row is None and table not in ROW_BUILDERS:
            msg = f"table {table!r} is not one of {sorted(ROW_BUILDERS)} (or pass to_row)"
            raise ValueError(msg)
        self.options = options
        self.table = table
        self._to_row = to_row or ROW_BUILDERS[table]
        self._retryable = is_retryable
        self._delays = delays
        self._give_up_after = give_up_after

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition[X]:
        """A partition with its own pool (at most two connections) for one worker."""
        options = self.options
        pool = _worker_pool(options, f"{step_id}-{worker_index}")
        writer = BatchWriter(
            pool, self.table, copy=options.copy, batch_rows=options.batch_rows,
            is_retryable=self._retryable, delays=self._delays, give_up_after=self._give_up_after,
        )
        log.info("%s: storing %s in PostgreSQL at %s", step_id, self.table, options.masked_url)
        return _Partition(pool, writer, self._to_row)


class _RoutedPartition(StatelessSinkPartition[X], Generic[X]):
    def __init__(
        self, pool: ConnectionPool, writer_for: Callable[[str], BatchWriter],
        route: Callable[[X], tuple[str, Row] | None],
    ) -> None:
        self._pool = pool
        self._writer_for = writer_for
        self._writers: dict[str, BatchWriter] = {}
        self._route = route

    def write_batch(self, items: list[X]) -> None:
        by_table: dict[str, list[Row]] = {}
        for item in items:
            routed = self._route(item)
            if routed is not None:
                by_table.setdefault(routed[0], []).append(routed[1])
        for table, rows in by_table.items():
            if table not in self._writers:
                self._writers[table] = self._writer_for(table)
            self._writers[table].write(rows)

    def close(self) -> None:
        self._pool.close()


class RoutedPostgresSink(DynamicSink[X], Generic[X]):
    """A Bytewax sink writing each item to the table ``route(item)`` names, or nowhere (None).

        RoutedPostgresSink(options, lambda record: vitals_topic_row(orjson.loads(record.value)))

    For streams that mix tables, such as the vitals topic's window and indicator records.
    Batches, idempotency and retries are those of :class:`PostgresSink`.
    """

    def __init__(
        self, options: StorageOptions, route: Callable[[X], tuple[str, Row] | None]
    ) -> None:
        self.options = options
        self._route = route

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RoutedPartition[X]:
        """A partition with its own small pool for one worker."""
        options = self.options
        pool = _worker_pool(options, f"{step_id}-{worker_index}")

        def writer_for(table: str) -> BatchWriter:
            return BatchWriter(pool, table, copy=options.copy, batch_rows=options.batch_rows)

        log.info("%s: storing in PostgreSQL at %s", step_id, options.masked_url)
        return _RoutedPartition(pool, writer_for, self._route)
