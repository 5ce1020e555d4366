"""History queries for the dashboard, the CLI and replays; the same SQL on both flavours.

    history = History(pool)
    series = history.series("old-town", "aqi", source="indicators", since=t0, until=t1)
    series.resolution, series.points           # "1m", (SeriesPoint(ts, value, min, max, count)...)
    history.latest("vitals", districts=["old-town"])   # newest vital per district and kind
    history.alerts(since=t0, until=t1, severities=["critical"])
    history.incidents(since=t0, until=t1, states=["open"])
    history.alerts(since=t0, until=t1, spatial=Near(48.14, 11.565, 500.0))   # near a point
    history.live_incidents(updated_since=t0)   # not resolved or closed, or updated since t0
    history.incident_events(incident_id="inc-1")
    for reading in history.readings(since=t0, until=t1):   # Reading objects in time order
        ...                                                  # (what a replay feeds the logic)

Times are epoch seconds in and out (records carry ISO 8601 strings, as on the wire). A series
picks its resolution from the range unless given one (:func:`models.history.choose_resolution`):
raw values up to an hour, then the 1-minute, 1-hour or 1-day rollups, whose buckets are whole
(the range's start is moved back to its bucket's start). Alerts and incidents take a
``spatial`` filter (:mod:`models.spatial`), answered through PostGIS when ``postgis`` (the
database has it), else by plain SQL, with the same rows (:mod:`connectors.storage.spatial`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from connectors.storage.options import masked_url
from connectors.storage.rollups import ROLLUPS
from connectors.storage.spatial import spatial_clause
from models.errors import ConnectorError
from models.history import Resolution, Series, SeriesPoint, bucket_floor, choose_resolution
from models.readings import Reading
from models.spatial import SpatialFilter
from models.timefmt import iso

__all__ = ["History", "incident_record"]

Source = Literal["readings", "indicators"]
Filters = list[tuple[str, str, Any]]


class History:
    """Read-only queries over cityheart's history through ``pool``."""

    def __init__(self, pool: ConnectionPool, *, postgis: bool = False) -> None:
        self._pool = pool
        self._postgis = postgis

    def _spatial(
        self, where: sql.Composable, params: list[Any], spatial: SpatialFilter | None,
    ) -> tuple[sql.Composable, list[Any]]:
        if spatial is None:
            return where, params
        clause, more = spatial_clause(spatial, postgis=self._postgis)
        joint = sql.SQL(" AND " if params else " WHERE ")
        return where + joint + clause, [*params, *more]

    def series(
        self,
        district: str,
        name: str,
        *,
        source: Source = "readings",
        since: float,
        until: float,
        resolution: Resolution | None = None,
    ) -> Series:
        """The series of kind or indicator ``name`` in ``district`` over ``[since, until)``."""
        if source not in ROLLUPS:
            msg = f"source {source!r} is not one of {sorted(ROLLUPS)}"
            raise ValueError(msg)
        chosen = resolution or choose_resolution(since, until)
        start = bucket_floor(since, chosen)
        spec = ROLLUPS[source]
        params = (district, name, _dt(start), _dt(until))
        if chosen == "raw":
            extra = sql.Identifier("device_id" if source == "readings" else "level")
            query = sql.SQL(
                "SELECT extract(epoch FROM ts)::float8, value, value, value, 1, {extra} "
                "FROM {table} WHERE district = %s AND {key} = %s AND ts >= %s AND ts < %s "
                "ORDER BY ts, {extra}"
            ).format(extra=extra, table=sql.Identifier(source), key=sql.Identifier(spec.key))
        else:
            query = sql.SQL(
                "SELECT extract(epoch FROM bucket)::float8, total / n, lo, hi, n, NULL "
                "FROM {view} WHERE district = %s AND {key} = %s AND bucket >= %s "
                "AND bucket < %s ORDER BY bucket"
            ).format(view=sql.Identifier(f"{source}_{chosen}"), key=sql.Identifier(spec.key))
        rows = self._fetch(query, params)
        points = tuple(_point(row, source, chosen) for row in rows)
        return Series(district, name, source, chosen, start, until, points)

    def latest(
        self,
        source: Literal["vitals", "indicators"] = "vitals",
        *,
        districts: Sequence[str] = (),
        names: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The newest vital (per district and kind) or indicator (per district and indicator)."""
        key, time = ("kind", "window_start") if source == "vitals" else ("indicator", "ts")
        where, params = _where([("district", "in", districts), (key, "in", names)])
        query = sql.SQL(
            "SELECT DISTINCT ON (district, {key}) * FROM {table}{where} "
            "ORDER BY district, {key}, {time} DESC"
        ).format(
            key=sql.Identifier(key), table=sql.Identifier(source), where=where,
            time=sql.Identifier(time),
        )
        return self._records(query, params)

    def alerts(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        districts: Sequence[str] = (),
        kinds: Sequence[str] = (),
        severities: Sequence[str] = (),
        limit: int = 1000,
        spatial: SpatialFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts whose event time is in ``[since, until)``, oldest first, at most ``limit``."""
        where, params = _where([
            ("ts", ">=", since), ("ts", "<", until), ("district", "in", districts),
            ("kind", "in", kinds), ("severity", "in", severities),
        ])
        where, params = self._spatial(where, params, spatial)
        query = sql.SQL("SELECT * FROM alerts{where} ORDER BY ts, id LIMIT %s").format(where=where)
        return self._records(query, [*params, limit])

    def incidents(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        districts: Sequence[str] = (),
        states: Sequence[str] = (),
        severities: Sequence[str] = (),
        limit: int = 1000,
        newest_first: bool = False,
        spatial: SpatialFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Incidents open at some time in ``[since, until)``, by opening time (oldest first, or
        newest first), at most ``limit`` (``spatial``: by their centre)."""
        where, params = _where([
            ("opened_at", "<", until), ("district", "in", districts), ("state", "in", states),
            ("severity", "in", severities),
        ])
        where, params = self._spatial(where, params, spatial)
        if since is not None:
            where += sql.SQL(" AND " if params else " WHERE ") + sql.SQL(
                "(closed_at IS NULL OR closed_at >= %s)"
            )
            params.append(_dt(since))
        order = sql.SQL("opened_at DESC, id DESC" if newest_first else "opened_at, id")
        query = sql.SQL("SELECT * FROM incidents{where} ORDER BY {order} LIMIT %s").format(
            where=where, order=order
        )
        return self._records(query, [*params, limit])

    def live_incidents(self, *, updated_since: float) -> list[dict[str, Any]]:
        """Every incident not resolved or closed, and every other one updated since
        ``updated_since``, by opening time: what a restarted flow may have to take up again."""
        query = sql.SQL(
            "SELECT * FROM incidents WHERE state NOT IN ('resolved', 'closed') "
            "OR updated_at >= %s ORDER BY opened_at, id"
        )
        return self._records(query, [_dt(updated_since)])

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        """The stored row of one incident (its latest record in ``record``), or None."""
        query = sql.SQL("SELECT * FROM incidents WHERE id = %s")
        rows = self._records(query, [incident_id])
        return rows[0] if rows else None

    def incident_events(
        self,
        *,
        incident_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """What was done about incidents (one, or all) in ``[since, until)``, oldest first."""
        where, params = _where([
            ("incident_id", "=", incident_id), ("ts", ">=", since), ("ts", "<", until),
        ])
        query = sql.SQL(
            "SELECT * FROM incident_events{where} ORDER BY ts, incident_id, sequence LIMIT %s"
        ).format(where=where)
        return self._records(query, [*params, limit])

    def readings(
        self,
        *,
        since: float,
        until: float,
        districts: Sequence[str] = (),
        kinds: Sequence[str] = (),
        batch: int = 5000,
    ) -> Iterator[Reading]:
        """Stored readings in ``[since, until)`` in time order, streamed ``batch`` at a time
        (a server-side cursor), for re-running the indicator and alert logic over them."""
        where, params = _where([
            ("ts", ">=", since), ("ts", "<", until), ("district", "in", districts),
            ("kind", "in", kinds),
        ])
        query = sql.SQL(
            "SELECT device_id, district, kind, value, unit, extract(epoch FROM ts)::float8, seq "
            "FROM readings{where} ORDER BY ts, device_id, kind"
        ).format(where=where)
        with self._pool.connection() as conn, conn.transaction():
            with conn.cursor(name="cityheart_replay_readings") as cur:
                cur.itersize = batch
                cur.execute(query, params)
                for row in cur:
                    yield Reading(*row)

    def last_seen(self, device_ids: Sequence[str]) -> dict[str, float]:
        """The time (epoch seconds) of each device's newest stored reading; devices never
        heard from are left out."""
        query = sql.SQL(
            "SELECT device_id, extract(epoch FROM max(ts))::float8 FROM readings "
            "WHERE device_id = ANY(%s) GROUP BY device_id"
        )
        return {str(row[0]): float(row[1]) for row in self._fetch(query, (list(device_ids),))}

    def _fetch(self, query: sql.Composable, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(query, params).fetchall()
        except psycopg.OperationalError as exc:
            raise self._error(exc) from exc

    def _records(self, query: sql.Composable, params: Sequence[Any]) -> list[dict[str, Any]]:
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(query, params).fetchall()
        except psycopg.OperationalError as exc:
            raise self._error(exc) from exc
        return [{k: _jsonable(v) for k, v in row.items()} for row in rows]

    def _error(self, exc: Exception) -> ConnectorError:
        return ConnectorError("postgresql", masked_url(self._pool.conninfo), f"query failed: {exc}")


def incident_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The incident record of an ``incidents`` row (its ``record`` column), else its columns."""
    record = row.get("record")
    if isinstance(record, Mapping):
        return dict(record)
    return {k: v for k, v in row.items() if k != "record"}


def _where(filters: Filters) -> tuple[sql.Composable, list[Any]]:
    """`` WHERE a = %s AND b = ANY(%s) ...`` for the filters whose value is given."""
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for column, op, value in filters:
        if value is None or (op == "in" and not value):
            continue
        if op == "in":
            clauses.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)))
            params.append(list(value))
        else:
            clauses.append(sql.SQL("{} {} %s").format(sql.Identifier(column), sql.SQL(op)))
            params.append(_dt(value) if isinstance(value, (int, float)) else value)
    if not clauses:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), params


def _point(row: tuple[Any, ...], source: Source, resolution: Resolution) -> SeriesPoint:
    ts, value, low, high, count, extra = row
    if resolution == "raw" and source == "readings":
        return SeriesPoint(ts, value, low, high, int(count), device_id=extra)
    if resolution == "raw":
        return SeriesPoint(ts, value, low, high, int(count), level=extra)
    return SeriesPoint(ts, value, low, high, int(count))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value.timestamp())
    return value


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
