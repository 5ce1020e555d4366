"""History queries on a real PostgreSQL, checked against values computed here from the data;
retention; the `cityheart history` command."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from typer.testing import CliRunner

from cityheart.cli import app
from connectors.storage import Retention, Storage, StorageOptions
from connectors.storage.rows import (
    alert_row,
    incident_event_row,
    incident_row,
    indicator_row,
    reading_row,
    vital_row,
    vitals_topic_row,
)
from models.timefmt import iso
from tests.support import CONFIG
from tests.support.storage import DAY, T0, buckets, points, readings, same_points

pytestmark = pytest.mark.timeout(120)

STEPS = {"1m": 60.0, "1h": 3600.0, "1d": DAY}


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    with Storage.open(StorageOptions(url=database_url)) as opened:
        yield opened


def store_readings(storage: Storage, rows: list) -> list[tuple[float, float]]:
    storage.writer("readings").write(reading_row(r) for r in rows)
    return [(r.ts, r.value) for r in rows]


def assert_series_match(storage: Storage, values: list[tuple[float, float]], days: int) -> None:
    for resolution, step in STEPS.items():
        series = storage.history.series(
            "old-town", "pm25", since=T0, until=T0 + days * DAY, resolution=resolution
        )
        assert series.resolution == resolution
        assert same_points(points(series), buckets(values, step)), resolution


def test_series_at_each_resolution_match_an_independent_computation(storage: Storage) -> None:
    values = store_readings(storage, readings(3))
    store_readings(storage, readings(3, district="riverside", seed=5))  # must not leak in
    store_readings(storage, readings(3, kind="no2", seed=6))
    assert_series_match(storage, values, 3)  # nothing materialized: computed on the fly
    storage.refresh(now=T0 + 1.5 * DAY)
    assert_series_match(storage, values, 3)  # half materialized, half on the fly
    storage.refresh(now=T0 + 9 * DAY)
    assert_series_match(storage, values, 3)  # all materialized


def test_late_and_backfilled_readings_reach_the_rollups(storage: Storage) -> None:
    values = store_readings(storage, readings(2))
    storage.refresh(now=T0 + 5 * DAY)
    late = readings(0.05, seed=9, start=T0 + 5 * 3600 + 7, devices=1)  # below the watermarks
    values += store_readings(storage, late)
    storage.refresh(now=T0 + 5 * DAY)
    assert_series_match(storage, values, 2)


def test_raw_series_are_single_readings_with_their_device(storage: Storage) -> None:
    rows = readings(0.5)
    store_readings(storage, rows)
    series = storage.history.series("old-town", "pm25", since=T0, until=T0 + 1800)
    assert series.resolution == "raw"  # chosen from the half-hour range
    expected = [(r.ts, r.value, r.device_id) for r in rows if r.ts < T0 + 1800]
    assert [(p.ts, p.value, p.device_id) for p in series.points] == expected


def test_the_range_chooses_the_resolution_and_buckets_are_whole(storage: Storage) -> None:
    values = store_readings(storage, readings(3))
    since = T0 + 3600 + 1234  # inside an hour and a minute
    for until, resolution in ((since + 6 * 3600, "1m"), (since + 2 * DAY, "1h")):
        series = storage.history.series("old-town", "pm25", since=since, until=until)
        assert series.resolution == resolution
        step = STEPS[resolution]
        start = since - since % step
        expected = [b for b in buckets(values, step) if start <= b[0] < until]
        assert same_points(points(series), expected)


def indicator_record(end: float, value: float, level: str, **extra: object) -> dict:
    """An indicator record as the flow publishes it on the vitals topic."""
    return {
        "record": "indicator", "district": "old-town", "indicator": "aqi", "kind": "aqi",
        "value": value, "unit": "AQI", "level": level, "score": 80.0,
        "window_start": iso(end - 10), "window_end": iso(end), "inputs": 12, "coverage": 1.0,
        "confident": True, "components": [{"name": "pm25_24h", "iaqi": value}],
        "details": {"standard": "hj633"}, "emitted_at": iso(end + 1), **extra,
    }


def test_indicator_series_and_latest_values(storage: Storage) -> None:
    records = [
        indicator_record(T0 + i * 600, 40.0 + i, "good" if i < 5 else "moderate")
        for i in range(12)
    ]
    routed = [vitals_topic_row(r) for r in records]
    assert {table for table, _ in routed} == {"indicators"}
    storage.writer("indicators").write(row for _, row in routed)
    series = storage.history.series(
        "old-town", "aqi", source="indicators", since=T0, until=T0 + 2 * 3600, resolution="1h"
    )
    values = [(T0 + i * 600, 40.0 + i) for i in range(12)]
    assert same_points(points(series), buckets(values, 3600))
    latest = storage.history.latest("indicators", districts=["old-town"])
    assert [(x["indicator"], x["value"], x["level"], x["ts"], x["components"], x["confident"])
            for x in latest] == [
        ("aqi", 51.0, "moderate", iso(T0 + 6600), [{"name": "pm25_24h", "iaqi": 51.0}], True)
    ]


def test_latest_vitals_per_district_and_kind(storage: Storage) -> None:
    def vital(district: str, kind: str, start: float, mean: float) -> tuple:
        return vital_row({
            "district": district, "kind": kind, "unit": "u", "window_start": iso(start),
            "window_end": iso(start + 10), "count": 1, "mean": mean, "min": mean, "max": mean,
            "last": mean, "devices": 1, "late": 0, "emitted_at": iso(start + 11),
        })

    storage.writer("vitals").write([
        vital("old-town", "pm25", T0, 1.0), vital("old-town", "pm25", T0 + 10, 2.0),
        vital("old-town", "no2", T0, 3.0), vital("riverside", "pm25", T0 + 20, 4.0),
    ])
    latest = storage.history.latest("vitals")
    assert [(v["district"], v["kind"], v["mean"]) for v in latest] == [
        ("old-town", "no2", 3.0), ("old-town", "pm25", 2.0), ("riverside", "pm25", 4.0)
    ]
    assert len(storage.history.latest("vitals", districts=["riverside"])) == 1


def test_alerts_and_incidents_by_time_district_kind_and_state(storage: Storage) -> None:
    def alert(i: int, district: str, kind: str, severity: str) -> tuple:
        return alert_row({
            "id": f"a{i}", "rule": "threshold", "district": district, "kind": kind,
            "severity": severity, "value": 1.0, "threshold": 0.5, "direction": "above",
            "stat": "mean", "unit": "u", "window_start": iso(T0 + i * 60),
            "window_end": iso(T0 + i * 60 + 10), "ts": iso(T0 + i * 60 + 5),
            "emitted_at": iso(T0 + i * 60 + 11), "message": f"alert {i}",
        })

    storage.writer("alerts").write([
        alert(0, "old-town", "pm25", "warning"), alert(1, "old-town", "pm25", "critical"),
        alert(2, "riverside", "pm25", "critical"), alert(3, "old-town", "no2", "warning"),
    ])
    history = storage.history
    assert [a["id"] for a in history.alerts(since=T0 + 60, until=T0 + 3600)] == ["a1", "a2", "a3"]
    assert [a["id"] for a in history.alerts(districts=["old-town"], kinds=["pm25"])] == ["a0", "a1"]
    assert [a["id"] for a in history.alerts(severities=["critical"])] == ["a1", "a2"]

    def incident(i: str, opened: float, closed: float | None, state: str) -> tuple:
        return incident_row({"id": i, "state": state, "severity": "critical",
                             "district": "old-town", "opened_at": opened,
                             "updated_at": closed or opened, "closed_at": closed,
                             "departments": ["environment"], "alert_ids": ["a1"]})

    storage.writer("incidents").write([
        incident("early", T0, T0 + 600, "closed"), incident("open", T0 + 1200, None, "open"),
    ])
    storage.writer("incident_events").write([
        incident_event_row({"id": "e1", "incident_id": "open", "ts": T0 + 1300,
                            "actor": "ana", "action": "acknowledge"}),
        incident_event_row({"id": "e2", "incident_id": "early", "ts": T0 + 600,
                            "actor": "bo", "action": "close", "comment": "wind turned"}),
    ])
    assert [i["id"] for i in history.incidents(since=T0, until=T0 + 3600)] == ["early", "open"]
    assert [i["id"] for i in history.incidents(since=T0 + 900, until=T0 + 3600)] == ["open"]
    assert [i["id"] for i in history.incidents(states=["closed"])] == ["early"]
    events = history.incident_events(since=T0, until=T0 + 3600)
    assert [(e["ts"], e["actor"], e["action"]) for e in events] == [
        (iso(T0 + 600), "bo", "close"), (iso(T0 + 1300), "ana", "acknowledge")
    ]


def test_stored_readings_come_back_in_time_order_for_a_replay(storage: Storage) -> None:
    rows = readings(0.2) + readings(0.2, kind="no2", seed=4)
    store_readings(storage, rows)
    since, until = T0 + 600, T0 + 3600
    got = list(storage.history.readings(since=since, until=until, kinds=["pm25"], batch=7))
    expected = sorted((r for r in rows if since <= r.ts < until and r.kind == "pm25"),
                      key=lambda r: (r.ts, r.device_id))
    assert got == expected  # the same Reading objects the flow parsed


def test_retention_drops_old_rows_and_keeps_the_rollups_longer(database_url: str) -> None:
    retention = Retention(readings=DAY, rollup_1m=2 * DAY, rollup_1h=None, rollup_1d=None)
    options = StorageOptions(url=database_url, retention=retention)
    now = T0 + 4 * DAY
    with Storage.open(options) as storage:
        values = store_readings(storage, readings(4))
        dropped = storage.maintenance().run_once(now=now)  # refresh rollups, then retention
        assert dropped["readings"] > 0
        kept = list(storage.history.readings(since=T0, until=now))
        assert kept and min(r.ts for r in kept) >= now - DAY
        # hourly history survives the raw readings it came from
        series = storage.history.series("old-town", "pm25", since=T0, until=now, resolution="1h")
        assert same_points(points(series), buckets(values, 3600))
        minutes = storage.history.series(
            "old-town", "pm25", since=T0, until=now, resolution="1m"
        )
        assert min(p.ts for p in minutes.points) >= now - 2 * DAY - 60


def test_the_maintenance_thread_runs_until_stopped(storage: Storage) -> None:
    store_readings(storage, readings(0.5))
    maintenance = storage.maintenance(clock=lambda: T0 + DAY)
    with maintenance:
        assert maintenance.wait_rounds(1, timeout=30)
    with storage.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM readings_1m_data").fetchone()
    assert row is not None and row[0] > 0  # materialized by the thread


def test_cityheart_history_json_prints_one_object_a_line(storage: Storage) -> None:
    now = time.time()
    rows = [indicator_record(now - 3000 + i * 300, 30.0 + i, "good") for i in range(10)]
    storage.writer("indicators").write(indicator_row(r) for r in rows)
    url = storage.options.url
    args = ["history", "--json", "--district", "old-town", "--indicator", "aqi", "--since", "1h",
            "--database-url", url, "--config", str(CONFIG)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(x["ts"], x["value"], x["level"]) for x in lines] == [
        (r["window_end"], r["value"], "good") for r in rows
    ]
    assert {x["resolution"] for x in lines} == {"raw"}
    assert all(x["district"] == "old-town" and x["indicator"] == "aqi" for x in lines)


def test_cityheart_history_refuses_a_series_without_a_district(database_url: str) -> None:
    args = ["history", "--indicator", "aqi", "--database-url", database_url,
            "--config", str(CONFIG)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "exactly one --district" in result.output


def test_cityheart_history_prints_readable_lines_of_each_kind(storage: Storage) -> None:
    store_readings(storage, readings(0.1))
    storage.writer("vitals").write([vital_row({
        "district": "old-town", "kind": "pm25", "unit": "ug/m3", "window_start": iso(T0),
        "window_end": iso(T0 + 10), "count": 2, "mean": 20.0, "min": 10.0, "max": 30.0,
        "last": 30.0, "devices": 2, "late": 0, "emitted_at": iso(T0 + 11),
    })])
    storage.writer("alerts").write([alert_row({
        "id": "a1", "rule": "threshold", "district": "old-town", "kind": "pm25",
        "severity": "critical", "value": 160.0, "threshold": 150.5, "direction": "above",
        "stat": "mean", "unit": "ug/m3", "ts": iso(T0 + 5), "message": "PM2.5 mean 160.0",
    })])
    storage.writer("incidents").write([incident_row({
        "id": "inc-1", "state": "open", "district": "old-town", "opened_at": T0 + 6,
        "updated_at": T0 + 6, "title": "Smog in the old town",
    })])
    storage.writer("incident_events").write([incident_event_row({
        "id": "e1", "incident_id": "inc-1", "ts": T0 + 7, "actor": "ana", "action": "open",
        "comment": "called the environment office",
    })])
    window = ["--since", iso(T0), "--until", iso(T0 + 3600)]
    expected = {
        "series": "mean", "latest": "mean 20.00", "alerts": "CRITICAL  PM2.5 mean 160.0",
        "incidents": "Smog in the old town", "events": "called the environment office",
    }
    for what, text in expected.items():
        args = ["history", what, "--district", "old-town", "--kind", "pm25", *window,
                "--database-url", storage.options.url, "--config", str(CONFIG)]
        if what in ("incidents", "events"):
            args.remove("--kind")
            args.remove("pm25")
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (what, result.output)
        assert text in result.stdout, (what, result.stdout)


def test_last_seen_is_each_devices_newest_stored_reading(storage: Storage) -> None:
    import uuid

    from models.readings import Reading

    a, b, never = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("a", "b", "never"))
    rows = [Reading(a, "harbour", "pm25", 10.0, "ug/m3", T0 + 5.0),
            Reading(a, "harbour", "pm25", 11.0, "ug/m3", T0 + 65.0),
            Reading(a, "harbour", "noise", 50.0, "dBA", T0 + 30.0),
            Reading(b, "old-town", "pm25", 12.0, "ug/m3", T0 + 1.0)]
    store_readings(storage, rows)
    assert storage.history.last_seen([a, b, never]) == {a: T0 + 65.0, b: T0 + 1.0}
