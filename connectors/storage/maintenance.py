"""Keeping history tidy: retention, TimescaleDB policies, and the plain-PostgreSQL scheduler.

    apply_policies(conn, flavour, options)            # TimescaleDB: retention, compression jobs
    apply_retention(conn, flavour, retention, now=t)  # drop what is older than kept, now
    with Maintenance(pool, flavour, options):         # plain PostgreSQL: every interval,
        ...                                           # refresh rollups, then apply retention

On TimescaleDB the database's own job scheduler refreshes the continuous aggregates and applies
the policies, so :class:`Maintenance` does nothing there. On plain PostgreSQL it is the
"scheduled SQL": a thread that refreshes the rollups (new buckets, late or backfilled data) and
then deletes rows past their retention, so both flavours keep and show the same history.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from connectors.storage.options import Retention, StorageOptions
from connectors.storage.pool import Flavour
from connectors.storage.rollups import LEVELS, ROLLUPS, refresh_rollups

__all__ = ["Maintenance", "apply_policies", "apply_retention", "retention_targets"]

log = logging.getLogger(__name__)

# (relation, time column, Retention field, TimescaleDB compression segmentby, orderby)
HYPERTABLES = (
    ("readings", "ts", "readings", "district, kind", "device_id, ts DESC"),
    ("vitals", "window_start", "vitals", "district, kind", "window_start DESC"),
    ("indicators", "ts", "indicators", "district, indicator", "ts DESC"),
)


def retention_targets(flavour: Flavour) -> list[tuple[str, str, str]]:
    """(relation, time column, Retention field) of everything retention applies to."""
    targets = [(table, time, field) for table, time, field, _, _ in HYPERTABLES]
    for spec in ROLLUPS.values():
        for level in LEVELS:
            name = spec.name(level)
            relation = name if flavour.timescale else f"{name}_data"
            targets.append((relation, "bucket", f"rollup_{level.suffix}"))
    return targets


def apply_retention(
    conn: psycopg.Connection, flavour: Flavour, retention: Retention, *, now: float
) -> dict[str, int]:
    """Delete rows older than their table's retention at ``now``; return rows (plain) or
    chunks (TimescaleDB, ``drop_chunks``) dropped per relation."""
    dropped: dict[str, int] = {}
    for relation, time_col, field in retention_targets(flavour):
        keep = getattr(retention, field)
        if keep is None:
            continue
        cutoff = datetime.fromtimestamp(now - keep, UTC)
        if flavour.timescale:
            rows = conn.execute(
                "SELECT drop_chunks(%s, older_than => %s::timestamptz)", (relation, cutoff)
            ).fetchall()
            dropped[relation] = len(rows)
        else:
            cur = conn.execute(
                sql.SQL("DELETE FROM {} WHERE {} < %s").format(
                    sql.Identifier(relation), sql.Identifier(time_col)
                ),
                (cutoff,),
            )
            dropped[relation] = cur.rowcount
    return dropped


def apply_policies(conn: psycopg.Connection, flavour: Flavour, options: StorageOptions) -> None:
    """TimescaleDB: (re)create retention and compression policies from ``options``; idempotent.

    Plain PostgreSQL has no policies (:class:`Maintenance` applies retention instead).
    """
    if not flavour.timescale:
        return
    for relation, _, field in retention_targets(flavour):
        keep = getattr(options.retention, field)
        conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (relation,))
        if keep is not None:
            conn.execute(
                "SELECT add_retention_policy(%s, drop_after => %s)",
                (relation, timedelta(seconds=keep)),
            )
    for table, _, _, segment_by, order_by in HYPERTABLES:
        conn.execute("SELECT remove_compression_policy(%s, if_exists => true)", (table,))
        if options.compress_after_s is None:
            continue
        enabled = conn.execute(
            "SELECT compression_enabled FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = %s",
            (table,),
        ).fetchone()
        if not (enabled and enabled[0]):
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby "
                    "= {}, timescaledb.compress_orderby = {})"
                ).format(sql.Identifier(table), sql.Literal(segment_by), sql.Literal(order_by))
            )
        conn.execute(
            "SELECT add_compression_policy(%s, compress_after => %s)",
            (table, timedelta(seconds=options.compress_after_s)),
        )
    log.info("storage: TimescaleDB retention and compression policies set")


class Maintenance:
    """Plain PostgreSQL's scheduler: :meth:`run_once` every ``interval_s`` on its own thread.

    Errors are logged and the next round tries again (the database may be restarting).
    """

    def __init__(
        self,
        pool: ConnectionPool,
        flavour: Flavour,
        options: StorageOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._flavour = flavour
        self._options = options
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        self.rounds = 0

    def run_once(self, now: float | None = None) -> dict[str, int]:
        """Refresh the rollups, then apply retention, as of ``now`` (default: the clock)."""
        now = self._clock() if now is None else now
        with self._pool.connection() as conn:
            refresh_rollups(conn, self._flavour, now=now)
            with conn.transaction():
                dropped = apply_retention(conn, self._flavour, self._options.retention, now=now)
        with self._done:
            self.rounds += 1
            self._done.notify_all()
        if any(dropped.values()):
            log.info("storage: retention dropped %s", {k: v for k, v in dropped.items() if v})
        return dropped

    def wait_rounds(self, rounds: int = 1, timeout: float | None = None) -> bool:
        """Wait until at least ``rounds`` rounds have completed; False if ``timeout`` came first."""
        with self._done:
            return self._done.wait_for(lambda: self.rounds >= rounds, timeout)

    def start(self) -> Maintenance:
        """Run in the background (plain PostgreSQL only; TimescaleDB runs its own jobs)."""
        if self._flavour.timescale or self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._loop, name="storage-maintenance", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the background thread after its current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Maintenance:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except psycopg.Error as exc:
                log.warning("storage maintenance failed (will retry): %s", exc)
            self._stop.wait(self._options.maintenance_interval_s)
