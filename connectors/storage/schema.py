"""cityheart's database schema as numbered migrations, for plain PostgreSQL and TimescaleDB.

    with pool.connection() as conn:
        applied = migrate(conn, flavour)          # [1, 2, ..., 6] on an empty database, [] after
        schema_version(conn)                      # 6

=====  ================================================================================
v1     readings, vitals, alerts (hypertables on TimescaleDB)
v2     rollups of readings: readings_1m, readings_1h, readings_1d (continuous aggregates on
       TimescaleDB; tables, views, watermarks and an invalidation trigger on plain PostgreSQL)
v3     indicators (hypertable) and their rollups, incidents, incident_events
v4     alerts.details: what a detector adds to an alert (expected value, band, score, ...)
v5     reports: reports from people and systems (``POST /reports``), by time and district
v6     positions: ``lat``/``lon`` on readings, alerts and incidents (and the incident's
       ``radius_m``), filled from the stored records; indexes for spatial questions (a btree
       on (lat, lon); with PostGIS, created here when the server offers it, a GiST index on
       the position's geography: :mod:`connectors.storage.spatial`)
=====  ================================================================================

:func:`migrate` applies the missing ones in one transaction under an advisory lock, so several
processes starting at once apply each migration once, and records them (with the flavour) in
``schema_migrations``. Each migration is a list of single statements (PGlite takes one at a
time). A new version appends a migration; released ones never change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from connectors.storage.pool import Flavour
from connectors.storage.rollups import PLAIN_SUPPORT, ROLLUPS, rollup_statements
from connectors.storage.spatial import index_statements

__all__ = ["LATEST", "MIGRATIONS", "Migration", "migrate", "schema_version"]

log = logging.getLogger(__name__)

Statement = str | sql.Composable

READINGS = (
    "CREATE TABLE readings (ts timestamptz NOT NULL, device_id text NOT NULL, "
    "district text NOT NULL, kind text NOT NULL, value double precision NOT NULL, "
    "unit text NOT NULL, seq bigint, PRIMARY KEY (device_id, kind, ts))",
    "CREATE INDEX readings_district_kind_ts ON readings (district, kind, ts)",
)
VITALS = (
    "CREATE TABLE vitals (window_start timestamptz NOT NULL, window_end timestamptz NOT NULL, "
    "district text NOT NULL, kind text NOT NULL, unit text NOT NULL, count integer NOT NULL, "
    "mean double precision NOT NULL, min double precision NOT NULL, "
    "max double precision NOT NULL, last double precision NOT NULL, devices integer NOT NULL, "
    "late integer NOT NULL DEFAULT 0, emitted_at timestamptz, "
    "PRIMARY KEY (district, kind, window_start))",
)
ALERTS = (
    "CREATE TABLE alerts (id text PRIMARY KEY, rule text NOT NULL, district text NOT NULL, "
    "kind text NOT NULL, severity text NOT NULL, value double precision, "
    "threshold double precision, direction text, stat text, unit text, "
    "window_start timestamptz, window_end timestamptz, ts timestamptz NOT NULL, "
    "emitted_at timestamptz, message text NOT NULL DEFAULT '')",
    "CREATE INDEX alerts_ts ON alerts (ts)",
    "CREATE INDEX alerts_district_ts ON alerts (district, ts)",
)
INDICATORS = (
    # ts is the end of the window the indicator was computed over
    "CREATE TABLE indicators (ts timestamptz NOT NULL, district text NOT NULL, "
    "indicator text NOT NULL, value double precision NOT NULL, level text, unit text, "
    "score double precision, window_start timestamptz, inputs integer, "
    "coverage double precision, confident boolean, components jsonb, details jsonb, "
    "emitted_at timestamptz, PRIMARY KEY (district, indicator, ts))",
)
INCIDENTS = (
    # the columns queries filter and sort on; ``record`` holds the whole Incident.to_record()
    "CREATE TABLE incidents (id text PRIMARY KEY, state text NOT NULL, severity text, "
    "district text NOT NULL, rule text, kind text, title text NOT NULL DEFAULT '', "
    "departments text[] NOT NULL DEFAULT '{}', opened_at timestamptz NOT NULL, "
    "updated_at timestamptz NOT NULL, acknowledged_at timestamptz, resolved_at timestamptz, "
    "closed_at timestamptz, outcome text, alert_ids text[] NOT NULL DEFAULT '{}', "
    "sequence integer NOT NULL DEFAULT 0, record jsonb)",
    "CREATE INDEX incidents_opened_at ON incidents (opened_at)",
    "CREATE INDEX incidents_district_opened_at ON incidents (district, opened_at)",
    "CREATE TABLE incident_events (id text PRIMARY KEY, incident_id text NOT NULL, "
    "sequence integer NOT NULL DEFAULT 0, ts timestamptz NOT NULL, actor text NOT NULL, "
    "action text NOT NULL, comment text, departments text[] NOT NULL DEFAULT '{}', "
    "details jsonb)",
    "CREATE INDEX incident_events_incident_sequence ON incident_events (incident_id, sequence)",
    "CREATE INDEX incident_events_ts ON incident_events (ts)",
)


REPORTS = (
    "CREATE TABLE reports (id text PRIMARY KEY, kind text NOT NULL, text text NOT NULL, "
    "severity text NOT NULL, district text NOT NULL, ts timestamptz NOT NULL, "
    "reporter text NOT NULL, source text NOT NULL, received_at timestamptz NOT NULL, "
    "lat double precision, lon double precision, attachments text[] NOT NULL DEFAULT '{}')",
    "CREATE INDEX reports_ts ON reports (ts)",
    "CREATE INDEX reports_district_ts ON reports (district, ts)",
)


def _hypertable(table: str, time: str, chunk: str) -> sql.Composable:
    return sql.SQL(
        "SELECT create_hypertable({table}, {time}, chunk_time_interval => INTERVAL {chunk})"
    ).format(table=sql.Literal(table), time=sql.Literal(time), chunk=sql.Literal(chunk))


def _v1(flavour: Flavour) -> list[Statement]:
    statements: list[Statement] = [*READINGS, *VITALS, *ALERTS]
    if flavour.timescale:
        statements += [
            _hypertable("readings", "ts", "1 day"),
            _hypertable("vitals", "window_start", "7 days"),
        ]
    return statements


def _v2(flavour: Flavour) -> list[Statement]:
    support: list[Statement] = [] if flavour.timescale else list(PLAIN_SUPPORT)
    return support + rollup_statements(ROLLUPS["readings"], flavour)


def _v3(flavour: Flavour) -> list[Statement]:
    statements: list[Statement] = list(INDICATORS)
    if flavour.timescale:
        statements.append(_hypertable("indicators", "ts", "7 days"))
    statements += rollup_statements(ROLLUPS["indicators"], flavour)
    return statements + list(INCIDENTS)


def _v4(flavour: Flavour) -> list[Statement]:
    return ["ALTER TABLE alerts ADD COLUMN IF NOT EXISTS details jsonb"]


def _v5(flavour: Flavour) -> list[Statement]:
    return list(REPORTS)


POSITIONS = (
    "ALTER TABLE readings ADD COLUMN IF NOT EXISTS lat double precision",
    "ALTER TABLE readings ADD COLUMN IF NOT EXISTS lon double precision",
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS lat double precision",
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS lon double precision",
    # alerts stored before v6 kept their position in details
    "UPDATE alerts SET lat = (details->>'lat')::float8, lon = (details->>'lon')::float8, "
    "details = nullif(details - 'lat' - 'lon', '{}'::jsonb) "
    "WHERE jsonb_typeof(details->'lat') = 'number' AND jsonb_typeof(details->'lon') = 'number'",
    "ALTER TABLE incidents ADD COLUMN IF NOT EXISTS lat double precision",
    "ALTER TABLE incidents ADD COLUMN IF NOT EXISTS lon double precision",
    "ALTER TABLE incidents ADD COLUMN IF NOT EXISTS radius_m double precision",
    "UPDATE incidents SET lat = (record->>'lat')::float8, lon = (record->>'lon')::float8, "
    "radius_m = coalesce((record->>'radius_m')::float8, 0) "
    "WHERE jsonb_typeof(record->'lat') = 'number' AND jsonb_typeof(record->'lon') = 'number'",
)


def _v6(flavour: Flavour) -> list[Statement]:
    create: list[Statement] = (
        ["CREATE EXTENSION IF NOT EXISTS postgis"] if flavour.postgis else [])
    return [*create, *POSITIONS, *index_statements(flavour.postgis)]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version: its number, what it does, and its statements for a flavour."""

    version: int
    name: str
    statements: Callable[[Flavour], list[Statement]]


MIGRATIONS = (
    Migration(1, "readings, vitals and alerts", _v1),
    Migration(2, "1-minute, 1-hour and 1-day rollups of readings", _v2),
    Migration(3, "indicators and their rollups, incidents and incident events", _v3),
    Migration(4, "alert details (anomaly band and score)", _v4),
    Migration(5, "reports from people and systems", _v5),
    Migration(6, "positions of readings, alerts and incidents, for spatial questions", _v6),
)
LATEST = MIGRATIONS[-1].version

BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
    "name text NOT NULL, flavour text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)
LOCK = "SELECT pg_advisory_xact_lock(hashtext('cityheart schema'))"


def schema_version(conn: psycopg.Connection) -> int:
    """The highest migration applied to ``conn``'s database (0 for an empty one)."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(
    conn: psycopg.Connection, flavour: Flavour, *, target: int | None = None
) -> list[int]:
    """Apply the migrations missing up to ``target`` (default: all); return their numbers.

    Runs in one transaction: either every missing migration is applied, or none.
    """
    applied: list[int] = []
    with conn.transaction():
        conn.execute(LOCK)
        if flavour.timescale:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(BOOTSTRAP)
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in MIGRATIONS:
            if migration.version in done or (target is not None and migration.version > target):
                continue
            for statement in migration.statements(flavour):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, flavour) VALUES (%s, %s, %s)",
                (migration.version, migration.name, flavour.name),
            )
            log.info("schema: applied v%d (%s) on %s", migration.version, migration.name,
                     flavour.name)
            applied.append(migration.version)
    return applied
