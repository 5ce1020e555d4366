"""Rollups of readings and indicators: 1-minute, 1-hour and 1-day buckets per district.

Each source gets three relations, named ``<source>_1m``, ``<source>_1h`` and ``<source>_1d``,
with the columns ``bucket, district, <key>, n, total, lo, hi`` (count, sum, min and max: the mean
is ``total / n``). Each level aggregates the one below (1 h from 1 min, 1 day from 1 h).

- TimescaleDB: real-time continuous aggregates (``materialized_only = false``) with refresh
  policies: materialized buckets up to the aggregate's watermark, the rest computed on the fly.
- Plain PostgreSQL: the same thing by hand. ``<name>_data`` holds materialized buckets below the
  watermark kept in ``rollup_watermarks``; the view ``<name>`` adds buckets at or above it,
  aggregated on the fly; a statement trigger on the source logs rows written below a watermark in
  ``rollup_invalidations`` (late or backfilled data); :func:`refresh_rollups` materializes new
  buckets and invalidated ranges and moves the watermarks.

So one query answers the same on both: ``SELECT ... FROM readings_1h WHERE ...``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from connectors.storage.pool import Flavour

__all__ = [
    "LEVELS",
    "ROLLUPS",
    "Level",
    "RollupSpec",
    "refresh_rollups",
    "rollup_statements",
    "watermarks",
]


@dataclass(frozen=True, slots=True)
class Level:
    """One rollup level: its suffix, bucket length, and the TimescaleDB refresh policy offsets."""

    suffix: str
    interval: str
    step_s: float
    start_offset: str
    schedule: str


LEVELS = (
    Level("1m", "1 minute", 60.0, "2 hours", "1 minute"),
    Level("1h", "1 hour", 3600.0, "3 days", "30 minutes"),
    Level("1d", "1 day", 86400.0, "7 days", "1 hour"),
)


@dataclass(frozen=True, slots=True)
class RollupSpec:
    """What to roll up: ``source`` table, its time and value columns, the series ``key`` column."""

    source: str
    key: str
    time: str = "ts"
    value: str = "value"

    def name(self, level: Level) -> str:
        """The relation of one level, e.g. ``readings_1h``."""
        return f"{self.source}_{level.suffix}"


ROLLUPS = {
    "readings": RollupSpec("readings", "kind"),
    "indicators": RollupSpec("indicators", "indicator"),
}


def _aggregate(spec: RollupSpec, index: int, bucket_sql: sql.Composable) -> sql.Composed:
    """SELECT of level ``index``'s buckets from the level below (or the source), without WHERE."""
    level = LEVELS[index]
    if index == 0:
        time_col, source = sql.Identifier(spec.time), sql.Identifier(spec.source)
        value = sql.Identifier(spec.value)
        measures = sql.SQL("count(*)::bigint, sum({v}), min({v}), max({v})").format(v=value)
    else:
        time_col, source = sql.Identifier("bucket"), sql.Identifier(spec.name(LEVELS[index - 1]))
        measures = sql.SQL("sum(n)::bigint, sum(total), min(lo), max(hi)")
    bucket = bucket_sql.format(interval=sql.Literal(level.interval), time=time_col)
    return sql.SQL(
        "SELECT {bucket} AS bucket, district, {key}, {measures} FROM {source}"
    ).format(bucket=bucket, key=sql.Identifier(spec.key), measures=measures, source=source)


def _group_by(spec: RollupSpec, index: int, bucket_sql: sql.Composable) -> sql.Composed:
    time_col = sql.Identifier(spec.time if index == 0 else "bucket")
    bucket = bucket_sql.format(interval=sql.Literal(LEVELS[index].interval), time=time_col)
    return sql.SQL(" GROUP BY {bucket}, district, {key}").format(
        bucket=bucket, key=sql.Identifier(spec.key)
    )


TIME_BUCKET = sql.SQL("time_bucket(INTERVAL {interval}, {time})")
DATE_BIN = sql.SQL("date_bin(INTERVAL {interval}, {time}, TIMESTAMPTZ '2000-01-01 00:00:00+00')")
COLUMNS = "bucket, district, {key}, n, total, lo, hi"


def rollup_statements(spec: RollupSpec, flavour: Flavour) -> list[sql.Composable]:
    """The DDL creating ``spec``'s three levels on ``flavour`` (its source table must exist)."""
    if flavour.timescale:
        return list(_timescale_ddl(spec))
    return list(_plain_ddl(spec))


def _timescale_ddl(spec: RollupSpec) -> Iterator[sql.Composable]:
    columns = sql.SQL(COLUMNS).format(key=sql.Identifier(spec.key))
    for index, level in enumerate(LEVELS):
        name = sql.Identifier(spec.name(level))
        yield sql.SQL(
            "CREATE MATERIALIZED VIEW {name} ({columns}) WITH (timescaledb.continuous, "
            "timescaledb.materialized_only = false) AS {select}{group} WITH NO DATA"
        ).format(
            name=name,
            columns=columns,
            select=_aggregate(spec, index, TIME_BUCKET),
            group=_group_by(spec, index, TIME_BUCKET),
        )
        yield sql.SQL(
            "SELECT add_continuous_aggregate_policy({name}, start_offset => INTERVAL {start}, "
            "end_offset => INTERVAL {end}, schedule_interval => INTERVAL {every})"
        ).format(
            name=sql.Literal(spec.name(level)),
            start=sql.Literal(level.start_offset),
            end=sql.Literal(level.interval),
            every=sql.Literal(level.schedule),
        )


def _plain_ddl(spec: RollupSpec) -> Iterator[sql.Composable]:
    key = sql.Identifier(spec.key)
    source = sql.Identifier(spec.source)
    for index, level in enumerate(LEVELS):
        name = spec.name(level)
        data = sql.Identifier(f"{name}_data")
        yield sql.SQL(
            "CREATE TABLE {data} (bucket timestamptz NOT NULL, district text NOT NULL, "
            "{key} text NOT NULL, n bigint NOT NULL, total double precision NOT NULL, "
            "lo double precision NOT NULL, hi double precision NOT NULL, "
            "PRIMARY KEY (district, {key}, bucket))"
        ).format(data=data, key=key)
        yield sql.SQL("CREATE INDEX {index} ON {data} (bucket)").format(
            index=sql.Identifier(f"{name}_data_bucket"), data=data
        )
        yield sql.SQL(
            "INSERT INTO rollup_watermarks (name) VALUES ({name}) ON CONFLICT DO NOTHING"
        ).format(name=sql.Literal(name))
        mark = sql.SQL(
            "COALESCE((SELECT watermark FROM rollup_watermarks WHERE name = {name}), "
            "'-infinity'::timestamptz)"
        ).format(name=sql.Literal(name))
        time_col = sql.Identifier(spec.time if index == 0 else "bucket")
        yield sql.SQL(
            "CREATE VIEW {view} AS SELECT {columns} FROM {data} WHERE bucket < {mark} "
            "UNION ALL {select} WHERE {time} >= {mark}{group}"
        ).format(
            view=sql.Identifier(name),
            columns=sql.SQL(COLUMNS).format(key=key),
            data=data,
            mark=mark,
            select=_aggregate(spec, index, DATE_BIN),
            time=time_col,
            group=_group_by(spec, index, DATE_BIN),
        )
    for event in ("INSERT", "UPDATE"):
        yield sql.SQL(
            "CREATE TRIGGER {trigger} AFTER {event} ON {source} REFERENCING NEW TABLE AS "
            "new_rows FOR EACH STATEMENT EXECUTE FUNCTION cityheart_invalidate_rollups()"
        ).format(
            trigger=sql.Identifier(f"{spec.source}_invalidate_rollups_{event.lower()}"),
            event=sql.SQL(event),
            source=source,
        )


PLAIN_SUPPORT: tuple[str, ...] = (
    "CREATE TABLE rollup_watermarks (name text PRIMARY KEY, watermark timestamptz)",
    "CREATE TABLE rollup_invalidations (source text NOT NULL, lo timestamptz NOT NULL, "
    "hi timestamptz NOT NULL)",
    # rows written below a watermark (late or backfilled) leave a range to re-materialize
    """CREATE FUNCTION cityheart_invalidate_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rollup_invalidations (source, lo, hi)
  SELECT TG_TABLE_NAME, min(ts), max(ts) FROM new_rows
  HAVING min(ts) < (SELECT max(watermark) FROM rollup_watermarks
                    WHERE name LIKE TG_TABLE_NAME || '\\_%');
  RETURN NULL;
END $$""",
)
"""Plain PostgreSQL objects every rollup uses, created once before the first rollup."""


def watermarks(conn: psycopg.Connection) -> dict[str, float | None]:
    """Plain PostgreSQL: each rollup's watermark in epoch seconds (None: nothing materialized)."""
    rows = conn.execute(
        "SELECT name, extract(epoch FROM watermark)::float8 FROM rollup_watermarks"
    ).fetchall()
    return {name: mark for name, mark in rows}


def refresh_rollups(
    conn: psycopg.Connection,
    flavour: Flavour,
    *,
    now: float,
    start: float | None = None,
    sources: tuple[str, ...] = tuple(ROLLUPS),
) -> None:
    """Materialize complete buckets up to ``now`` (the current time), and re-materialize
    everything from ``start`` on if given (after a backfill or replay from ``start``).

    Plain PostgreSQL: one transaction per source that takes its invalidations, upserts the new
    and invalidated buckets level by level and moves the watermarks. TimescaleDB: calls
    ``refresh_continuous_aggregate`` per level, which needs ``conn`` in autocommit mode.
    """
    if flavour.timescale:
        _refresh_timescale(conn, [ROLLUPS[s] for s in sources], now, start)
        return
    for source in sources:
        with conn.transaction():
            _refresh_plain(conn, ROLLUPS[source], now, start)


def _refresh_timescale(
    conn: psycopg.Connection, specs: list[RollupSpec], now: float, start: float | None
) -> None:
    autocommit = conn.autocommit
    conn.autocommit = True  # refresh_continuous_aggregate refuses to run in a transaction
    try:
        for spec in specs:
            for level in LEVELS:
                # whole buckets only: TimescaleDB refuses a window smaller than one bucket
                end = math.floor(now / level.step_s) * level.step_s
                low = None if start is None else math.floor(start / level.step_s) * level.step_s
                if low is not None and low >= end:
                    continue  # no complete bucket yet: queries compute it on the fly
                conn.execute(
                    "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)",
                    (spec.name(level), _dt(low), _dt(end)),
                )
    finally:
        conn.autocommit = autocommit


def _refresh_plain(
    conn: psycopg.Connection, spec: RollupSpec, now: float, start: float | None
) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('cityheart rollups'))")
    row = conn.execute(
        "WITH taken AS (DELETE FROM rollup_invalidations WHERE source = %s RETURNING lo) "
        "SELECT extract(epoch FROM min(lo))::float8 FROM taken",
        (spec.source,),
    ).fetchone()
    dirty_lo = row[0] if row else None
    if start is not None:
        dirty_lo = start if dirty_lo is None else min(dirty_lo, start)
    marks = watermarks(conn)
    for index, level in enumerate(LEVELS):
        name = spec.name(level)
        mark = marks.get(name)
        new_mark = math.floor(now / level.step_s) * level.step_s - level.step_s
        top = new_mark if mark is None else max(mark, new_mark)
        low = mark  # None: never materialized, so from the beginning
        if mark is not None and dirty_lo is not None:
            low = min(math.floor(dirty_lo / level.step_s) * level.step_s, mark)
        if low is None or low < top:
            _materialize(conn, spec, index, low, top)
        conn.execute(
            "UPDATE rollup_watermarks SET watermark = %s WHERE name = %s", (_dt(top), name)
        )
        # what changed at this level is dirty for the next one
        if low is not None and dirty_lo is not None:
            dirty_lo = low


def _materialize(
    conn: psycopg.Connection, spec: RollupSpec, index: int, low: float | None, high: float
) -> None:
    time_col = sql.Identifier(spec.time if index == 0 else "bucket")
    where = sql.SQL(" WHERE {t} < %(high)s").format(t=time_col)
    if low is not None:
        where += sql.SQL(" AND {t} >= %(low)s").format(t=time_col)
    name = spec.name(LEVELS[index])
    statement = sql.SQL(
        "INSERT INTO {data} ({columns}) {select}{where}{group} "
        "ON CONFLICT (district, {key}, bucket) DO UPDATE SET n = EXCLUDED.n, "
        "total = EXCLUDED.total, lo = EXCLUDED.lo, hi = EXCLUDED.hi"
    ).format(
        data=sql.Identifier(f"{name}_data"),
        columns=sql.SQL(COLUMNS).format(key=sql.Identifier(spec.key)),
        select=_aggregate(spec, index, DATE_BIN),
        where=where,
        group=_group_by(spec, index, DATE_BIN),
        key=sql.Identifier(spec.key),
    )
    conn.execute(statement, {"low": _dt(low), "high": _dt(high)})


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
