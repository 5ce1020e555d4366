"""History storage on PostgreSQL (psycopg 3 with a pool), with TimescaleDB when the server has it.

    from cityheart.runtime.postgres import start_postgres   # the embedded server, for one machine
    from connectors.storage import Storage, StorageOptions

    with start_postgres(Path("var/pgdata"), port=5433, database="cityheart") as pg:
        with Storage.open(StorageOptions(url=pg.url("cityheart"))) as storage:
            storage.writer("readings").write([reading_row(r) for r in readings])
            storage.history.series("old-town", "pm25", since=t0, until=t1).records()

Modules:

- :mod:`~connectors.storage.options`: StorageOptions and Retention (frozen settings)
- :mod:`~connectors.storage.pool`: the connection pool; plain PostgreSQL or TimescaleDB
- :mod:`~connectors.storage.schema`: versioned migrations
- :mod:`~connectors.storage.rollups`: 1 min / 1 h / 1 day rollups on either flavour
- :mod:`~connectors.storage.rows`: tables and the rows of readings, vitals, alerts, ...
- :mod:`~connectors.storage.writers`: idempotent batch writers (COPY or multi-row INSERT) with
  an injected retry policy
- :mod:`~connectors.storage.sinks`: the Bytewax sink (imported on its own: it needs bytewax)
- :mod:`~connectors.storage.history`: history queries (series, latest, alerts, incidents,
  readings for replays)
- :mod:`~connectors.storage.maintenance`: retention, TimescaleDB policies, plain scheduler
- :mod:`~connectors.storage.store`: the Storage facade tying them together
"""

from __future__ import annotations

from connectors.storage.history import History
from connectors.storage.maintenance import Maintenance
from connectors.storage.options import Retention, StorageOptions
from connectors.storage.pool import Flavour
from connectors.storage.rows import ROW_BUILDERS, TABLES
from connectors.storage.store import Storage
from connectors.storage.writers import BatchWriter, backoff, is_retryable

__all__ = [
    "ROW_BUILDERS",
    "TABLES",
    "BatchWriter",
    "Flavour",
    "History",
    "Maintenance",
    "Retention",
    "Storage",
    "StorageOptions",
    "backoff",
    "is_retryable",
]
