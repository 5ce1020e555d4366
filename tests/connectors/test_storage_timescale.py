"""TimescaleDB 2.x (PGlite's WASM build, served by tests/pglite/serve.mjs): the Timescale schema
(hypertables, continuous aggregates, policies) runs, and its answers equal plain PostgreSQL's.

PGlite takes one connection, no COPY, no pipelining and no message over 64 KiB (a larger one
crashes it), so the storage here runs with a one-connection pool and multi-row INSERTs of 200
rows. Its Node packages are installed by
``scripts/setup-pglite.sh`` (run by this module's fixture when they are missing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.storage import Storage, StorageOptions
from connectors.storage.rows import reading_row
from tests.support.pglite import pglite_server
from tests.support.storage import DAY, T0, buckets, points, readings, same_points

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
PGLITE = ROOT / "tests" / "pglite"


@pytest.fixture(scope="module")
def pglite_url() -> Iterator[str]:
    """The URL of an in-memory TimescaleDB (PGlite) on loopback for this module; or the
    TimescaleDB at CITYHEART_TEST_TIMESCALE_URL."""
    external = os.environ.get("CITYHEART_TEST_TIMESCALE_URL")
    if external:
        yield external
        return
    with pglite_server(PGLITE, "pglite-socket", "setup-pglite.sh", what="PGlite (TimescaleDB)",
                       start_timeout_s=60, install_timeout_s=300) as url:
        yield url


@pytest.fixture(scope="module")
def timescale(pglite_url: str) -> Iterator[Storage]:
    """cityheart's storage opened (and migrated) on TimescaleDB, one connection."""
    options = StorageOptions(
        url=pglite_url, pool_min=1, pool_max=1, copy=False, batch_rows=200, timescale="on"
    )
    with Storage.open(options) as storage:
        yield storage


def names(storage: Storage, query: str) -> set[str]:
    with storage.pool.connection() as conn:
        return {row[0] for row in conn.execute(query)}


def test_the_timescale_schema_has_hypertables_aggregates_and_policies(timescale: Storage) -> None:
    assert timescale.flavour.timescale
    assert timescale.flavour.timescale_version and timescale.flavour.timescale_version[0] == "2"
    hypertables = names(
        timescale, "SELECT hypertable_name FROM timescaledb_information.hypertables"
    )
    assert {"readings", "vitals", "indicators"} <= hypertables
    with timescale.pool.connection() as conn:
        aggregates = dict(conn.execute(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
        ).fetchall())
        jobs = set(conn.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
        ).fetchall())
        flavours = {row[0] for row in conn.execute("SELECT flavour FROM schema_migrations")}
    levels = [f"{s}_{lvl}" for s in ("readings", "indicators") for lvl in ("1m", "1h", "1d")]
    assert aggregates == {name: False for name in levels}  # real-time: never behind
    for name in levels:
        assert ("policy_refresh_continuous_aggregate", name) in jobs
    retention = timescale.options.retention
    for table in ("readings", "vitals", "indicators"):
        assert ("policy_compression", table) in jobs
        assert (("policy_retention", table) in jobs) == (getattr(retention, table) is not None)
    assert ("policy_retention", "readings_1d") not in jobs  # kept forever by default
    assert flavours == {"timescale"}


def test_timescale_answers_what_plain_postgresql_answers(
    timescale: Storage, database_url: str
) -> None:
    rows = readings(3, district="harbour", seed=11)
    values = [(r.ts, r.value) for r in rows]
    with Storage.open(StorageOptions(url=database_url)) as plain:
        for storage in (timescale, plain):
            assert storage.writer("readings").write(reading_row(r) for r in rows) == len(rows)
            assert storage.writer("readings").write(reading_row(r) for r in rows) == 0
        for step in ("live", "refreshed"):
            for resolution, seconds in (("1m", 60.0), ("1h", 3600.0), ("1d", DAY)):
                got = {
                    storage.flavour.name: points(storage.history.series(
                        "harbour", "pm25", since=T0, until=T0 + 3 * DAY, resolution=resolution
                    ))
                    for storage in (timescale, plain)
                }
                expected = buckets(values, seconds)
                assert same_points(got["timescale"], expected), (step, resolution)
                assert same_points(got["plain"], got["timescale"]), (step, resolution)
            timescale.refresh(now=T0 + 2 * DAY)
            plain.refresh(now=T0 + 2 * DAY)
        with timescale.pool.connection() as conn:  # TimescaleDB's own function, on raw rows
            bucketed = conn.execute(
                "SELECT extract(epoch FROM time_bucket('1 hour', ts))::float8, avg(value), "
                "min(value), max(value), count(*) FROM readings WHERE district = 'harbour' "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall()
        hourly = plain.history.series(
            "harbour", "pm25", since=T0, until=T0 + 3 * DAY, resolution="1h"
        )
    assert same_points([tuple(row) for row in bucketed], points(hourly))


def test_timescale_retention_drops_whole_old_chunks(timescale: Storage) -> None:
    rows = readings(3, district="university", seed=12, start=T0 - 30 * DAY)
    timescale.writer("readings").write(reading_row(r) for r in rows)
    now = T0 - 30 * DAY + timescale.options.retention.readings + 2 * DAY  # type: ignore[operator]
    dropped = timescale.apply_retention(now=now)
    assert dropped["readings"] >= 1
    with timescale.pool.connection() as conn:
        oldest = conn.execute(
            "SELECT min(ts) FROM readings WHERE district = 'university'"
        ).fetchone()
    assert oldest is not None and oldest[0] is not None
    cutoff = datetime.fromtimestamp(now - timescale.options.retention.readings, UTC)  # type: ignore[operator]
    # chunks are one day: what is left starts at the first day not wholly before the cutoff
    assert oldest[0] >= cutoff.replace(hour=0, minute=0, second=0, microsecond=0)


def test_one_connection_is_enough_for_writes_and_queries(timescale: Storage) -> None:
    """PGlite serves one client at a time: the pool must never need a second connection."""
    rows = readings(2, district="airport-west", seed=13)
    writer = timescale.writer("readings")
    assert writer.write(reading_row(r) for r in rows) == len(rows)
    assert writer.stats.batches > 1
    assert len(list(timescale.history.readings(
        since=T0, until=T0 + 2 * DAY, districts=["airport-west"]
    ))) == len(rows)
    assert timescale.pool.get_stats().get("pool_max") == 1


def test_a_backfill_reaches_the_continuous_aggregates(timescale: Storage) -> None:
    rows = readings(2, district="north-hills", seed=14)
    timescale.writer("readings").write(reading_row(r) for r in rows)
    timescale.refresh(now=T0 + 5 * DAY)  # all materialized
    late = readings(0.02, district="north-hills", seed=15, start=T0 + 5 * 3600 + 7, devices=1)
    timescale.writer("readings").write(reading_row(r) for r in late)
    timescale.refresh(now=T0 + 5 * DAY, start=late[0].ts)  # what a replay from there does
    values = [(r.ts, r.value) for r in rows + late]
    for resolution, seconds in (("1m", 60.0), ("1h", 3600.0), ("1d", DAY)):
        series = timescale.history.series(
            "north-hills", "pm25", since=T0, until=T0 + 2 * DAY, resolution=resolution
        )
        assert same_points(points(series), buckets(values, seconds)), resolution
