"""Pulled sources without servers: a recorded answer mapped to readings (each refusal with its
reason), the breaker's states over time, retry delays, the registry read and re-read."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import yaml

from connectors.sources.breaker import Breaker, retry_delay
from connectors.sources.fetch import Preview, auth_headers, mapper_for
from connectors.sources.registry import SourcesFile, load_sources, save_sources
from models.errors import ConfigError
from settings.config import Settings
from settings.params import reading_parser
from settings.sources import SourceSpec

DATA = Path(__file__).resolve().parents[1] / "data" / "sources"


def air_spec(**changes: object) -> SourceSpec:
    mapping = yaml.safe_load((DATA / "air-stations.map.yaml").read_text())
    return SourceSpec.model_validate({"name": "air-net", "url": "http://127.0.0.1:1/latest",
                                      "mapping": mapping, **changes})


def test_a_recorded_answer_becomes_readings_and_reasons(base_settings: Settings) -> None:
    document = orjson.loads((DATA / "air-stations.json").read_bytes())
    spec = air_spec()
    preview = Preview.of(document, reading_parser(base_settings),
                         mapper_for(base_settings, spec), time.time())
    assert preview.items == 5
    got = {(r.device_id, r.district, r.kind, r.ts): r.value for r in preview.readings}
    eight, nine = 1796630400.0, 1796634000.0  # 2026-12-07 08:00 and 09:00 UTC
    assert got == {
        ("aq-net-4711", "old-town", "pm25", eight): 15.9,
        ("aq-net-4711", "old-town", "no2", eight): 38.0,            # "38": a number as text
        ("aq-net-4712", "harbour", "pm25", eight): 21.0,
        ("aq-net-4712", "harbour", "no2", eight): pytest.approx(19.5 * 1.88),  # ppb converted
        ("aq-net-4711", "old-town", "pm25", nine): 17.2,
        ("aq-net-4711", "old-town", "no2", nine): 41.0,
        ("aq-net-4712", "harbour", "pm25", nine): 22.5,
    }
    reasons = [(index, error.reason) for index, error in preview.refused]
    assert reasons == [(3, "missing_value"), (4, "unknown_district"), (4, "unknown_district")]
    assert "47.55,9.68" in preview.refused[1][1].detail


def test_a_mapping_with_constants_and_a_district(base_settings: Settings) -> None:
    spec = air_spec(mapping={"items": "$.rows[*]", "device_id": "$.id", "time": "$.t",
                             "district": "riverside",
                             "values": [{"kind": "water_level", "value": "$.level"}]})
    document = {"rows": [{"id": "gauge-1", "t": time.time() - 60, "level": 2.5},
                         {"id": "gauge-2", "t": time.time() - 60, "level": 99999},
                         {"id": "gauge-3", "level": 1.0}]}
    preview = Preview.of(document, reading_parser(base_settings),
                         mapper_for(base_settings, spec), time.time())
    assert [(r.device_id, r.district, r.value) for r in preview.readings] == [
        ("gauge-1", "riverside", 2.5)]
    assert preview.readings[0].unit == base_settings.kinds["water_level"].unit  # the kind's own
    assert [(i, e.reason) for i, e in preview.refused] == [(1, "out_of_range"),
                                                           (2, "missing_field")]


def test_a_bad_selector_or_incomplete_auth_is_refused_by_name(base_settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"device_id.*\$\.\[\["):
        mapper_for(base_settings, air_spec(mapping={
            "items": "$", "device_id": "$.[[", "time": "$.t", "district": "harbour",
            "values": [{"kind": "pm25", "value": "$.v"}]}))
    with pytest.raises(ValueError, match="token_env"):
        air_spec(auth={"type": "bearer"})
    spec = air_spec(auth={"type": "header", "header": "X-API-Key", "token_env": "AIR_KEY"})
    with pytest.raises(ConfigError, match="AIR_KEY"):
        auth_headers(spec, {})
    assert auth_headers(spec, {"AIR_KEY": "k1"})["X-API-Key"] == "k1"
    basic = air_spec(auth={"type": "basic", "username_env": "U", "password_env": "P"})
    assert auth_headers(basic, {"U": "ops", "P": "pw"})["Authorization"] == "Basic b3BzOnB3"


def test_the_breaker_opens_after_failures_and_a_probe_closes_it() -> None:
    breaker = Breaker(failures=3, cooldown_s=30)
    for now in (0, 1, 3):
        assert breaker.allows(now)
        breaker.failed(now)
    assert breaker.state == "open"
    assert not breaker.allows(32.9)
    assert breaker.allows(33)           # cool-down over: one probe
    assert breaker.state == "half_open"
    breaker.failed(33)                  # the probe failed: open for another cool-down
    assert breaker.state == "open"
    assert not breaker.allows(62) and breaker.allows(63)
    breaker.succeeded()
    assert (breaker.state, breaker.errors) == ("closed", 0)
    assert [retry_delay(n, 1.0, 10.0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]


def test_the_registry_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    registry = SourcesFile(path, check_s=1.0)
    assert registry.current(0.0) == []
    save_sources(path, [air_spec()])
    assert registry.current(0.5) == []          # checked at most once a second
    assert [s.name for s in registry.current(1.5)] == ["air-net"]
    path.write_text("sources: [{name: Bad Name, url: x}]\n")
    assert [s.name for s in registry.current(3.0)] == ["air-net"]  # the good ones stay
    with pytest.raises(ConfigError, match=r"sources\[0\]\.name"):
        load_sources(path)
    path.write_text(path.read_text().replace("Bad Name", "bad"))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.url"):
        load_sources(path)


def test_a_source_added_from_its_yaml_file_is_listed(base_settings: Settings,
                                                     tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cityheart.cli import app
    from tests.support.config import write_config

    config = write_config(base_settings, tmp_path / "config.yaml")
    entry = {"name": "river-gauges", "url": "https://water.example/gauges", "interval_s": 300,
             "auth": {"type": "header", "header": "X-API-Key", "token_env": "WATER_KEY"},
             "mapping": {"items": "$.gauges[*]", "device_id": "$.id", "time": "$.t",
                         "district": "riverside",
                         "values": [{"kind": "water_level", "value": "$.level", "unit": "m"}]}}
    (tmp_path / "river.yaml").write_text(yaml.safe_dump(entry))
    runner = CliRunner()
    added = runner.invoke(app, ["sources", "add", "--file", str(tmp_path / "river.yaml"),
                                "--config", str(config)])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["sources", "list", "--json", "--config", str(config)])
    (record,) = [orjson.loads(line) for line in listed.output.splitlines()]
    assert (record["name"], record["interval_s"], record["health"]) == (
        "river-gauges", 300, None)
    assert "WATER_KEY" in (tmp_path / "sources.yaml").read_text()   # the variable, no secret
    wrong = {**entry, "name": "bad-kind", "mapping": {**entry["mapping"], "values": [
        {"kind": "lava_flow", "value": "$.v"}]}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(wrong))
    refused = runner.invoke(app, ["sources", "add", "--file", str(tmp_path / "bad.yaml"),
                                  "--config", str(config)])
    assert refused.exit_code == 2 and "'lava_flow' is not one of" in refused.output
