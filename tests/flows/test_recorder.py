"""The recorder keeps history: Kafka records land in PostgreSQL once, even when read again."""

from __future__ import annotations

import time
from types import SimpleNamespace

import orjson
import psycopg
import pytest
from bytewax.testing import TestingSource, run_main

from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from flows.recorder import build_recorder_flow
from models.reading_batch import ReadingBatch
from models.readings import Reading, encode
from models.reports import Report, encode_report
from models.timefmt import iso
from settings.config import Settings

pytestmark = pytest.mark.timeout(120)


def records(settings: Settings) -> list[SimpleNamespace]:
    topics = settings.kafka.topics
    now = 1_795_669_200.0
    readings = [Reading(f"pm-{i}", "harbour", "pm25", 10.0 + i, "ug/m3", now + i, i)
                for i in range(5)]
    readings_records = [
        # as the bridge writes them: batches; a record of a bridge before batches (one
        # reading's JSON); a record of a format this recorder does not know (skipped)
        SimpleNamespace(topic=topics.readings, value=ReadingBatch.of(readings[:3]).encode()),
        SimpleNamespace(topic=topics.readings, value=encode(readings[3])),
        SimpleNamespace(topic=topics.readings, value=b'{"v": 99, "columns": []}'),
        SimpleNamespace(topic=topics.readings, value=ReadingBatch.of(readings[4:]).encode()),
    ]
    vital = {"district": "harbour", "kind": "pm25", "unit": "ug/m3", "window_start": iso(now),
             "window_end": iso(now + 10), "count": 5, "mean": 12.0, "min": 10.0, "max": 14.0,
             "last": 14.0, "devices": 5, "late": 0, "emitted_at": iso(now + 11)}
    indicator = {"record": "indicator", "district": "harbour", "indicator": "aqi",
                 "value": 51.0, "level": "moderate", "unit": "", "window_start": iso(now),
                 "window_end": iso(now + 10)}
    alert = {"id": "a1b2", "rule": "pm25.threshold", "district": "harbour", "kind": "pm25",
             "severity": "warning", "value": 60.0, "threshold": 55.5, "direction": "above",
             "stat": "mean", "unit": "ug/m3", "window_start": iso(now),
             "window_end": iso(now + 10), "ts": iso(now + 3), "emitted_at": iso(now + 3),
             "message": "PM2.5 mean 60 ug/m3 in harbour is above the warning level 55.5"}
    report = Report(id="ticket-9", kind="pothole", text="A deep pothole at the harbour gate",
                    severity="warning", district="harbour", ts=now + 4, reporter="officer-17",
                    source="field-officers", received_at=now + 6, lat=48.14, lon=11.65,
                    attachments=("https://photos.example/9.jpg",))
    return [
        *readings_records,
        SimpleNamespace(topic=topics.reports, value=encode_report(report)),
        SimpleNamespace(topic=topics.vitals, value=orjson.dumps(vital)),
        SimpleNamespace(topic=topics.vitals, value=orjson.dumps(indicator)),
        SimpleNamespace(topic=topics.alerts, value=orjson.dumps(alert)),
    ]


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("readings", "vitals", "indicators", "alerts", "reports")
        }


def test_records_are_stored_once_even_when_the_topics_are_read_again(
    settings: Settings, database_url: str
) -> None:
    options = StorageOptions(url=database_url)
    Storage.open(options).close()  # the schema, as `cityheart recorder` prepares it at start
    batch = records(settings)
    for _ in range(2):  # the second run is a restart that reads the topics from the start again
        run_main(build_recorder_flow(settings.kafka, options, source=TestingSource(batch)))
    assert counts(database_url) == {"readings": 5, "vitals": 1, "indicators": 1, "alerts": 1,
                                    "reports": 1}
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT device_id, value, seq FROM readings ORDER BY seq").fetchall()
    assert stored == [(f"pm-{i}", 10.0 + i, i) for i in range(5)]
    with psycopg.connect(database_url) as conn:
        value, severity = conn.execute("SELECT value, severity FROM alerts").fetchone()
        report = conn.execute("SELECT kind, district, reporter, source, attachments, "
                              "extract(epoch FROM ts) FROM reports").fetchone()
    assert (value, severity) == (60.0, "warning")
    assert report == ("pothole", "harbour", "officer-17", "field-officers",
                      ["https://photos.example/9.jpg"], pytest.approx(1_795_669_204.0))
    assert time.time() > 0


def test_an_anomaly_alerts_band_and_score_are_kept_in_details(
    settings: Settings, database_url: str
) -> None:
    options = StorageOptions(url=database_url)
    Storage.open(options).close()
    alert = {"id": "an-1", "rule": "anomaly.water_level", "district": "riverside",
             "kind": "water_level", "severity": "warning", "value": 1.2, "threshold": 0.5,
             "direction": "above", "stat": "mean", "unit": "m", "ts": iso(1_795_669_200.0),
             "message": "unusual", "expected": 1.6, "low": 1.5, "high": 1.7, "score": 0.62}
    source = TestingSource([SimpleNamespace(topic=settings.kafka.topics.alerts,
                                            value=orjson.dumps(alert))])
    run_main(build_recorder_flow(settings.kafka, options, source=source))
    with psycopg.connect(database_url) as conn:
        [details] = conn.execute("SELECT details FROM alerts WHERE id = 'an-1'").fetchone()
    assert details == {"expected": 1.6, "low": 1.5, "high": 1.7, "score": 0.62}
