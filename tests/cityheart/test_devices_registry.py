"""The registry keeps where each device is and who owns it: `cityheart devices add` with a
position, `import` from CSV and GeoJSON, and `list` with each device's state (Riverton:
harbour is lon 11.64-11.67, lat 48.13-48.15; old-town lon 11.55-11.58)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from cityheart.cli import app
from cityheart.devices import import_devices, load_registry
from models.devices import Device, DeviceRegistry
from models.errors import ConfigError
from models.inventory import inventory, missing_by_district
from settings.config import Settings
from tests.support import CONFIG

HASH = "$7$101$c2FsdA==$aA=="


def cli(tmp_path: Path, *args: str):
    registry = tmp_path / "devices.yaml"
    return CliRunner().invoke(app, ["devices", *args, "--config", str(CONFIG),
                                    "--registry", str(registry)])


def test_add_with_a_position_finds_the_district_and_keeps_the_details(tmp_path: Path) -> None:
    added = cli(tmp_path, "add", "bus-1", "--kind", "pm25", "--lat", "48.14", "--lon", "11.655",
                "--owner", "transit", "--model", "AQ-200", "--installed", "2026-03-01",
                "--json")
    assert added.exit_code == 0, added.output
    assert orjson.loads(added.stdout)["topic"] == "city/harbour/pm25/bus-1"
    [entry] = yaml.safe_load((tmp_path / "devices.yaml").read_text())["devices"]
    assert entry["district"] == "harbour" and (entry["lat"], entry["lon"]) == (48.14, 11.655)
    assert (entry["owner"], entry["model"], entry["installed"]) == (
        "transit", "AQ-200", date(2026, 3, 1))
    listed = cli(tmp_path, "list", "--json", "--no-history")
    [row] = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert (row["state"], row["lat"], row["owner"], row["installed"]) == (
        "active", 48.14, "transit", "2026-03-01")


@pytest.mark.parametrize(("args", "words"), [
    (["--lat", "48.354", "--lon", "11.786"], "lat: lat 48.354, lon 11.786 is outside every"),
    (["--lat", "48.14", "--lon", "11.655", "--district", "old-town"],
     "district: lat 48.14, lon 11.655 is in district 'harbour', not 'old-town'"),
    ([], "district: give the device's district, or its position"),
    (["--lat", "48.14"], "give both lat and lon"),
])
def test_add_refuses_a_position_that_does_not_fit(tmp_path: Path, args: list, words: str) -> None:
    refused = cli(tmp_path, "add", "bus-1", "--kind", "pm25", *args)
    assert refused.exit_code == 1
    assert words in refused.stderr
    assert not (tmp_path / "devices.yaml").exists()


def test_import_from_csv(base_settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "sensors.csv"
    source.write_text(
        "id,kind,district,lat,lon,owner,model,installed\n"
        "pm25-h-1,pm25,,48.14,11.655,environment-bureau,AQ-200,2025-06-30\n"
        "noise-o-1,noise,old-town,,,,,\n"
    )
    registry = tmp_path / "devices.yaml"
    added = import_devices(base_settings, registry, source)
    assert [(d.id, d.district) for d, _ in added] == [("pm25-h-1", "harbour"),
                                                     ("noise-o-1", "old-town")]
    kept = load_registry(base_settings, registry)
    first = kept.get("pm25-h-1")
    assert first is not None and first.position == (48.14, 11.655)
    assert (first.owner, first.model, first.installed) == (
        "environment-bureau", "AQ-200", date(2025, 6, 30))
    assert kept.get("noise-o-1").position is None


def test_import_from_geojson_points(base_settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "points.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [11.565, 48.14]},
         "properties": {"id": "wl-1", "kind": "water_level", "owner": "water-authority"}},
    ]}))
    imported = CliRunner().invoke(app, [
        "devices", "import", str(source), "--json", "--config", str(CONFIG),
        "--registry", str(tmp_path / "devices.yaml")])
    assert imported.exit_code == 0, imported.output
    [line] = [orjson.loads(text) for text in imported.stdout.splitlines()]
    assert (line["id"], line["district"], line["topic"]) == (
        "wl-1", "old-town", "city/old-town/water_level/wl-1")
    assert line["password"] not in (tmp_path / "devices.yaml").read_text()


def test_one_bad_row_imports_nothing_and_is_named(base_settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "sensors.csv"
    source.write_text("id,kind,lat,lon\nok-1,pm25,48.14,11.655\nfar-1,pm25,10.0,10.0\n")
    registry = tmp_path / "devices.yaml"
    with pytest.raises(ConfigError) as info:
        import_devices(base_settings, registry, source)
    assert str(info.value).startswith("sensors.csv: row 2.lat: lat 10.0, lon 10.0 is outside")
    assert not registry.exists()


def device(device_id: str, district: str = "harbour", **more) -> Device:
    return Device(id=device_id, district=district, kind="pm25", password_hash=HASH,
                  added_at="2026-11-26T00:00:00Z", **more)


def test_states_come_from_history_and_a_device_never_heard_from_is_missing() -> None:
    registry = DeviceRegistry(devices=(
        device("ok-1"), device("quiet-1"), device("junk-1"), device("never-1"),
        device("never-2", "old-town"), device("gone-1", revoked_at="2026-11-27T00:00:00Z"),
    ))
    health = [[{"kind": "pm25", "silent": ["quiet-1"], "stuck": [], "out_of_range": ["junk-1"],
                "missing": ["never-1"]}]]
    rows = inventory(registry, last_seen={"ok-1": 1.0e9, "quiet-1": 0.9e9, "junk-1": 1.0e9},
                     health=health)
    assert {r.device.id: r.state for r in rows} == {
        "ok-1": "ok", "quiet-1": "silent", "junk-1": "out_of_range", "never-1": "missing",
        "never-2": "missing", "gone-1": "revoked"}
    assert missing_by_district(rows) == {"harbour": 1, "old-town": 1}
    assert [r.state for r in inventory(registry, last_seen=None, health=None)] == [
        "active"] * 5 + ["revoked"]


@pytest.mark.services
def test_list_shows_states_and_last_seen_from_history(tmp_path: Path, database_url: str) -> None:
    from connectors.storage import Storage, StorageOptions
    from connectors.storage.rows import indicator_row, reading_row
    from models.readings import Reading
    from models.timefmt import iso

    seen_at = 1_795_669_200.0
    with Storage.open(StorageOptions(url=database_url)) as storage:
        storage.writer("readings").write([
            reading_row(Reading("pm-ok", "harbour", "pm25", 10.0, "ug/m3", seen_at)),
            reading_row(Reading("pm-quiet", "harbour", "pm25", 10.0, "ug/m3", seen_at - 600)),
        ])
        storage.writer("indicators").write([indicator_row({
            "district": "harbour", "indicator": "device_health", "value": 0.5,
            "window_end": iso(seen_at), "components": [
                {"kind": "pm25", "silent": ["pm-quiet"], "stuck": [], "out_of_range": [],
                 "missing": ["pm-never"]}]})])
    for device_id in ("pm-ok", "pm-quiet", "pm-never"):
        assert cli(tmp_path, "add", device_id, "--kind", "pm25",
                   "--district", "harbour").exit_code == 0
    listed = CliRunner().invoke(app, [
        "devices", "list", "--json", "--database-url", database_url, "--config", str(CONFIG),
        "--registry", str(tmp_path / "devices.yaml")])
    assert listed.exit_code == 0, listed.output
    rows = {r["id"]: r for r in map(orjson.loads, listed.stdout.splitlines())}
    assert {i: (r["state"], r["last_seen"]) for i, r in rows.items()} == {
        "pm-ok": ("ok", seen_at), "pm-quiet": ("silent", seen_at - 600),
        "pm-never": ("missing", None)}
    assert "missing (registered, never reported): 1 city-wide; harbour 1" in listed.stderr
