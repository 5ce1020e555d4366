"""Spatial questions on a real PostgreSQL: readings, devices, alerts and incidents near a point,
in a box and within a district, with the answers the pure model gives (models.spatial); the
same questions on PostGIS (PGlite's WASM build with PostGIS 3.6, served by
tests/pglite_postgis/serve.mjs, or the server at CITYHEART_TEST_POSTGIS_URL) give the same
answers. PGlite takes one connection and no COPY; it needs minutes to load PostGIS on a busy
machine, hence the long timeouts."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from alerts.lifecycle import Incident
from connectors.storage import Storage, StorageOptions
from connectors.storage.pages import Pages
from connectors.storage.rows import alert_row, incident_row, reading_row
from connectors.storage.spatial import spatial_clause
from models.readings import Reading
from models.spatial import EARTH_RADIUS_M, BBox, Near, SpatialFilter, Within
from models.timefmt import iso
from tests.support.pglite import pglite_server

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
PGLITE_POSTGIS = ROOT / "tests" / "pglite_postgis"

T0 = 1_796_644_800.0  # 2026-12-07T12:00:00Z
CENTRE = (48.14, 11.565)  # old-town's centroid in the test city
OLD_TOWN = ((11.55, 48.13), (11.58, 48.13), (11.58, 48.15), (11.55, 48.15), (11.55, 48.13))


def _north(metres: float, of: tuple[float, float] = CENTRE) -> tuple[float, float]:
    return of[0] + math.degrees(metres / EARTH_RADIUS_M), of[1]


def _east(metres: float, of: tuple[float, float] = CENTRE) -> tuple[float, float]:
    lat = math.radians(of[0])
    dlon = 2 * math.asin(math.sin(metres / EARTH_RADIUS_M / 2) / math.cos(lat))
    return of[0], of[1] + math.degrees(dlon)


POSITIONS: dict[str, tuple[float, float] | None] = {
    "centre": CENTRE,
    "north-499m": _north(499.0),
    "north-501m": _north(501.0),
    "east-499.9m": _east(499.9),
    "east-500.1m": _east(500.1),
    "on-the-border": (48.14, 11.58),          # old-town | riverside
    "riverside": (48.14, 11.595),
    "industrial": (48.141, 11.625),
    "unplaced": None,
}
QUESTIONS: dict[str, SpatialFilter] = {
    "near 500m": Near(*CENTRE, 500.0),
    "near 2km": Near(*CENTRE, 2000.0),
    "bbox across old-town and riverside": BBox(48.135, 11.56, 48.145, 11.60),
    "within old-town": Within("old-town", OLD_TOWN),
}


def expected(question: SpatialFilter) -> set[str]:
    """What the pure model says the question holds."""
    return {name for name, at in POSITIONS.items() if at is not None and question.contains(*at)}


def fill(storage: Storage) -> None:
    readings, alerts = [], []
    for n, (name, at) in enumerate(POSITIONS.items()):
        lat, lon = at if at is not None else (None, None)
        for minute in range(3):
            readings.append(Reading(name, "old-town", "pm25", 10.0 + n, "ug/m3",
                                    T0 + 60 * minute, None, lat, lon))
        alerts.append({"id": name, "rule": "threshold", "district": "old-town", "kind": "pm25",
                       "severity": "warning", "value": 40.0, "threshold": 35.0,
                       "ts": iso(T0 + n), "message": "pm25 above warning", "lat": lat,
                       "lon": lon})
    storage.writer("readings").write([reading_row(r) for r in readings])
    storage.writer("alerts").write([alert_row(a) for a in alerts])
    incidents = [
        Incident(id=name, district="old-town", rule="threshold", kind="pm25", title=name,
                 severity="warning", opened_at=T0 + n, updated_at=T0 + n, lat=at and at[0],
                 lon=at and at[1], radius_m=300.0 if name == "centre" else 0.0)
        for n, (name, at) in enumerate(POSITIONS.items())
    ]
    storage.writer("incidents").write([incident_row(i.to_record()) for i in incidents])


def answers(storage: Storage) -> dict[str, dict[str, set[str]]]:
    """Each question's answer from each place that asks it."""
    pages = Pages(storage.pool, postgis=storage.flavour.postgis)
    asks: dict[str, Callable[[SpatialFilter], list[dict[str, Any]]]] = {
        "readings": lambda q: pages.readings(kind="pm25", level="raw", since=T0,
                                             until=T0 + 3600, limit=1000, spatial=q),
        "devices": lambda q: pages.devices(limit=1000, spatial=q),
        "alerts": lambda q: pages.alerts(since=T0 - 60, until=T0 + 60, limit=1000, spatial=q),
        "incidents": lambda q: pages.incidents(since=T0 - 60, until=T0 + 60, limit=1000,
                                               spatial=q),
        "history alerts": lambda q: storage.history.alerts(spatial=q),
        "history incidents": lambda q: storage.history.incidents(spatial=q),
    }
    found: dict[str, dict[str, set[str]]] = {}
    for where, ask in asks.items():
        for label, question in QUESTIONS.items():
            rows = ask(question)
            found.setdefault(label, {})[where] = {row.get("device_id") or row["id"]
                                                  for row in rows}
    return found


def check(storage: Storage) -> None:
    found = answers(storage)
    for label, question in QUESTIONS.items():
        for where, names in found[label].items():
            assert names == expected(question), (label, where)
    # the edges: 499 m in, 501 m out; the border shared by two districts is within both
    assert {"centre", "north-499m", "east-499.9m"} <= expected(QUESTIONS["near 500m"])
    assert not {"north-501m", "east-500.1m"} & expected(QUESTIONS["near 500m"])
    assert "on-the-border" in expected(QUESTIONS["within old-town"])
    assert "riverside" not in expected(QUESTIONS["within old-town"])
    assert {"riverside", "centre"} <= expected(QUESTIONS["bbox across old-town and riverside"])
    assert "industrial" not in expected(QUESTIONS["bbox across old-town and riverside"])


def test_spatial_questions_on_plain_postgresql_answer_as_the_model(database_url: str) -> None:
    with Storage.open(StorageOptions(url=database_url)) as storage:
        assert not storage.flavour.postgis
        fill(storage)
        check(storage)


def test_devices_near_an_incident_are_those_within_its_circle(database_url: str) -> None:
    with Storage.open(StorageOptions(url=database_url)) as storage:
        fill(storage)
        row = storage.history.incident("centre")
        assert row is not None and (row["lat"], row["lon"], row["radius_m"]) == (
            *CENTRE, 300.0)
        circle = Near(row["lat"], row["lon"], row["radius_m"])
        near = Pages(storage.pool).devices(limit=100, spatial=circle)
    assert {d["device_id"] for d in near} == {"centre"}
    assert all((d["lat"], d["lon"]) == CENTRE for d in near)


def plan(storage: Storage, question: SpatialFilter) -> str:
    """The plan of an alerts query with ``question``, sequential scans discouraged."""
    clause, params = spatial_clause(question, postgis=storage.flavour.postgis)
    query = sql.SQL("EXPLAIN SELECT id FROM alerts WHERE ") + clause
    with storage.pool.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        return "\n".join(row[0] for row in conn.execute(query, params).fetchall())


def test_a_spatial_question_uses_the_index_prefilter(database_url: str) -> None:
    with Storage.open(StorageOptions(url=database_url)) as storage:
        fill(storage)
        assert "alerts_lat_lon" in plan(storage, Near(*CENTRE, 500.0))
        assert "alerts_lat_lon" in plan(storage, QUESTIONS["within old-town"])


@pytest.fixture(scope="module")
def postgis_url() -> Iterator[str]:
    """The URL of an in-memory PostgreSQL offering PostGIS (PGlite) on loopback for this
    module; or the server at CITYHEART_TEST_POSTGIS_URL."""
    external = os.environ.get("CITYHEART_TEST_POSTGIS_URL")
    if external:
        yield external
        return
    with pglite_server(PGLITE_POSTGIS, "pglite-postgis", "setup-pglite-postgis.sh",
                       what="PGlite with PostGIS", start_timeout_s=600) as url:
        yield url


@pytest.mark.services
@pytest.mark.timeout(1500)
def test_spatial_questions_on_postgis_give_the_same_answers(postgis_url: str) -> None:
    options = StorageOptions(url=postgis_url, pool_min=1, pool_max=1, copy=False,
                             batch_rows=200, pool_timeout_s=600)
    with Storage.open(options) as storage:
        assert storage.flavour.postgis, "the migration creates PostGIS where it is offered"
        assert storage.flavour.postgis_version.startswith("3.")
        fill(storage)
        check(storage)  # the model's answers, as plain PostgreSQL gives them
        near = plan(storage, Near(*CENTRE, 500.0))
        assert "alerts_position" in near and "st_dwithin" in near.lower()
        with storage.pool.connection() as conn:
            indexes = {row[0] for row in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_position'")}
    assert indexes == {"readings_position", "alerts_position", "incidents_position"}


def test_the_recorder_stores_the_position_a_batch_carries() -> None:
    from models.reading_batch import ReadingBatch, readings_in

    placed = Reading("bus-12", "old-town", "pm25", 12.0, "ug/m3", T0, 3, *CENTRE)
    unplaced = Reading("pm25-7", "old-town", "pm25", 13.0, "ug/m3", T0, 4)
    decoded = readings_in(ReadingBatch.of([placed, unplaced]).encode())
    rows = [reading_row(r) for r in decoded]
    assert [row[-2:] for row in rows] == [CENTRE, (None, None)]
    assert reading_row({"ts": T0, "device_id": "d", "district": "old-town", "kind": "pm25",
                        "value": 1, "unit": "ug/m3", "lat": 48.1, "lon": 11.6})[-2:] == (
        48.1, 11.6)
