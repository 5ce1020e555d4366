"""The CLI's spatial options: --near/--radius, --within and --bbox on history readings, alerts
and incidents, ``cityheart incidents`` and ``cityheart devices list``, and ``cityheart incident
ID devices``: refusals naming the option and its forms, and the answers the model gives."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from typer.testing import CliRunner

from cityheart.cli import app
from cityheart.devices import add_device
from cityheart.history import run_history
from cityheart.incident import run_incident
from cityheart.incidents import run_incidents
from connectors.storage import Storage, StorageOptions
from settings.config import Settings
from tests.connectors.test_storage_spatial import CENTRE, POSITIONS, QUESTIONS, T0, expected, fill
from tests.support import CONFIG
from tests.support.open_api import INCIDENT, city_server, token

pytestmark = pytest.mark.timeout(180)

NO_DATABASE = "postgresql://postgres@127.0.0.1:9/cityheart"
AT = f"{CENTRE[0]},{CENTRE[1]}"


def run(*args: str):
    return CliRunner().invoke(app, [*args, "--config", str(CONFIG)])


@pytest.mark.parametrize(("args", "refusal"), [
    (["history", "alerts", "--near", AT, "--radius", "5 miles"],
     "--radius '5 miles': not a distance: use 500m, 2km, 1.5km or 300 (metres)"),
    (["history", "alerts", "--near", AT], f"--near '{AT}': needs --radius"),
    (["history", "alerts", "--radius", "2km"], "--radius '2km': a radius needs --near LAT,LON"),
    (["history", "incidents", "--within", "atlantis"],
     "--within 'atlantis': not a district: one of airport-west, central-station, harbour"),
    (["history", "readings", "--kind", "pm25", "--bbox", "48.15,11.5,48.13,11.6"],
     "--bbox '48.15,11.5,48.13,11.6': south 48.15 is north of north 48.13"),
    (["history", "readings", "--within", "old-town"], "readings need --kind"),
    (["history", "latest", "--within", "old-town"],
     "--near, --within and --bbox filter readings, alerts, incidents, not latest"),
    (["incidents", "--near", "48.14", "--radius", "1km"],
     "--near '48.14': expected LAT,LON in degrees"),
    (["history", "alerts", "--near", AT, "--radius", "1km", "--within", "old-town"],
     "give one of near, within and bbox, not --near and --within"),
])
def test_a_bad_spatial_option_is_refused_before_connecting(args: list[str], refusal: str) -> None:
    result = run(*args, "--database-url", NO_DATABASE)
    assert result.exit_code == 2, result.output
    assert refusal in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output


def _json_lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_history_and_incidents_answer_spatial_questions_as_the_model(
    base_settings: Settings, database_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with Storage.open(StorageOptions(url=database_url)) as storage:
        fill(storage)
    since, until = "2026-12-07T11:59:00Z", "2026-12-07T13:00:00Z"
    box = "48.135,11.56,48.145,11.60"
    options = {"near 500m": (AT, "500m", None, None),
               "within old-town": (None, None, "old-town", None),
               "bbox across old-town and riverside": (None, None, None, box)}
    for label, spatial in options.items():
        want = expected(QUESTIONS[label])
        for what, key in (("readings", "device_id"), ("alerts", "id"), ("incidents", "id")):
            code = run_history(base_settings, what=what, kind="pm25" if what == "readings"
                               else None, since=since, until=until, as_json=True,
                               url=database_url, spatial=spatial)
            assert code == 0
            assert {r[key] for r in _json_lines(capsys.readouterr().out)} == want, (label, what)
        assert run_incidents(base_settings, since=since, as_json=True, url=database_url,
                             now=T0 + 3600, spatial=spatial) == 0
        assert {r["id"] for r in _json_lines(capsys.readouterr().out)} == want, label
    # a reading line shows where it was taken
    run_history(base_settings, what="readings", kind="pm25", since=since, until=until,
                url=database_url, spatial=(AT, "1m", None, None))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.endswith("centre  48.140000,11.565000") for line in lines)


def test_devices_list_keeps_the_registered_devices_the_filter_holds(
    base_settings: Settings, tmp_path: Path,
) -> None:
    registry = tmp_path / "devices.yaml"
    for name, at in POSITIONS.items():
        if name in ("unplaced", "on-the-border"):  # a position needs one district
            continue
        add_device(base_settings, registry, f"pm25-{name}", kind="pm25",
                   details={"lat": at[0], "lon": at[1]})
    add_device(base_settings, registry, "pm25-unplaced", kind="pm25", district="old-town")
    result = run("devices", "list", "--no-history", "--json", "--registry", str(registry),
                 "--near", AT, "--radius", "500m")
    assert result.exit_code == 0, result.output
    assert {r["id"] for r in _json_lines(result.stdout)} == {
        f"pm25-{name}" for name in expected(QUESTIONS["near 500m"])} - {"pm25-on-the-border"}
    result = run("devices", "list", "--no-history", "--registry", str(registry),
                 "--within", "nowhere")
    assert result.exit_code == 2 and "--within 'nowhere': not a district" in result.stderr


def test_incident_devices_lists_the_devices_in_its_circle(
    base_settings: Settings, database_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with city_server(base_settings, database_url) as city:
        city_api = SimpleNamespace(url=city.url, token=token("operator"))
        assert run_incident(base_settings, INCIDENT, "devices", token=city_api.token,
                            api=city_api.url) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[0] for line in lines] == ["pm25-harbour-0"]
        assert run_incident(base_settings, INCIDENT, "devices", token=city_api.token,
                            api=city_api.url, radius="500m", as_json=True) == 0
        found = _json_lines(capsys.readouterr().out)
        assert [d["device_id"] for d in found] == ["pm25-harbour-0", "pm25-harbour-1"]
        assert run_incident(base_settings, INCIDENT, "devices", token=token("viewer"),
                            api=city_api.url) == 1
        assert "sees no device ids" in capsys.readouterr().err
        assert run_incident(base_settings, INCIDENT, "devices", token=city_api.token,
                            api=city_api.url, radius="far") == 2
