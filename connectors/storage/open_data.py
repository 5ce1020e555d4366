"""The open datasets' rows, read from history as they are sent (a server-side cursor).

    for row in dataset_rows(pool, AQI_HOURLY, start, end, names):   # names: district -> name
        ...
    dataset_span(pool, AQI_HOURLY)   # (first, last) time the history holds, or None

Each query aggregates per district and period in the database and returns only the columns of
:class:`models.open_data.Dataset`: no device id, comment or name leaves it. Rows are fetched
in batches of :data:`FETCH_ROWS` through a named (server-side) cursor, so a year of data is
never held whole in this process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from psycopg_pool import ConnectionPool

from models.open_data import AQI_HOURLY, DEVICE_COVERAGE_DAILY, INCIDENTS_DAILY, Dataset

__all__ = ["FETCH_ROWS", "dataset_rows", "dataset_span"]

FETCH_ROWS = 2_000

_QUERIES = {
    AQI_HOURLY.id: (
        "SELECT date_trunc('hour', ts - interval '1 millisecond', 'UTC') AS period, district, "
        "avg(value), max(value), "
        "(array_agg(level ORDER BY value DESC))[1], count(*) FROM indicators "
        "WHERE indicator = 'aqi' AND ts > %(start)s AND ts <= %(end)s "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ),
    INCIDENTS_DAILY.id: (
        "SELECT date_trunc('day', opened_at, 'UTC') AS period, district, "
        "coalesce(kind, 'unknown'), count(*), count(*) FILTER (WHERE severity = 'critical') "
        "FROM incidents WHERE opened_at >= %(start)s AND opened_at < %(end)s "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ),
    DEVICE_COVERAGE_DAILY.id: (
        "SELECT date_trunc('day', ts, 'UTC') AS period, district, count(DISTINCT device_id), "
        "count(*) FROM readings WHERE ts >= %(start)s AND ts < %(end)s "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ),
}
_SPANS = {
    AQI_HOURLY.id: "SELECT min(ts), max(ts) FROM indicators WHERE indicator = 'aqi'",
    INCIDENTS_DAILY.id: "SELECT min(opened_at), max(opened_at) FROM incidents",
    DEVICE_COVERAGE_DAILY.id: "SELECT min(ts), max(ts) FROM readings",
}


def dataset_rows(
    pool: ConnectionPool, ds: Dataset, start: datetime, end: datetime, names: Mapping[str, str]
) -> Iterator[tuple[Any, ...]]:
    """``ds``'s rows of the periods in [start, end), oldest first, district names filled in.

    (An AQI hour holds the indicator windows that end after it starts and by its end:
    ``ts`` is a window's end.)
    """
    with pool.connection() as conn, conn.cursor(name=f"open_data_{ds.id}") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(_QUERIES[ds.id], {"start": start, "end": end})
        for period, district, *values in cursor:
            yield (period, district, names.get(district, district), *values)


def dataset_span(pool: ConnectionPool, ds: Dataset) -> tuple[datetime, datetime] | None:
    """The first and last time ``ds``'s source table holds, or None when it is empty."""
    with pool.connection() as conn:
        row = conn.execute(_SPANS[ds.id]).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]
