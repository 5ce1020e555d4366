"""Batch writers: many rows per statement, idempotent, retried while the database is away.

    writer = BatchWriter(pool, "readings")                  # COPY into a staging table
    writer = BatchWriter(pool, "readings", copy=False)      # multi-row INSERT (e.g. PGlite)
    stored = writer.write([reading_row(r) for r in readings])   # rows that were new

Each batch (at most ``batch_rows`` rows) is one transaction: COPY into a temporary staging table,
then ``INSERT ... SELECT ... ON CONFLICT`` into the table; or one multi-row ``INSERT ... ON
CONFLICT`` where COPY is not available. Rows are keyed (see :data:`rows.TABLES`), so writing
the same batch twice, or a replay after a crash, stores nothing twice.

``write`` returns only once the rows are committed: a caller that feeds it from a stream (the
Bytewax sink) gets backpressure instead of a growing buffer when the database is slow. When the
database is unreachable, ``write`` retries the whole batch with the delays of ``delays()`` while
``is_retryable(exc)`` says so (habit 5: the policy is pure and injected, the sleeping happens
here), logging each retry; it raises :class:`~models.errors.ConnectorError` on an error that is
not retryable, or once ``give_up_after`` seconds have passed (None: keep trying).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar

import psycopg
from psycopg import errors, sql
from psycopg_pool import ConnectionPool

from connectors.retry import backoff
from connectors.storage.options import masked_url
from connectors.storage.rows import TABLES, Row, TableSpec
from models.errors import ConnectorError

__all__ = ["BatchWriter", "WriterStats", "backoff", "is_retryable"]

log = logging.getLogger(__name__)

MAX_PARAMS = 65535
T = TypeVar("T")


def is_retryable(exc: Exception) -> bool:
    """Whether trying the same batch again may work.

    Yes for a lost or refused connection, a server shutting down or starting, a pool timeout
    (all OperationalError), serialization failures and deadlocks; no for bad data or SQL.
    """
    if isinstance(exc, (errors.SerializationFailure, errors.DeadlockDetected)):
        return True
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


@dataclass
class WriterStats:
    """What a writer did: batches committed, rows given, rows new, retries, last error."""

    batches: int = 0
    rows: int = 0
    stored: int = 0
    retries: int = 0
    last_error: str | None = None


class BatchWriter:
    """Writes rows of one table through ``pool`` in idempotent batches; see the module doc."""

    def __init__(
        self,
        pool: ConnectionPool,
        table: str | TableSpec,
        *,
        copy: bool = True,
        batch_rows: int = 5000,
        is_retryable: Callable[[Exception], bool] = is_retryable,
        delays: Callable[[], Iterator[float]] = backoff,
        give_up_after: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = TABLES[table] if isinstance(table, str) else table
        self.copy = copy
        self.batch_rows = max(1, min(batch_rows, MAX_PARAMS // len(self.spec.columns)))
        self.stats = WriterStats()
        self._pool = pool
        self._retryable = is_retryable
        self._delays = delays
        self._give_up_after = give_up_after
        self._sleep = sleep
        self._clock = clock
        self._statements = _Statements(self.spec)

    def write(self, rows: Iterable[Row]) -> int:
        """Store ``rows`` (duplicates of a stored key are skipped or applied, per table); return
        how many rows were inserted or changed."""
        unique = self._dedupe(rows)
        stored = 0
        for start in range(0, len(unique), self.batch_rows):
            chunk = unique[start : start + self.batch_rows]
            stored += self._retrying(lambda chunk=chunk: self._write_chunk(chunk), len(chunk))
            self.stats.batches += 1
        self.stats.stored += stored
        return stored

    def _dedupe(self, rows: Iterable[Row]) -> list[Row]:
        """The rows to send: for tables that update a known key, one row per key (one statement
        may not update a row twice): the last, or with ``newer`` the first of the greatest
        ``newer``; others keep them all (ON CONFLICT DO NOTHING skips repeats, even within one
        statement)."""
        spec = self.spec
        given = list(rows)
        self.stats.rows += len(given)
        if spec.on_conflict == "nothing":
            return given
        key_of = itemgetter(*(spec.columns.index(name) for name in spec.key))
        newer = spec.columns.index(spec.newer) if spec.newer else None
        by_key: dict[Any, Row] = {}
        for row in given:
            key = key_of(row)
            if key not in by_key or (newer is None or by_key[key][newer] < row[newer]):
                by_key[key] = row
        return list(by_key.values())

    def _write_chunk(self, chunk: Sequence[Row]) -> int:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if self.copy:
                cur.execute(self._statements.create_stage)
                with cur.copy(self._statements.copy) as copy:
                    copy.set_types(list(self.spec.types))
                    for row in chunk:
                        copy.write_row(row)
                cur.execute(self._statements.from_stage)
            else:
                params = [value for row in chunk for value in row]
                cur.execute(self._statements.insert(len(chunk)), params)
            return max(cur.rowcount, 0)

    def _retrying(self, attempt: Callable[[], T], size: int) -> T:
        delays: Iterator[float] | None = None
        started: float | None = None
        while True:
            try:
                return attempt()
            except psycopg.Error as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                where = masked_url(self._pool.conninfo)
                if not self._retryable(exc):
                    msg = f"writing {size} rows to {self.spec.name!r} failed: {exc}"
                    raise ConnectorError("postgresql", where, msg) from exc
                now = self._clock()
                started = now if started is None else started
                delays = delays or self._delays()
                delay = next(delays, None)
                waited = now - started
                if delay is None or (
                    self._give_up_after is not None and waited + delay > self._give_up_after
                ):
                    msg = (
                        f"gave up writing {size} rows to {self.spec.name!r} after "
                        f"{self.stats.retries} retries in {waited:.1f} s: {exc}"
                    )
                    raise ConnectorError("postgresql", where, msg) from exc
                self.stats.retries += 1
                log.warning(
                    "postgresql at %s: writing %d rows to %r failed (%s); retry %d in %.1f s",
                    where, size, self.spec.name, str(exc).strip().splitlines()[0] if str(exc)
                    else type(exc).__name__, self.stats.retries, delay,
                )
                self._sleep(delay)


class _Statements:
    """The SQL of one table's writer, composed once."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        table = sql.Identifier(spec.name)
        stage = sql.Identifier(f"stage_{spec.name}")
        self.columns = sql.SQL(", ").join(map(sql.Identifier, spec.columns))
        self.conflict = _conflict_clause(spec)
        self.create_stage = sql.SQL(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        ).format(stage=stage, table=table)
        self.copy = sql.SQL("COPY {stage} ({columns}) FROM STDIN (FORMAT BINARY)").format(
            stage=stage, columns=self.columns
        )
        self.from_stage = sql.SQL(
            "INSERT INTO {table} AS t ({columns}) SELECT {columns} FROM {stage} {conflict}"
        ).format(table=table, columns=self.columns, stage=stage, conflict=self.conflict)
        self._inserts: dict[int, sql.Composed] = {}

    def insert(self, rows: int) -> sql.Composed:
        """A multi-row INSERT of ``rows`` rows with ON CONFLICT."""
        statement = self._inserts.get(rows)
        if statement is None:
            one = sql.SQL("({})").format(
                sql.SQL(", ").join(sql.Placeholder() * len(self.spec.columns))
            )
            statement = sql.SQL("INSERT INTO {table} AS t ({columns}) VALUES {values} {conflict}")
            statement = statement.format(
                table=sql.Identifier(self.spec.name),
                columns=self.columns,
                values=sql.SQL(", ").join([one] * rows),
                conflict=self.conflict,
            )
            self._inserts[rows] = statement
        return statement


def _conflict_clause(spec: TableSpec) -> sql.Composed:
    key = sql.SQL(", ").join(map(sql.Identifier, spec.key))
    if spec.on_conflict == "nothing":
        return sql.SQL("ON CONFLICT ({key}) DO NOTHING").format(key=key)
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(column))
        for column in spec.columns
        if column not in spec.key
    )
    clause = sql.SQL("ON CONFLICT ({key}) DO UPDATE SET {updates}").format(
        key=key, updates=updates
    )
    if spec.newer:
        clause += sql.SQL(" WHERE t.{c} < EXCLUDED.{c}").format(c=sql.Identifier(spec.newer))
    return clause
