"""The storage facade: open the database once, then write, query and maintain it.

    with Storage.open(StorageOptions(url=...)) as storage:   # pool, flavour check, migrations
        storage.writer("readings").write(rows)
        storage.history.series("old-town", "pm25", since=t0, until=t1)
        storage.refresh(now=time.time())                       # rollups (e.g. after a backfill)
        with storage.maintenance():                            # plain PostgreSQL's scheduler
            ...

:meth:`Storage.open` detects the flavour (TimescaleDB or plain PostgreSQL) and logs it, applies
missing migrations and (on TimescaleDB) the retention and compression policies. Failures
become :class:`~models.errors.ConnectorError` naming the URL (password masked).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from connectors.storage.history import History
from connectors.storage.maintenance import Maintenance, apply_policies, apply_retention
from connectors.storage.options import StorageOptions
from connectors.storage.pool import Flavour, detect_flavour, open_pool
from connectors.storage.rollups import refresh_rollups
from connectors.storage.schema import migrate
from connectors.storage.writers import BatchWriter
from models.errors import ConnectorError

__all__ = ["Storage"]

log = logging.getLogger(__name__)


class Storage:
    """cityheart's open database: a pool, the server's flavour and the options it was opened
    with. Build it with :meth:`open`."""

    def __init__(self, pool: ConnectionPool, flavour: Flavour, options: StorageOptions) -> None:
        self.pool = pool
        self.flavour = flavour
        self.options = options
        self.history = History(pool, postgis=flavour.postgis)

    @classmethod
    def open(
        cls, options: StorageOptions, *, migrate_schema: bool = True, name: str = "cityheart"
    ) -> Storage:
        """Connect, detect and log the flavour, and bring the schema up to date."""
        pool = open_pool(options, name=name)
        try:
            with pool.connection() as conn:
                flavour = detect_flavour(conn, options.timescale)
            log.info("storage: %s, at %s", flavour.describe(), options.masked_url)
            if migrate_schema:
                with pool.connection() as conn:
                    migrate(conn, flavour)
                    apply_policies(conn, flavour, options)
        except psycopg.Error as exc:
            pool.close()
            msg = f"cannot prepare the schema: {exc}"
            raise ConnectorError("postgresql", options.masked_url, msg) from exc
        except BaseException:
            pool.close()
            raise
        return cls(pool, flavour, options)

    def writer(self, table: str, **kwargs: Any) -> BatchWriter:
        """A batch writer for ``table`` with these options' COPY and batch size settings."""
        kwargs.setdefault("copy", self.options.copy)
        kwargs.setdefault("batch_rows", self.options.batch_rows)
        return BatchWriter(self.pool, table, **kwargs)

    def refresh(self, *, now: float, start: float | None = None) -> None:
        """Materialize the rollups up to ``now`` (the current time), re-doing everything from
        ``start`` on if given (after a backfill or a replay from ``start``)."""
        with self.pool.connection() as conn:
            refresh_rollups(conn, self.flavour, now=now, start=start)

    def apply_retention(self, *, now: float) -> dict[str, int]:
        """Drop rows past their retention as of ``now`` (see maintenance.apply_retention)."""
        with self.pool.connection() as conn:
            return apply_retention(conn, self.flavour, self.options.retention, now=now)

    def maintenance(self, **kwargs: Any) -> Maintenance:
        """The plain-PostgreSQL scheduler for this database (use as a context manager)."""
        return Maintenance(self.pool, self.flavour, self.options, **kwargs)

    def close(self) -> None:
        """Close the pool."""
        self.pool.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
