"""Keyset-paginated reads for the public HTTP API (``/api/v1``) and NGSI-LD: one page at a time.

    pages = Pages(pool)
    rows = pages.alerts(since=t0, until=t1, after=None, limit=101)   # oldest first
    rows = pages.alerts(since=t0, until=t1, after=(rows[-1]["ts"], rows[-1]["id"]), limit=101)

Every method returns at most ``limit`` rows after the key ``after`` (None: from the start) in the
order of that key, so a page never repeats or skips a row however the table grows in between.
The key of a row is :data:`KEYS` ``[method]``, taken from the row itself (``key_of``). Times are
epoch seconds in and ISO 8601 strings out, as :class:`~connectors.storage.history.History`;
each row also carries its column values as stored under ``_raw`` (for exact cursor keys: drop it
before showing the row).
Rows carry every column of their table, so a column added later (a reading's ``lat``/``lon``)
comes out without a change here.

Readings (raw), devices, alerts and incidents also take ``spatial``, a
:data:`models.spatial.SpatialFilter` (near a point, within a district, in a box) on their
``lat``/``lon`` columns, answered through PostGIS when ``postgis`` (the database has it), else
by plain SQL, with the same rows (:mod:`connectors.storage.spatial`). A device's position is
that of its newest reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from connectors.storage.history import _jsonable
from connectors.storage.options import masked_url
from connectors.storage.spatial import spatial_clause
from models.errors import ConnectorError
from models.spatial import SpatialFilter

__all__ = ["KEYS", "Pages", "key_of"]

Key = Sequence[Any] | None
Level = Literal["raw", "1m", "1h", "1d"]

KEYS: dict[str, tuple[str, ...]] = {
    "devices": ("device_id", "kind"),
    "readings_raw": ("ts", "device_id"),
    "indicators_raw": ("ts", "district"),
    "rollup": ("ts", "district"),
    "alerts": ("ts", "id"),
    "incidents": ("opened_at", "id"),
    "incident_events": ("ts", "incident_id", "sequence"),
    "vitals": ("window_start", "district", "kind"),
}
"""The columns ordering each kind of page, which a cursor carries."""

_TIME_KEYS = frozenset({"ts", "opened_at", "window_start"})


def key_of(kind: str, row: dict[str, Any]) -> list[Any]:
    """The key of ``row`` in a page of ``kind``: what a cursor after this row carries (times
    as ISO strings to the microsecond, so no row is skipped or repeated)."""
    raw = row.get("_raw", row)
    return [_exact(raw.get(column)) for column in KEYS[kind]]


class Pages:
    """Read-only, paginated queries through ``pool`` (see module doc)."""

    def __init__(self, pool: ConnectionPool, *, postgis: bool = False) -> None:
        self._pool = pool
        self._postgis = postgis

    def _spatial(
        self, where: sql.Composable, params: list[Any], spatial: SpatialFilter | None,
        table: str | None = None,
    ) -> tuple[sql.Composable, list[Any]]:
        if spatial is None:
            return where, params
        clause, more = spatial_clause(spatial, postgis=self._postgis, table=table)
        return where + sql.SQL(" AND ") + clause, [*params, *more]

    def devices(
        self, *, districts: Sequence[str] = (), kinds: Sequence[str] = (), after: Key = None,
        limit: int, spatial: SpatialFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Each device and kind seen in the readings, with its newest reading, by device id.

        A skip scan of the readings' key (device, kind, time): one index probe per device and
        kind, not a pass over every reading."""
        start = list(after) if after is not None else None
        first = sql.SQL("WHERE (device_id, kind) > (%s, %s) " if start else "")
        where, params = _filters([("r.district", districts), ("r.kind", kinds)])
        where, params = self._spatial(where, params, spatial, "r")
        query = sql.SQL(
            "WITH RECURSIVE seen AS ("
            "(SELECT device_id, kind FROM readings {first}ORDER BY device_id, kind LIMIT 1) "
            "UNION ALL SELECT n.device_id, n.kind FROM seen s CROSS JOIN LATERAL ("
            "SELECT device_id, kind FROM readings WHERE (device_id, kind) > (s.device_id, s.kind) "
            "ORDER BY device_id, kind LIMIT 1) n) "
            "SELECT r.* FROM seen s CROSS JOIN LATERAL (SELECT * FROM readings "
            "WHERE device_id = s.device_id AND kind = s.kind ORDER BY ts DESC LIMIT 1) r"
            "{where} LIMIT %s"
        ).format(first=first, where=where)
        return self._rows(query, [*(start or []), *params, limit])

    def latest(
        self, table: Literal["vitals", "indicators"], *, districts: Sequence[str],
        names: Sequence[str],
    ) -> list[dict[str, Any]]:
        """The newest vital (or indicator) of each of ``districts`` x ``names`` that has one,
        by district and name: one index probe each."""
        key, time = ("kind", "window_start") if table == "vitals" else ("indicator", "ts")
        query = sql.SQL(
            "SELECT t.* FROM unnest(%s::text[]) d(district) CROSS JOIN unnest(%s::text[]) "
            "k(name) CROSS JOIN LATERAL (SELECT * FROM {table} WHERE district = d.district "
            "AND {key} = k.name ORDER BY {time} DESC LIMIT 1) t ORDER BY t.district, t.{key}"
        ).format(table=sql.Identifier(table), key=sql.Identifier(key),
                 time=sql.Identifier(time))
        return self._rows(query, [list(districts), list(names)])

    def readings(
        self, *, kind: str, districts: Sequence[str] = (), level: Level, since: float,
        until: float, after: Key = None, limit: int, spatial: SpatialFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Readings of ``kind`` in ``[since, until)``: raw (by time, device) or a rollup's
        buckets (by time, district), with ``ts``, ``value`` and ``min``/``max``/``count``;
        ``spatial`` only raw (rollups are per district)."""
        if level == "raw":
            return self._raw("readings", "kind", "device_id", kind, districts, since, until,
                             after, limit, spatial)
        if spatial is not None:
            msg = f"a spatial filter needs raw readings, not the {level} rollup"
            raise ValueError(msg)
        return self._rollup("readings", "kind", kind, districts, level, since, until, after,
                            limit)

    def indicators(
        self, *, indicator: str, districts: Sequence[str] = (), level: Level, since: float,
        until: float, after: Key = None, limit: int,
    ) -> list[dict[str, Any]]:
        """An indicator's values in ``[since, until)``, raw (by time, district) or rolled up."""
        if level == "raw":
            return self._raw("indicators", "indicator", "district", indicator, districts, since,
                             until, after, limit)
        return self._rollup("indicators", "indicator", indicator, districts, level, since,
                            until, after, limit)

    def vitals(
        self, *, districts: Sequence[str] = (), kinds: Sequence[str] = (), since: float,
        until: float, after: Key = None, limit: int,
    ) -> list[dict[str, Any]]:
        """Vital signs whose window starts in ``[since, until)``, oldest first."""
        where, params = _filters([("district", districts), ("kind", kinds)])
        where, params = _range(where, params, "window_start", since, until)
        where, params = _after(where, params, KEYS["vitals"], after, ">")
        query = sql.SQL(
            "SELECT * FROM vitals{where} ORDER BY window_start, district, kind LIMIT %s"
        ).format(where=where)
        return self._rows(query, [*params, limit])

    def alerts(
        self, *, since: float, until: float, districts: Sequence[str] = (),
        kinds: Sequence[str] = (), severities: Sequence[str] = (), after: Key = None,
        limit: int, spatial: SpatialFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts whose event time is in ``[since, until)``, oldest first."""
        where, params = _filters([("district", districts), ("kind", kinds),
                                  ("severity", severities)])
        where, params = self._spatial(where, params, spatial)
        where, params = _range(where, params, "ts", since, until)
        where, params = _after(where, params, KEYS["alerts"], after, ">")
        query = sql.SQL("SELECT * FROM alerts{where} ORDER BY ts, id LIMIT %s").format(
            where=where)
        return self._rows(query, [*params, limit])

    def incidents(
        self, *, since: float, until: float, districts: Sequence[str] = (),
        states: Sequence[str] = (), severities: Sequence[str] = (), after: Key = None,
        limit: int, spatial: SpatialFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Incidents open at some time in ``[since, until)``, newest opened first (located by
        their centre)."""
        where, params = _filters([("district", districts), ("state", states),
                                  ("severity", severities)])
        where, params = self._spatial(where, params, spatial)
        where += sql.SQL(" AND opened_at < %s AND (closed_at IS NULL OR closed_at >= %s)")
        params += [_dt(until), _dt(since)]
        where, params = _after(where, params, KEYS["incidents"], after, "<")
        query = sql.SQL(
            "SELECT * FROM incidents{where} ORDER BY opened_at DESC, id DESC LIMIT %s"
        ).format(where=where)
        return self._rows(query, [*params, limit])

    def incident_events(
        self, *, incident_id: str, after: Key = None, limit: int,
    ) -> list[dict[str, Any]]:
        """One incident's events in the order they happened."""
        where, params = _filters([("incident_id", [incident_id])])
        where, params = _after(where, params, KEYS["incident_events"], after, ">")
        query = sql.SQL(
            "SELECT * FROM incident_events{where} ORDER BY ts, incident_id, sequence LIMIT %s"
        ).format(where=where)
        return self._rows(query, [*params, limit])

    def _raw(
        self, table: str, key: str, second: str, name: str, districts: Sequence[str],
        since: float, until: float, after: Key, limit: int,
        spatial: SpatialFilter | None = None,
    ) -> list[dict[str, Any]]:
        where, params = _filters([(key, [name]), ("district", districts)])
        where, params = self._spatial(where, params, spatial)
        where, params = _range(where, params, "ts", since, until)
        where, params = _after(where, params, ("ts", second), after, ">")
        query = sql.SQL(
            "SELECT *, value AS min, value AS max, 1 AS count FROM {table}{where} "
            "ORDER BY ts, {second} LIMIT %s"
        ).format(table=sql.Identifier(table), where=where, second=sql.Identifier(second))
        return self._rows(query, [*params, limit])

    def _rollup(
        self, source: str, key: str, name: str, districts: Sequence[str], level: Level,
        since: float, until: float, after: Key, limit: int,
    ) -> list[dict[str, Any]]:
        where, params = _filters([(key, [name]), ("district", districts)])
        where, params = _range(where, params, "bucket", since, until)
        where, params = _after(where, params, ("bucket", "district"), after, ">")
        query = sql.SQL(
            "SELECT bucket AS ts, district, {key}, total / n AS value, lo AS min, hi AS max, "
            "n AS count FROM {view}{where} ORDER BY bucket, district LIMIT %s"
        ).format(key=sql.Identifier(key), view=sql.Identifier(f"{source}_{level}"),
                 where=where)
        return self._rows(query, [*params, limit])

    def _rows(self, query: sql.Composable, params: Sequence[Any]) -> list[dict[str, Any]]:
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(query, params).fetchall()
        except psycopg.OperationalError as exc:
            msg = f"query failed: {exc}"
            raise ConnectorError("postgresql", masked_url(self._pool.conninfo), msg) from exc
        return [{**{k: _jsonable(v) for k, v in row.items()}, "_raw": row} for row in rows]


def _filters(filters: list[tuple[str, Sequence[str]]]) -> tuple[sql.Composable, list[Any]]:
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[Any] = []
    for column, values in filters:
        if values:
            name = sql.Identifier(*column.split("."))
            clauses.append(sql.SQL("{} = ANY(%s)").format(name))
            params.append(list(values))
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), params


def _range(
    where: sql.Composable, params: list[Any], column: str, since: float, until: float
) -> tuple[sql.Composable, list[Any]]:
    clause = sql.SQL(" AND {c} >= %s AND {c} < %s").format(c=sql.Identifier(column))
    return where + clause, [*params, _dt(since), _dt(until)]


def _after(
    where: sql.Composable, params: list[Any], columns: Sequence[str], after: Key, op: str,
) -> tuple[sql.Composable, list[Any]]:
    """``AND (a, b) > (%s, %s)``: the rows past the cursor's key, in the page's order."""
    if after is None:
        return where, params
    if len(after) != len(columns):
        msg = f"a cursor key has {len(columns)} values, got {len(after)}"
        raise ValueError(msg)
    values = [_moment(v) if c in _TIME_KEYS or c == "bucket" else v
              for c, v in zip(columns, after, strict=True)]
    clause = sql.SQL(" AND ({cols}) {op} ({marks})").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in columns), op=sql.SQL(op),
        marks=sql.SQL(", ").join(sql.Placeholder() for _ in columns))
    return where + clause, [*params, *values]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _exact(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        msg = f"time {value!r} has no time zone"
        raise ValueError(msg)
    return moment
