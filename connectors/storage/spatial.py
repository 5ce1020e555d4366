"""Spatial filters (:mod:`models.spatial`) as SQL conditions, with PostGIS or without it.

    where, params = spatial_clause(Near(48.14, 11.565, 500.0), postgis=flavour.postgis)
    # "... WHERE kind = %s AND " + where

With PostGIS (:attr:`~connectors.storage.pool.Flavour.postgis`) a circle is
``ST_DWithin(geography(point), geography(centre), radius, false)``, answered by the GiST index
on the same geography expression (:func:`index_statements`); without it, the box enclosing the
circle (:func:`models.spatial.enclosing_bbox`, answered by a btree on ``(lat, lon)``) and then
the haversine distance in SQL. Both measure on the same sphere (``use_spheroid => false`` makes
PostGIS use the sphere of the earth's mean radius, 6371008.77 m; the haversine here uses
6371008.8 m: the answers differ only for a point within a few micrometres of the edge), so
both give the same answers. A district is its polygon (``ST_Covers`` on PostGIS, PostgreSQL's
own ``polygon @> point`` otherwise, both planar in degrees and both holding the border), after
its box. A box is the same comparisons of ``lat`` and ``lon`` on both. Rows without a position
(``lat`` NULL) match no spatial filter.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from models.spatial import EARTH_RADIUS_M, BBox, Near, SpatialFilter, Within

__all__ = ["SPATIAL_TABLES", "geography", "index_statements", "spatial_clause"]

SPATIAL_TABLES = ("readings", "alerts", "incidents")
"""The tables with ``lat``/``lon`` columns that spatial questions filter (from schema v6)."""


def geography(lat: str = "lat", lon: str = "lon", table: str | None = None) -> sql.Composable:
    """The PostGIS geography of a row's (``lat``, ``lon``) columns: the indexed expression."""
    return sql.SQL("geography(ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326))").format(
        lon=_column(table, lon), lat=_column(table, lat))


def index_statements(postgis: bool) -> list[sql.Composable]:
    """The indexes spatial questions use: a btree on (lat, lon) for the box prefilter, and with
    PostGIS a GiST index on the geography of the position; only over rows with a position."""
    statements: list[sql.Composable] = []
    for table in SPATIAL_TABLES:
        statements.append(sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON {table} (lat, lon) WHERE lat IS NOT NULL"
        ).format(name=sql.Identifier(f"{table}_lat_lon"), table=sql.Identifier(table)))
        if postgis:
            statements.append(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {name} ON {table} USING gist ({geography}) "
                "WHERE lat IS NOT NULL"
            ).format(name=sql.Identifier(f"{table}_position"), table=sql.Identifier(table),
                     geography=geography()))
    return statements


def spatial_clause(
    where: SpatialFilter, *, postgis: bool, table: str | None = None,
) -> tuple[sql.Composable, list[Any]]:
    """The condition (and its parameters) that keeps the rows ``where`` holds, on the columns
    ``lat``/``lon`` (of ``table``, when given)."""
    lat, lon = _column(table, "lat"), _column(table, "lon")
    box, params = _box(where.bbox(), lat, lon)
    if isinstance(where, Near):
        if postgis:
            clause = sql.SQL(
                "{lat} IS NOT NULL AND ST_DWithin({point}, "
                "geography(ST_SetSRID(ST_MakePoint(%s, %s), 4326)), %s, false)"
            ).format(lat=lat, point=geography(table=table))
            return clause, [where.lon, where.lat, where.radius_m]
        haversine = sql.SQL(
            " AND 2 * {r} * asin(least(1.0, sqrt(power(sin((radians({lat}) - radians(%s)) / 2), 2)"
            " + cos(radians(%s)) * cos(radians({lat})) * power(sin((radians({lon}) - radians(%s))"
            " / 2), 2)))) <= %s"
        ).format(r=sql.Literal(EARTH_RADIUS_M), lat=lat, lon=lon)
        return box + haversine, [*params, where.lat, where.lat, where.lon, where.radius_m]
    if isinstance(where, Within):
        if postgis:
            inside = sql.SQL(
                " AND ST_Covers(ST_GeomFromText(%s, 4326), ST_SetSRID(ST_MakePoint({lon}, {lat}), "
                "4326))").format(lon=lon, lat=lat)
            return box + inside, [*params, where.wkt()]
        inside = sql.SQL(" AND %s::polygon @> point({lon}, {lat})").format(lon=lon, lat=lat)
        return box + inside, [*params, where.pg_polygon()]
    return box, params


def _column(table: str | None, name: str) -> sql.Composable:
    return sql.Identifier(table, name) if table else sql.Identifier(name)


def _box(box: BBox, lat: sql.Composable, lon: sql.Composable) -> tuple[sql.Composable, list]:
    if box.crosses_antimeridian:
        clause = sql.SQL("{lat} BETWEEN %s AND %s AND ({lon} >= %s OR {lon} <= %s)")
    else:
        clause = sql.SQL("{lat} BETWEEN %s AND %s AND {lon} BETWEEN %s AND %s")
    return clause.format(lat=lat, lon=lon), [box.south, box.north, box.west, box.east]
