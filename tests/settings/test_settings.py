"""config.yaml is validated at start, and a wrong key or value is named in the error."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.errors import ConfigError
from settings.loader import load, load_mapping
from tests.support import shipped_config

ROOT = Path(__file__).resolve().parents[2]
RAW = shipped_config()


def raw() -> dict:
    return copy.deepcopy(RAW)


def error_of(data: dict, env: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_mapping(data, source="config.yaml", env=env or {})
    return info.value


def test_shipped_config_describes_a_mid_size_city() -> None:
    settings = load(ROOT / "config.yaml", env={})
    assert len(settings.districts) >= 8
    assert len(settings.kinds) >= 6
    for kind in settings.kinds.values():
        assert kind.unit and kind.interval_s > 0 and kind.range[0] < kind.range[1]
    for district in settings.districts:
        assert district.polygon[0] == district.polygon[-1]


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (lambda d: d["kinds"]["pm25"].update(range=[10, 1]), "kinds.pm25.range", "min < max"),
        (lambda d: d["kinds"]["pm25"].update(colour="red"), "kinds.pm25.colour", "unknown key"),
        (lambda d: d["kinds"]["noise"].pop("unit"), "kinds.noise.unit", "missing"),
        (lambda d: d["flow"].update(window_s=0), "flow.window_s", "greater than 0"),
        (lambda d: d["mqtt"].update(url="http://x"), "mqtt.url", "mqtt://"),
        (lambda d: d["kafka"].update(bootstrap="nohost"), "kafka.bootstrap", "host:port"),
        (lambda d: d["districts"][2].update(centroid=[500, 1]), "districts[2].centroid", "WGS84"),
        (lambda d: d["kinds"]["pm25"]["thresholds"].update(warning=900),
         "kinds.pm25.thresholds", "critical"),
        (lambda d: d["simulator"].update(scenario="nope"), "simulator.scenario", "'nope'"),
        (lambda d: d["simulator"]["scenarios"]["demo"][0].update(kind="ozone"),
         "simulator.scenarios.demo[0].kind", "'ozone'"),
        (lambda d: d["districts"][1].update(id="old-town"), "districts[1].id", "repeated"),
        (lambda d: d["city"].update(timezone="Europe/Berln"), "city.timezone",
         "'Europe/Berln' is not an IANA time zone"),
    ],
)
def test_a_wrong_key_or_value_is_named(edit, key: str, words: str) -> None:
    data = raw()
    edit(data)
    error = error_of(data)
    assert error.key == key
    assert words in str(error)
    assert str(error).startswith(f"config.yaml: {key}: ")


def test_environment_overrides_addresses_and_names_itself_when_wrong() -> None:
    settings = load_mapping(raw(), env={"CITYHEART_KAFKA_BOOTSTRAP": "kafka.example:9093",
                                        "CITYHEART_MQTT_PASSWORD": "s3cret"})
    assert settings.kafka.bootstrap == "kafka.example:9093"
    assert settings.kafka.embedded is False
    assert "s3cret" not in repr(settings), "secrets are masked"
    error = error_of(raw(), env={"CITYHEART_FEED_PORT": "eighty"})
    assert "CITYHEART_FEED_PORT" in str(error) and error.key == "feed.port"


def test_cli_refuses_a_bad_config_at_start_naming_the_key(tmp_path: Path) -> None:
    data = raw()
    data["kinds"]["pm25"]["interval_s"] = -5
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, "-m", "cityheart", "bridge", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "config.yaml: kinds.pm25.interval_s" in result.stderr


def test_a_command_run_where_there_is_no_config_says_how_to_give_one(tmp_path: Path) -> None:
    # what `cityheart up` says when installed from the wheel and run outside the repository
    env = {key: value for key, value in os.environ.items() if key != "CITYHEART_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-m", "cityheart", "up"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert f"there is no {tmp_path / 'config.yaml'}" in result.stderr
    assert "--config or CITYHEART_CONFIG" in result.stderr


def test_missing_or_malformed_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.yaml", env={})
    broken = tmp_path / "config.yaml"
    broken.write_text("kinds: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(broken, env={})


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@hsettings(max_examples=200, deadline=None)
@given(section=st.sampled_from(sorted(RAW)), value=yaml_values)
def test_any_section_value_either_loads_or_fails_with_config_error(section: str, value) -> None:
    data = raw()
    data[section] = value
    try:
        load_mapping(data, source="config.yaml", env={})
    except ConfigError as error:
        assert error.key, "the error names a key"
        assert str(error).startswith(f"config.yaml: {error.key}: ")


def test_dump_round_trips_including_secrets(base_settings) -> None:
    from pydantic import SecretStr

    from settings.loader import dump

    secret = base_settings.model_copy(update={
        "database": base_settings.database.model_copy(
            update={"url": SecretStr("postgresql://u:pw@db.example:5432/city")}),
        "mqtt": base_settings.mqtt.model_copy(update={"password": SecretStr("s3cret")}),
    })
    again = load_mapping(yaml.safe_load(yaml.safe_dump(dump(secret))), env={})
    assert again == secret
    assert again.database.url.get_secret_value() == "postgresql://u:pw@db.example:5432/city"


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (lambda d: d["dashboard"].update(port=d["feed"]["port"]), "dashboard.port",
         "feed.port (8765) and by dashboard.port (8765)"),
        (lambda d: d["metrics"]["ports"].update(recorder=5433), "metrics.ports.recorder",
         "database.url (5433) and by metrics.ports.recorder (5433)"),
        (lambda d: d["kafka"].update(bootstrap="127.0.0.1:1883"), "kafka.bootstrap",
         "mqtt.url (1883) and by kafka.bootstrap (1883)"),
        (lambda d: d["mqtt"].update(bridge_processes=11), "metrics.ports.flow",
         "metrics.ports.bridge (9110-9120, 11 processes)"),
    ],
)
def test_two_servers_on_one_port_are_refused_naming_both(edit, key: str, words: str) -> None:
    data = raw()
    edit(data)
    error = error_of(data)
    assert error.key == key
    assert "port" in str(error) and words in str(error)


def test_ports_of_external_servers_and_port_zero_may_repeat() -> None:
    data = raw()
    data["feed"]["port"] = data["dashboard"]["port"] = 0
    settings = load_mapping(data, env={"CITYHEART_KAFKA_BOOTSTRAP": "kafka.example:8766"})
    assert settings.feed.port == settings.dashboard.port == 0
    assert settings.kafka.port == 8766 and not settings.kafka.embedded


def test_the_shipped_files_restate_no_default_of_the_schema() -> None:
    """Defaults live in the schema only: dropping any key of config.yaml or city.yaml changes
    the settings (a key whose value is the default would not)."""
    from settings.loader import read_config

    raw = read_config(ROOT / "config.yaml")
    settings = load_mapping(raw, env={})
    restated = []

    def walk(node: dict, path: str) -> None:
        for key in list(node):
            value = node.pop(key)
            try:
                same = load_mapping(raw, env={}) == settings
            except ConfigError:  # needed by another key: not a default
                same = False
            if same:
                restated.append(f"{path}{key}")
            node[key] = value
            if isinstance(value, dict):
                walk(value, f"{path}{key}.")

    walk(raw, "")
    assert restated == []


def test_a_section_in_both_files_is_refused_naming_both(tmp_path) -> None:
    (tmp_path / "city.yaml").write_text("city: {name: A, timezone: UTC}\n")
    (tmp_path / "config.yaml").write_text("city_file: city.yaml\ncity: {name: B}\n")
    with pytest.raises(ConfigError, match="city: is in both config.yaml and city.yaml"):
        load(tmp_path / "config.yaml", env={})


def test_an_error_in_the_city_file_names_the_city_file() -> None:
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ROOT / "config.yaml", tmp)
        text = (ROOT / "city.yaml").read_text().replace(
            "timezone: America/Los_Angeles", "timezone: America/Los_Angelez").replace(
            "file: cityheart/", f"file: {ROOT}/cityheart/")  # the boundaries stay where they are
        (Path(tmp) / "city.yaml").write_text(text)
        with pytest.raises(ConfigError) as caught:
            load(Path(tmp) / "config.yaml", env={})
    assert str(caught.value).startswith("city.yaml: city.timezone: ")


def test_the_defaults_documented_in_docs_configuration_are_the_schemas() -> None:
    """docs/configuration.md's annotated block, laid over the shipped files, changes nothing."""
    import re

    from settings.loader import read_config

    text = (ROOT / "docs" / "configuration.md").read_text()
    [block] = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    documented = yaml.safe_load(block)
    assert set(documented) >= {"mqtt", "kafka", "flow", "anomaly", "database", "feed",
                               "dashboard", "metrics"}
    shipped = read_config(ROOT / "config.yaml")
    assert not set(documented) & set(shipped), "the shipped files leave these to the schema"
    assert load_mapping({**shipped, **documented}, env={}) == load_mapping(shipped, env={})


def test_cityheart_config_prints_every_default_and_masks_secrets() -> None:
    from typer.testing import CliRunner

    from cityheart.cli import app

    env = {"CITYHEART_DATABASE_URL": "postgresql://u:hunter2@db.example:5432/city"}
    result = CliRunner().invoke(app, ["config", "--config", str(ROOT / "config.yaml")], env=env)
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["flow"]["window_s"] == 10.0  # a default neither file states
    assert shown["city"]["name"] == "San Francisco"  # from city.yaml
    assert "hunter2" not in result.stdout
