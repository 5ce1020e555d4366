"""`cityheart import`: recorded files in, what is good imported, the rest counted per reason;
backfilled into history with the range replayed once, or played through Kafka as live.

The real recorded series are NAB's traffic detectors (speed, travel time, occupancy), read where
they are: ``$CITYHEART_NAB_DIR`` (default ``../shared/nab`` beside the repository); never copied.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from cityheart.cli import app
from cityheart.importer import read_file
from models.recorded import CsvLayout, ValueColumn
from settings.config import Settings
from tests.support.config import ROOT, write_config
from tests.support.kafka import consume_all

pytestmark = pytest.mark.timeout(300)

NAB = Path(os.environ.get("CITYHEART_NAB_DIR", ROOT.parent / "shared" / "nab"))
SPEED = NAB / "data" / "realTraffic" / "speed_t4013.csv"
NAB_OPTIONS = ["--time", "timestamp", "--time-format", "%Y-%m-%d %H:%M:%S",
               "--value", "value=traffic_speed:mph", "--device", "det-t4013",
               "--district", "central-station"]

BROKEN = """\
when,speed,unit
2026-11-02T08:00:00Z,50,km/h
2026-11-02T08:05:00Z,-200,km/h
2026-11-02T08:10:00Z,,km/h
2026-11-02T08:15:00Z,52,km/h
2026-11-02T08:15:00Z,53,km/h
2026-11-02T08:20:00Z,fast,km/h
2026-11-02T08:25:00Z,51
yesterday,51,km/h
2026-11-02T08:30:00Z,900,km/h
2026-11-02T11:00:00Z,31,mph
2026-11-02T11:05:00Z,30,mph
2026-11-02T11:10:00Z,14,m/s
2026-11-02T11:15:00Z,8,knots
"""


def test_a_half_broken_file_imports_what_is_good_and_counts_the_rest_per_reason(
    base_settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(BROKEN)
    layout = CsvLayout("when", (ValueColumn("speed", "traffic_speed"),), device="det-9",
                       district="harbour", unit_column="unit", missing=frozenset({"-200"}))
    report = read_file(base_settings, path, "csv", layout=layout, now=time.time())
    assert [round(r.value, 2) for r in report.readings] == [50.0, 52.0, 49.89, 48.28, 50.4]
    assert {r.unit for r in report.readings} == {"km/h"}  # every unit converted as live
    assert dict(report.refused) == {
        "missing_value": 2, "duplicate": 1, "wrong_type": 1, "bad_row": 1,
        "bad_timestamp": 1, "out_of_range": 1, "unknown_unit": 1}
    assert report.gaps == 1  # 08:30 .. 11:00, nothing made up for it
    text = "\n".join(report.lines())
    assert "not imported: 2 missing_value" in text
    assert "line 6: det-9 traffic_speed at 2026-11-02T08:15:00.000Z came before" in text
    assert "'knots' is not one of" in text


def test_a_many_sensor_file_takes_devices_and_districts_from_its_columns(
    settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "many.csv"
    path.write_text("time,sensor,area,speed,noise\n"
                    "01/11/2026 08:00,det-1,harbour,50,61.5\n"
                    "01/11/2026 08:00,det-2,old-town,-,70\n"
                    "01/11/2026 08:01,det-1,atlantis,51,62\n")
    result = CliRunner().invoke(app, [
        "import", str(path), "--time", "time", "--time-format", "%d/%m/%Y %H:%M",
        "--timezone", "Europe/Berlin", "--value", "speed=traffic_speed",
        "--value", "noise=noise:dBA", "--device-column", "sensor", "--district-column", "area",
        "--missing", "-", "--as-live", "--speed", "1e9",
        "--config", str(write_config(settings, tmp_path / "config.yaml"))],
        env={"CITYHEART_KAFKA_BOOTSTRAP": settings.kafka.bootstrap})
    assert result.exit_code == 0, result.output
    assert "read 3 readings from many.csv" in result.output
    assert "time range: 2026-11-01T07:00:00.000Z .. 2026-11-01T07:00:00.000Z" in result.output
    assert "not imported: 2 unknown_district" in result.output
    assert "not imported: 1 missing_value" in result.output
    records = consume_all(settings.kafka.bootstrap, settings.kafka.topics.readings, 3)
    assert sorted((r["device_id"], r["district"], r["kind"], r["value"]) for r in (
        orjson.loads(m.value()) for m in records)) == [
        ("det-1", "harbour", "noise", 61.5), ("det-1", "harbour", "traffic_speed", 50.0),
        ("det-2", "old-town", "noise", 70.0)]


@pytest.mark.parametrize(("options", "message"), [
    (["--value", "speed", "--device", "d", "--district", "harbour"], "is not COLUMN=KIND"),
    (["--value", "speed=nope", "--device", "d", "--district", "harbour"], "value's KIND"),
    (["--value", "speed=traffic_speed"], "--device/--device-column"),
    (["--value", "speed=traffic_speed", "--device", "d", "--lat", "1", "--lon", "1"],
     "is in no district"),
    (["--value", "speed=traffic_speed", "--device", "d", "--district", "x", "--format", "xls"],
     "format 'xls' is not one of"),
])
def test_import_options_that_cannot_work_are_refused_by_name(
    base_settings: Settings, tmp_path: Path, options: list[str], message: str,
) -> None:
    path = tmp_path / "f.csv"
    path.write_text("t,speed\n")
    result = CliRunner().invoke(app, [
        "import", str(path), "--time", "t", *options,
        "--config", str(write_config(base_settings, tmp_path / "config.yaml"))])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_senml_file_imports_its_records_and_names_each_refused_one(
    base_settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "pack.json"
    path.write_bytes(orjson.dumps([
        {"bn": "riverside/water_level/", "bt": 1_441_106_700, "bu": "m", "n": "wl-1", "v": 1.5},
        {"n": "wl-1", "t": 600, "v": 1.6},
        {"n": "wl-1", "t": 1200, "vs": "high"},
        {"n": "wl-1", "t": 600, "v": 1.7},
    ]))
    report = read_file(base_settings, path, "senml", now=time.time())
    assert [(r.device_id, r.district, r.value) for r in report.readings] == [
        ("wl-1", "riverside", 1.5), ("wl-1", "riverside", 1.6)]
    assert dict(report.refused) == {"wrong_type": 1, "duplicate": 1}


def _city(base_settings: Settings, database_url: str, tmp_path: Path) -> Path:
    database = base_settings.database.model_copy(
        update={"url": SecretStr(database_url), "embedded": False})
    return write_config(base_settings.model_copy(update={"database": database}),
                        tmp_path / "config.yaml")


def _counts(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                for table in ("readings", "vitals", "alerts")}


@pytest.mark.skipif(not SPEED.is_file(), reason=f"NAB's realTraffic series are not at {NAB} "
                    "(set CITYHEART_NAB_DIR to the NAB folder)")
def test_a_real_traffic_series_backfills_history_and_its_replay_once(
    base_settings: Settings, database_url: str, tmp_path: Path,
) -> None:
    config = _city(base_settings, database_url, tmp_path)
    runner = CliRunner()
    env = {"CITYHEART_DATABASE_URL": database_url}
    first = runner.invoke(app, ["import", str(SPEED), *NAB_OPTIONS, "--config", str(config)],
                          env=env)
    assert first.exit_code == 0, first.output
    assert "read 2494 readings from speed_t4013.csv" in first.output
    assert "not imported: 1 duplicate" in first.output  # the detector's own repeated minute
    assert "stored 2494 new readings" in first.output
    counts = _counts(database_url)
    assert counts["readings"] == 2494
    assert counts["vitals"] > 1000  # the replay's windows over the file's range
    with psycopg.connect(database_url) as conn:
        low, high = conn.execute("SELECT min(value), max(value) FROM readings").fetchone()
    assert 0 < low < high < 200  # mph as km/h, in the kind's range
    again = runner.invoke(app, ["import", str(SPEED), *NAB_OPTIONS, "--config", str(config)],
                          env=env)
    assert again.exit_code == 0, again.output
    assert "stored 0 new readings (2494 were stored already)" in again.output
    assert _counts(database_url) == counts  # nothing twice: readings, windows, alerts


def test_a_recorded_file_played_as_live_goes_through_kafka_stamped_now(
    settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "day.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps({
        "device_id": "det-7", "district": "harbour", "kind": "traffic_speed", "value": 40 + n,
        "unit": "km/h", "ts": f"2015-09-01T11:{n * 5:02d}:00Z"}) for n in range(4)) + b"\n{}\n")
    config = write_config(settings, tmp_path / "config.yaml")
    started = time.time()
    result = CliRunner().invoke(app, [
        "import", str(path), "--format", "jsonl", "--as-live", "--speed", "900",
        "--config", str(config)], env={"CITYHEART_KAFKA_BOOTSTRAP": settings.kafka.bootstrap})
    assert result.exit_code == 0, result.output
    assert "not imported: 1 missing_field" in result.output
    assert "played 4 readings as live" in result.output
    records = consume_all(settings.kafka.bootstrap, settings.kafka.topics.readings, 4)
    readings = [orjson.loads(m.value()) for m in records]
    assert [r["value"] for r in readings] == [40, 41, 42, 43]
    stamps = [r["ts"] for r in readings]
    # 5 recorded minutes are 1/3 s apart at x900, from the moment the replay began
    assert started - 1 <= stamps[0] <= time.time()
    assert [round(b - a, 2) for a, b in zip(stamps, stamps[1:], strict=False)] == [0.33] * 3
