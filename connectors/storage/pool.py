"""Connection pools and what kind of server is behind them: plain PostgreSQL or TimescaleDB.

    pool = open_pool(options)                  # psycopg_pool.ConnectionPool, opened and checked
    with pool.connection() as conn:
        flavour = detect_flavour(conn, options.timescale)
    flavour.timescale                          # True: hypertables and continuous aggregates
    flavour.postgis                            # True: spatial queries through PostGIS

The pool checks each connection before lending it (a server restart leaves broken ones behind)
and reconnects when the server is back; callers decide how long to keep trying (see
:mod:`connectors.storage.writers` for the retry policy). Failures to reach the server at all
become :class:`~models.errors.ConnectorError` naming the URL with its password masked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from connectors.storage.options import StorageOptions, masked_url
from models.errors import ConnectorError

__all__ = ["Flavour", "check_reachable", "detect_flavour", "open_pool"]

log = logging.getLogger(__name__)

RECONNECT_TIMEOUT_S = 5.0
"""How long the pool itself retries a lost connection. Its delays double without a cap, so it
gives up early: the next request for a connection starts a fresh attempt (at a 1 s delay), and
the writers' own retry policy decides how long to keep asking."""


def open_pool(
    options: StorageOptions, *, name: str = "cityheart", wait: bool = True
) -> ConnectionPool:
    """An open pool of ``options.pool_min``..``pool_max`` connections to ``options.url``.

    With ``wait`` it returns only once the first connections work, or raises ConnectorError
    after ``options.pool_timeout_s``.
    """
    pool = ConnectionPool(
        options.url,
        min_size=options.pool_min,
        max_size=options.pool_max,
        open=False,
        name=name,
        timeout=options.pool_timeout_s,
        check=ConnectionPool.check_connection,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        kwargs={"connect_timeout": max(1, round(options.pool_timeout_s))},
    )
    pool.open()
    if wait:
        try:
            pool.wait(options.pool_timeout_s)
        except PoolTimeout as exc:
            pool.close()
            msg = f"no connection within {options.pool_timeout_s:g} s (is the server running?)"
            raise ConnectorError("postgresql", masked_url(options.url), msg) from exc
    return pool


def check_reachable(options: StorageOptions, *, timeout_s: float = 3.0) -> None:
    """Connect once, without retrying: ConnectorError naming the URL and psycopg's reason (such
    as "Connection refused") when the server cannot be reached, within ``timeout_s``."""
    try:
        with psycopg.connect(options.url, connect_timeout=max(1, round(timeout_s))):
            pass
    except psycopg.Error as exc:
        first_line = (str(exc).strip().splitlines() or ["no reason given"])[0]
        reason = first_line.rsplit(": ", 1)[-1].strip()
        raise ConnectorError("postgresql", masked_url(options.url), reason) from exc


@dataclass(frozen=True, slots=True)
class Flavour:
    """The server's kind: ``timescale`` (hypertables, continuous aggregates) or ``plain``."""

    name: Literal["timescale", "plain"]
    server_version: str
    timescale_version: str | None = None
    postgis_version: str | None = None
    """PostGIS in this database (created when the server offers it), else None: spatial
    questions then use a box prefilter and haversine in plain SQL, with the same answers."""

    @property
    def postgis(self) -> bool:
        """Whether spatial questions go through PostGIS (geography, GiST, ST_DWithin)."""
        return self.postgis_version is not None

    @property
    def timescale(self) -> bool:
        """Whether the schema uses TimescaleDB."""
        return self.name == "timescale"

    def describe(self) -> str:
        """A sentence for the log: which server and what the schema uses on it."""
        spatial = (f"; spatial queries by PostGIS {self.postgis_version}" if self.postgis
                   else "; spatial queries by SQL (no PostGIS)")
        if self.timescale:
            return (
                f"PostgreSQL {self.server_version} with TimescaleDB {self.timescale_version}: "
                f"hypertables, continuous aggregates, retention and compression policies{spatial}"
            )
        return (
            f"PostgreSQL {self.server_version} without TimescaleDB: ordinary tables and indexes, "
            f"rollups and retention by scheduled SQL{spatial}"
        )


def detect_flavour(conn: psycopg.Connection, want: str = "auto") -> Flavour:
    """Which flavour to use on ``conn``'s server, given ``want`` (auto, on or off).

    A database that already has cityheart's schema keeps the flavour it was created with. A new
    one uses TimescaleDB when ``want`` is not ``off`` and the extension is installed or can be
    created; ``on`` without it raises ConnectorError. Either uses PostGIS when it is installed
    or can be created (``pg_available_extensions`` lists it), whatever ``want`` says.
    """
    postgis = _scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
    postgis = postgis or _try_create_extension(conn, "postgis")
    flavour = _timescale_flavour(conn, want)
    return Flavour(flavour.name, flavour.server_version, flavour.timescale_version, postgis)


def _timescale_flavour(conn: psycopg.Connection, want: str) -> Flavour:
    address = _address(conn)
    version = _server_version(conn)
    recorded = _recorded_flavour(conn)
    installed = _scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    if recorded is not None:
        if want == "on" and recorded != "timescale":
            msg = "timescale is 'on' but this database was created without TimescaleDB"
            raise ConnectorError("postgresql", address, msg)
        if recorded == "timescale" and installed is None:
            msg = "the schema uses TimescaleDB but the extension is not installed"
            raise ConnectorError("postgresql", address, msg)
        return Flavour(recorded, version, installed)
    if want != "off" and installed is None:
        installed = _try_create_extension(conn, "timescaledb")
    if installed is not None and want != "off":
        return Flavour("timescale", version, installed)
    if want == "on":
        msg = "timescale is 'on' but the server has no usable timescaledb extension"
        raise ConnectorError("postgresql", address, msg)
    return Flavour("plain", version, None)


def _try_create_extension(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = %s", (name,)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        # timescaledb not in shared_preload_libraries, no right to create: do without it
        log.warning("%s %s is available but cannot be created: %s", name, row[0], exc)
        return None
    found = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s",
                         (name,)).fetchone()
    return None if found is None else str(found[0])


def _recorded_flavour(conn: psycopg.Connection) -> Literal["timescale", "plain"] | None:
    if _scalar(conn, "SELECT to_regclass('schema_migrations')::text") is None:
        return None
    value = _scalar(conn, "SELECT flavour FROM schema_migrations ORDER BY version LIMIT 1")
    if value in ("timescale", "plain"):
        return value  # type: ignore[return-value]
    return None


def _server_version(conn: psycopg.Connection) -> str:
    number = conn.info.server_version  # e.g. 180006 for 18.6
    return f"{number // 10000}.{number % 10000}"


def _scalar(conn: psycopg.Connection, query: str) -> str | None:
    row = conn.execute(query).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _address(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"{info.host}:{info.port}/{info.dbname}"
