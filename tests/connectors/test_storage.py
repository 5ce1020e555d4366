"""Storage on a real PostgreSQL: schema and migrations, idempotent batch writers, Bytewax sink."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from alerts.lifecycle import Incident, IncidentEvent, act
from connectors.storage import Storage, StorageOptions
from connectors.storage.pool import detect_flavour, open_pool
from connectors.storage.rows import (
    TABLES,
    TableSpec,
    alert_row,
    incident_event_row,
    incident_row,
    reading_row,
    vital_row,
)
from connectors.storage.schema import LATEST, migrate, schema_version
from connectors.storage.sinks import PostgresSink
from connectors.storage.writers import BatchWriter
from models.errors import ConnectorError
from models.readings import Reading
from models.timefmt import iso
from tests.support.storage import T0, readings

pytestmark = pytest.mark.timeout(120)

TABLES_NAMES = {
    "readings", "vitals", "alerts", "indicators", "incidents", "incident_events", "reports",
    "readings_1m", "readings_1h", "readings_1d", "indicators_1m", "indicators_1h",
    "indicators_1d", "schema_migrations",
}


def relations(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # test-only, fixed names
    assert row is not None
    return int(row[0])


def vital(mean: float, start: float = T0) -> dict:
    return {
        "district": "old-town", "kind": "pm25", "unit": "ug/m3", "window_start": iso(start),
        "window_end": iso(start + 10), "count": 3, "mean": mean, "min": 1.0, "max": 9.0,
        "last": 2.0, "devices": 2, "late": 0, "emitted_at": iso(start + 11),
    }


def alert(alert_id: str = "a1", message: str = "PM2.5 high") -> dict:
    return {
        "id": alert_id, "rule": "threshold", "district": "old-town", "kind": "pm25",
        "severity": "warning", "value": 60.0, "threshold": 55.5, "direction": "above",
        "stat": "mean", "unit": "ug/m3", "window_start": iso(T0), "window_end": iso(T0 + 10),
        "ts": iso(T0 + 4), "emitted_at": iso(T0 + 11), "message": message,
    }


def test_an_empty_database_gets_the_whole_schema_once(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    with Storage.open(StorageOptions(url=database_url)) as storage:
        assert not storage.flavour.timescale
    assert "without TimescaleDB" in caplog.text  # which flavour is logged at start
    assert TABLES_NAMES <= relations(database_url)
    with psycopg.connect(database_url) as conn:
        assert schema_version(conn) == LATEST
        assert migrate(conn, detect_flavour(conn)) == []  # nothing left to do


def test_migrating_from_the_previous_version_keeps_the_data(database_url: str) -> None:
    options = StorageOptions(url=database_url)
    pool = open_pool(options)
    try:
        with pool.connection() as conn:
            flavour = detect_flavour(conn)
            assert migrate(conn, flavour, target=LATEST - 1) == list(range(1, LATEST))
        assert "lat" not in columns(database_url, "readings"), "v6 adds positions"
        v5_readings = TableSpec("readings", *(part[:7] for part in (
            TABLES["readings"].columns, TABLES["readings"].types)), TABLES["readings"].key)
        with Storage(pool, flavour, options):
            BatchWriter(pool, v5_readings).write(
                reading_row(r)[:7] for r in readings(0.1))
            stored = count(database_url, "readings")
            with pool.connection() as conn:  # a v5 alert kept its position in details
                conn.execute(
                    "INSERT INTO alerts (id, rule, district, kind, severity, ts, details) "
                    "VALUES ('a-old', 'threshold', 'old-town', 'pm25', 'warning', now(), "
                    "'{\"lat\": 48.14, \"lon\": 11.565, \"score\": 3}')")
    finally:
        pool.close()
    with Storage.open(options) as storage:  # the next release starts on the old database
        assert storage.history.series(
            "old-town", "pm25", since=T0, until=T0 + 3600, resolution="1m"
        ).points
        [alert] = storage.history.alerts()
    assert (alert["lat"], alert["lon"], alert["details"]) == (48.14, 11.565, {"score": 3})
    assert count(database_url, "readings") == stored > 0
    assert TABLES_NAMES <= relations(database_url)
    assert "details" in columns(database_url, "alerts")
    assert {"lat", "lon", "radius_m"} <= columns(database_url, "incidents")
    with psycopg.connect(database_url) as conn:
        assert schema_version(conn) == LATEST


def columns(url: str, table: str) -> set[str]:
    """The column names of ``table``."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall()
    return {name for (name,) in rows}


def test_concurrent_starts_apply_each_migration_once(database_url: str) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            with psycopg.connect(database_url) as conn:
                results.extend(migrate(conn, detect_flavour(conn)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(results) == list(range(1, LATEST + 1))


def test_asking_for_timescale_on_plain_postgresql_fails_naming_it(database_url: str) -> None:
    with pytest.raises(ConnectorError, match="timescale is 'on'"):
        Storage.open(StorageOptions(url=database_url, timescale="on"))


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_writing_the_same_batch_twice_stores_it_once(database_url: str, copy: bool) -> None:
    batch = [reading_row(r) for r in readings(0.5)]
    with Storage.open(StorageOptions(url=database_url, copy=copy, batch_rows=100)) as storage:
        writer = storage.writer("readings")
        assert writer.write(batch) == len(batch)
        assert writer.write(batch) == 0
        assert writer.write(batch + batch) == 0  # duplicates inside one batch too
        assert writer.stats.batches > 2  # really in several statements
    assert count(database_url, "readings") == len(batch)


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_each_table_keeps_or_replaces_a_known_key_as_it_should(
    database_url: str, copy: bool
) -> None:
    with Storage.open(StorageOptions(url=database_url, copy=copy)) as storage:
        vitals = storage.writer("vitals")
        vitals.write([vital_row(vital(10.0))])
        vitals.write([vital_row(vital(12.5))])  # a re-run with corrected logic wins
        alerts = storage.writer("alerts")
        alerts.write([alert_row(alert(message="first"))])
        alerts.write([alert_row(alert(message="replayed"))])  # same id: kept as it happened
        opened = Incident(id="inc-1", district="old-town", rule="threshold", kind="pm25",
                          title="Smog", opened_at=T0, cycle_started_at=T0, updated_at=T0,
                          departments=("environment",), alert_ids=("a1",), sequence=1)
        acknowledged, ack = act(opened, "acknowledge", actor="ana", at=T0 + 30)
        resolved, done = act(acknowledged, "resolve", actor="ana", at=T0 + 60,
                             outcome="confirmed", comment="wind turned")
        incidents = storage.writer("incidents")
        for incident in (opened, resolved, acknowledged):  # an older state arrives late
            incidents.write([incident_row(incident.to_record())])
        events = storage.writer("incident_events")
        records = [ack.to_record(), done.to_record()]
        assert events.write(incident_event_row(r) for r in records + records) == 2
        latest = storage.history.latest("vitals")
        stored_alerts = storage.history.alerts()
        stored_incidents = storage.history.incidents()
        stored_events = storage.history.incident_events(incident_id="inc-1")
    assert [v["mean"] for v in latest] == [12.5]
    assert [(a["id"], a["message"]) for a in stored_alerts] == [("a1", "first")]
    assert [(i["state"], i["resolved_at"]) for i in stored_incidents] == [
        ("resolved", iso(T0 + 60))  # the older update did not win
    ]
    assert Incident.from_record(stored_incidents[0]["record"]) == resolved
    assert [IncidentEvent.from_record(e) for e in stored_events] == [ack, done]


def test_bad_rows_fail_at_once_naming_the_table(database_url: str) -> None:
    with Storage.open(StorageOptions(url=database_url)) as storage:
        writer = storage.writer("alerts")
        bad = alert_row(alert())[:2] + (None,) + alert_row(alert())[3:]  # no district
        with pytest.raises(ConnectorError, match="'alerts'"):
            writer.write([bad])
        assert writer.stats.retries == 0


def test_the_bytewax_sink_stores_a_flow_output_once_across_a_replay(database_url: str) -> None:
    batch = readings(0.2)
    options = StorageOptions(url=database_url, batch_rows=50)
    Storage.open(options).close()  # the schema, as `cityheart flow` prepares it at start

    def run() -> None:
        flow = Dataflow("store_test")
        stream = op.input("readings", flow, TestingSource(batch, batch_size=40))
        op.output("store_readings", stream, PostgresSink(options, "readings"))
        run_main(flow)

    run()
    run()  # a restart that reads Kafka again from earlier offsets
    assert count(database_url, "readings") == len(batch)


@pytest.mark.services
@pytest.mark.timeout(180)
def test_nothing_is_lost_when_the_database_stops_for_a_while() -> None:
    import shutil
    import tempfile
    from pathlib import Path

    from cityheart.runtime.postgres import start_postgres
    from connectors.storage.writers import backoff

    root = Path(tempfile.mkdtemp(prefix="cityheart-test-outage-"))
    server = start_postgres(root / "data", database="cityheart", durable=False)
    port = server.port
    options = StorageOptions(url=server.url("cityheart"), pool_timeout_s=1.0, batch_rows=500)
    first, second = readings(0.5, seed=1), readings(0.5, seed=2, start=T0 + 86400)
    waiting = threading.Event()

    def sleep(delay: float) -> None:  # the writer's own pause between attempts
        if writer.stats.retries >= 2:
            waiting.set()
        time.sleep(delay)

    try:
        with Storage.open(options) as storage:
            writer = storage.writer(
                "readings", delays=lambda: backoff(0.05, 2.0, 0.5), sleep=sleep
            )
            writer.write(reading_row(r) for r in first)
            server.stop()  # the database goes away between two batches
            done = threading.Event()
            worker = threading.Thread(
                target=lambda: (writer.write([reading_row(r) for r in second]), done.set()),
                daemon=True,
            )
            worker.start()
            assert waiting.wait(30)  # it keeps retrying: not failing, not dropping the batch
            assert not done.is_set()
            server = start_postgres(root / "data", port=port, durable=False)  # back, same data
            assert done.wait(60)
            assert writer.write(reading_row(r) for r in first + second) == 0
        assert count(server.url("cityheart"), "readings") == len(first) + len(second)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.services
def test_the_embedded_server_keeps_its_history_across_restarts() -> None:
    import shutil
    import tempfile
    from pathlib import Path

    from cityheart.runtime.postgres import start_postgres

    root = Path(tempfile.mkdtemp(prefix="cityheart-test-restart-"))
    rows = [reading_row(r) for r in readings(0.2)]
    try:
        with start_postgres(root / "data", database="cityheart", durable=False) as first:
            with Storage.open(StorageOptions(url=first.url("cityheart"))) as storage:
                storage.writer("readings").write(rows)
            with pytest.raises(ConnectorError, match=f"port {first.port} is already in use"):
                start_postgres(root / "other", port=first.port)
        with start_postgres(root / "data", database="cityheart", durable=False) as second:
            assert count(second.url("cityheart"), "readings") == len(rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_options_come_from_the_config_block_and_hide_the_password() -> None:
    from pydantic import SecretStr

    from connectors.storage.options import DAY

    block = {
        "url": SecretStr("postgresql://city:s3cret@db.example:5432/cityheart"),
        "embedded": False, "data_dir": "var/pgdata", "timescale": "auto",
        "pool": {"min_size": 1, "max_size": 3, "timeout_s": 5},
        "batch_rows": 2000, "copy": True, "compress_after": "2d",
        "retention": {"readings": "7d", "rollup_1d": None},
        "maintenance_interval_s": "1m",
    }
    options = StorageOptions.from_mapping(block)
    assert (options.pool_max, options.batch_rows, options.compress_after_s) == (3, 2000, 2 * DAY)
    assert options.retention.readings == 7 * DAY and options.retention.rollup_1d is None
    assert options.maintenance_interval_s == 60.0
    assert "s3cret" not in repr(options) and "s3cret" not in options.masked_url
    with pytest.raises(ValueError, match="retention: unknown table"):
        StorageOptions.from_mapping({"url": "postgresql://h/db", "retention": {"alerts": "1d"}})
    with pytest.raises(ValueError, match="not a postgresql:// URL"):
        StorageOptions(url="mysql://h/db")


@pytest.mark.services
@pytest.mark.timeout(180)
def test_a_flow_waits_out_a_database_outage_and_stores_everything_once() -> None:
    import logging
    import shutil
    import tempfile
    from pathlib import Path

    from cityheart.runtime.postgres import start_postgres

    root = Path(tempfile.mkdtemp(prefix="cityheart-test-flow-outage-"))
    servers = [start_postgres(root / "data", database="cityheart", durable=False)]
    port = servers[0].port
    options = StorageOptions(url=servers[0].url("cityheart"), pool_timeout_s=1.0)
    Storage.open(options).close()
    batch = readings(0.3)  # 172 readings, 40 per source batch
    stopped, retried = threading.Event(), threading.Event()

    class Retries(logging.Handler):  # the writer's own report that it is waiting
        def emit(self, record: logging.LogRecord) -> None:
            if "retry" in record.getMessage():
                retried.set()

    def stop_midway(reading: Reading) -> Reading:
        if reading.seq == 100 and not stopped.is_set():
            servers[0].stop()
            stopped.set()
        return reading

    def run_flow() -> None:
        flow = Dataflow("store_outage_test")
        stream = op.input("readings", flow, TestingSource(batch, batch_size=40))
        stream = op.map("stop_the_database_midway", stream, stop_midway)
        op.output("store_readings", stream, PostgresSink(options, "readings"))
        run_main(flow)  # returns only once every batch was stored
        finished.set()

    handler = Retries()
    logging.getLogger("connectors.storage.writers").addHandler(handler)
    finished = threading.Event()
    runner = threading.Thread(target=run_flow, daemon=True)
    runner.start()
    try:
        assert stopped.wait(60) and retried.wait(60)  # the sink waits for the database
        assert not finished.is_set()
        # restarted from this thread: the server gets SIGINT when the thread that started it ends
        servers.append(start_postgres(root / "data", port=port, durable=False))
        runner.join(120)
        assert finished.is_set()
        assert count(servers[-1].url("cityheart"), "readings") == len(batch)
    finally:
        logging.getLogger("connectors.storage.writers").removeHandler(handler)
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
