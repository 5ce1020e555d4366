"""Bytewax recovery of `cityheart flow` on real Tansu: a restart resumes, it does not start over.

The flow runs as production runs it (``python -m cityheart flow --recovery-dir DIR``) on a
riverside water level, one reading a minute of event time. It reads a first batch, is stopped,
more readings arrive, and it is started again on the same recovery directory: it goes on from its
snapshot (no window of the first batch comes again, the windows keep their counts) and its
anomaly detectors go on learning where they were, so the alerts and scores of the interrupted run
equal those of one uninterrupted run over the same readings; a spike right after the restart
alerts, which detectors relearning from zero could not do during their warm-up.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from bytewax.testing import TestingSource

from cityheart.runtime.servers import ChildProcess, spawn
from connectors.kafka import KafkaRecord, tail_consumer
from models.readings import Reading
from models.timefmt import from_iso
from settings.config import Settings
from settings.loader import dump, load_mapping
from tests.support import write_config
from tests.support.flow import batch_record, run_flow_records
from tests.support.kafka import produce

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

EVERY = 60.0          # one reading a minute of event time: each 10-s window holds one
FIRST = range(0, 60)  # the first batch: an hour
SECOND = range(70, 110)  # after the restart: 40 more minutes, a spike at its start
SPIKE = range(74, 76)
WARMUP = 20           # points a detector learns before it may alert (SPIKE is 4-5 points in)
KEY = b"riverside/water_level"


def city(settings: Settings, tmp_path: Path) -> Settings:
    """Anomaly detectors that score every window and warm up fast; frequent snapshots."""
    data = dump(settings)
    data["anomaly"].update(interval_s=0, warmup=WARMUP, per_device=False)
    data["flow"].update(recovery_dir=str(tmp_path / "recovery"), snapshot_interval_s=1)
    return load_mapping(data, env={})


def readings(start: float, minutes: range) -> list[KafkaRecord]:
    rng = random.Random(7)
    values = {n: 1.6 + rng.gauss(0.0, 0.02) for n in range(max(SECOND) + 1)}
    out = []
    for n in minutes:
        value = values[n] + (0.8 if n in SPIKE else 0.0)
        reading = Reading("wl-1", "riverside", "water_level", value, "m", start + n * EVERY + 5)
        out.append(batch_record([reading]))
    return out


def produce_readings(settings: Settings, records: list[KafkaRecord]) -> None:
    """Write ``records`` to the test's ``readings`` topic."""
    produce(settings.kafka.bootstrap, records, topic=settings.kafka.topics.readings)


def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` so far (an empty poll after data ends the read)."""
    consumer = tail_consumer(bootstrap, [topic])
    records: list[Any] = []
    try:
        while batch := consumer.consume(1000, 1.0):
            records += [m for m in batch if m.error() is None]
    finally:
        consumer.close()
    return records


def wait_for_window(bootstrap: str, topic: str, start: float, flow: ChildProcess,
                    timeout: float) -> None:
    """Wait until the water level window starting at ``start`` was emitted."""
    consumer = tail_consumer(bootstrap, [topic])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and flow.running:
            for message in consumer.consume(1000, 0.2):
                if message.error() is None and message.key() == KEY and from_iso(
                        orjson.loads(message.value())["window_start"]) == start:
                    return
    finally:
        consumer.close()
    pytest.fail(f"no window at {start} within {timeout} s (flow running: {flow.running})")


def run_flow_until(settings: Settings, config: Path, log_path: Path, window: float) -> None:
    """`cityheart flow` until the window starting at ``window`` is out; then SIGTERM."""
    env = {**os.environ, "CITYHEART_KAFKA_BOOTSTRAP": settings.kafka.bootstrap}
    flow = spawn("flow", [sys.executable, "-m", "cityheart", "flow", "--config", str(config)],
                 env=env, log_path=log_path)
    try:
        wait_for_window(settings.kafka.bootstrap, settings.kafka.topics.vitals, window, flow, 90)
    finally:
        code = flow.stop(signal.SIGTERM, timeout=30)
    assert code == 0, log_path.read_text(errors="replace")


def uninterrupted(settings: Settings, records: list[KafkaRecord]) -> tuple[list, list]:
    out = run_flow_records(settings, records)
    return out.vitals, out.alerts


def windows(records: list[Any]) -> set[tuple[float, int, float]]:
    """(start, count, mean) of the water level windows among ``records``."""
    out = set()
    for record in records:
        key = record.key() if callable(record.key) else record.key
        value = orjson.loads(record.value() if callable(record.value) else record.value)
        if key == KEY:
            out.add((from_iso(value["window_start"]), value["count"], value["mean"]))
    return out


def anomalies(records: list[Any]) -> dict[str, tuple[float, float, str]]:
    """Anomaly alerts by id: (score, value, window start)."""
    out = {}
    for record in records:
        alert = orjson.loads(record.value() if callable(record.value) else record.value)
        if alert["rule"].startswith("anomaly."):
            out[alert["id"]] = (alert["score"], alert["value"], alert["window_start"])
    return out


def test_a_restarted_flow_resumes_its_windows_and_detectors_from_the_recovery_directory(
    settings: Settings, tmp_path: Path
) -> None:
    settings = city(settings, tmp_path)
    bootstrap = settings.kafka.bootstrap
    topics = settings.kafka.topics
    start = (time.time() // 3600) * 3600 - 3 * 3600  # three hours ago, on the hour
    config = write_config(settings, tmp_path / "config.yaml")
    first, second = readings(start, FIRST), readings(start, SECOND)

    produce_readings(settings, first)
    run_flow_until(settings, config, tmp_path / "flow-1.log", start + max(FIRST) * EVERY)
    assert list((tmp_path / "recovery").glob("part-*.sqlite3")), "partitions made on first use"
    before_vitals = read_all(bootstrap, topics.vitals)
    before_alerts = read_all(bootstrap, topics.alerts)

    produce_readings(settings, second)
    run_flow_until(settings, config, tmp_path / "flow-2.log", start + max(SECOND) * EVERY)
    vitals = read_all(bootstrap, topics.vitals)
    alerts = read_all(bootstrap, topics.alerts)
    resumed = windows(vitals[len(before_vitals):])

    # it went on from the snapshot: no window of the first batch was computed again
    last_of_first = start + max(FIRST) * EVERY
    assert min(w[0] for w in resumed) >= last_of_first, sorted(resumed)[:3]
    assert all(count == 1 for _, count, _ in windows(vitals)), "no reading counted twice"

    expected_vitals, expected_alerts = uninterrupted(settings, first + second)
    assert windows(vitals) == windows(expected_vitals)
    expected = anomalies(expected_alerts)
    spike = {i: a for i, a in expected.items() if from_iso(a[2]) >= start + min(SPIKE) * EVERY}
    assert spike, f"the spike after the restart alerts in an uninterrupted run: {expected}"
    assert anomalies(before_alerts).keys() <= expected.keys()
    assert anomalies(alerts) == expected, "the same alerts with the same scores"


def every_series(settings: Settings, start: float, minutes: int) -> list[KafkaRecord]:
    """Readings of every district and kind every 10 s, sweeping each kind's range (alerts)."""
    out = []
    for step in range(minutes * 6):
        for district in settings.district_ids():
            for kind_id, kind in settings.kinds.items():
                low, high = kind.range
                value = low + (high - low) * (0.1 + 0.8 * ((step % 9) / 8))
                reading = Reading(f"{kind_id}-{district}-1", district, kind_id, value, kind.unit,
                                  start + step * 10 + 3)
                out.append(batch_record([reading]))
    return out


def test_every_stateful_step_survives_a_crash_and_resumes_from_its_snapshot(
    settings: Settings, tmp_path: Path
) -> None:
    """Windows, indicators, rules, detectors, the city and incidents: all pickle and resume."""
    from datetime import timedelta

    from bytewax.recovery import RecoveryConfig

    from cityheart.flow import recovery_config

    settings = city(settings, tmp_path)
    start = 1_795_651_200.0
    items: list[Any] = every_series(settings, start, minutes=4)
    now = start + 4 * 60 + 30

    def run(source_items: list[Any], recovery: RecoveryConfig | None) -> tuple[list, ...]:
        out = run_flow_records(settings, source_items, batch_size=50, clock=lambda: now,
                               recovery=recovery, epoch_interval=timedelta(0))
        return out.vitals, out.alerts, out.incidents

    expected = run(items, None)
    recovery = recovery_config(settings.flow)
    assert recovery is not None
    crashed = items[: len(items) // 2] + [TestingSource.ABORT()] + items[len(items) // 2:]
    first = run(crashed, recovery)
    assert first[0] and len(first[0]) < len(expected[0]), "it stopped at the crash"
    second = run(crashed, recovery)
    vitals, alerts, incidents = (a + b for a, b in zip(first, second, strict=True))

    assert expected[1] and records(alerts) == records(expected[1])
    # the city's sums may add districts in another order: the last bits of a float may differ
    assert vital_summary(vitals) == vital_summary(expected[0])
    # alerts of one moment may reach an incident in another order: compare what each holds
    assert expected[2] and incident_summary(incidents) == incident_summary(expected[2])


def records(items: list[KafkaRecord]) -> set[tuple[bytes | None, bytes]]:
    """Key and value of each record, less ``emitted_at`` (the wall clock)."""
    return {(r.key, r.value.split(b'"emitted_at"')[0]) for r in items}


def vital_summary(items: list[KafkaRecord]) -> set[tuple]:
    """Key, window, value (or count and mean) and level of each vital and indicator record."""
    out = set()
    for record in items:
        vital = orjson.loads(record.value)
        if vital.get("record") == "indicator":
            value = vital["value"]
            value = round(value, 6) if isinstance(value, float) else value
            out.add((record.key, vital["window_start"], value, vital["level"]))
        else:
            out.add((record.key, vital["window_start"], vital["count"], round(vital["mean"], 6)))
    return out


def incident_summary(items: list[KafkaRecord]) -> dict[str, tuple[int, frozenset]]:
    """Each incident's last sequence number and its events' (action, alert id)."""
    events: dict[str, set] = {}
    last: dict[str, int] = {}
    for record in items:
        event = orjson.loads(record.value)
        incident = event["incident_id"]
        events.setdefault(incident, set()).add(
            (event["action"], (event.get("details") or {}).get("id")))
        last[incident] = max(last.get(incident, 0), event["sequence"])
    return {incident: (last[incident], frozenset(events[incident])) for incident in events}
