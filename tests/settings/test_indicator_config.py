"""config.yaml's ``indicators:`` section: shipped values, and errors that name the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from models.errors import ConfigError
from settings.indicators import INDICATORS, SCORED
from settings.loader import load, load_mapping
from tests.support import shipped_config

ROOT = Path(__file__).resolve().parents[2]
RAW = shipped_config()


def error_of(edit) -> ConfigError:
    data = copy.deepcopy(RAW)
    edit(data)
    with pytest.raises(ConfigError) as info:
        load_mapping(data, source="config.yaml", env={})
    return info.value


def test_the_shipped_indicators_cover_the_city() -> None:
    settings = load(ROOT / "config.yaml", env={})
    indicators = settings.indicators
    assert indicators.aqi.standard in ("hj633", "epa")
    assert set(indicators.aqi.pollutant_kinds(settings.kinds)) == {
        "pm25", "pm10", "no2", "o3", "co", "so2"}
    assert set(indicators.districts) == set(settings.district_ids())
    assert set(indicators.score.weights) <= set(SCORED)
    assert {r.indicator for r in indicators.rules} <= set(INDICATORS)
    assert indicators.device_health.for_kind("rainfall")["stuck_readings"] is None
    assert indicators.device_health.for_kind("pm25")["stuck_readings"] == 30


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (lambda d: d["indicators"]["aqi"].update(standard="who"), "indicators.aqi.standard",
         "hj633"),
        (lambda d: d["indicators"]["aqi"].update(periods_s={"1h": 3600, "8h": 28800}),
         "indicators.aqi", "24h"),
        (lambda d: d["indicators"]["aqi"].update(pollutants={"pm25": "dust"}),
         "indicators.aqi.pollutants.pm25", "'dust' is not a kind id"),
        (lambda d: d["indicators"]["aqi"].update(pollutants={"pm25": "noise"}),
         "indicators.aqi.pollutants.pm25", "unit 'dBA'"),
        (lambda d: d["indicators"]["traffic"].update(kind="speed"), "indicators.traffic.kind",
         "'speed' is not a kind id"),
        (lambda d: d["indicators"]["noise"].update(leq_window_s=15),
         "indicators.noise.leq_window_s", "whole number of flow windows"),
        (lambda d: d["indicators"]["districts"].update(docks={"noise_zone": "3"}),
         "indicators.districts.docks", "not a district id"),
        (lambda d: d["indicators"]["districts"]["harbour"].update(noise_zone="5"),
         "indicators.districts.harbour.noise_zone", "'4b'"),
        (lambda d: d["indicators"]["score"].update(weights={"rainfall": 1}),
         "indicators.score.weights", "'rainfall' is not one of"),
        (lambda d: d["indicators"]["score"].update(city_weighting="population")
         or d["indicators"]["districts"]["harbour"].pop("population"),
         "indicators.districts.harbour.population", "population"),
        (lambda d: d["indicators"]["rules"][0].update(indicator="ozone"),
         "indicators.rules[0].indicator", "'ozone' is not one of"),
        (lambda d: d["indicators"]["rules"][1].update(id="aqi-high"),
         "indicators.rules[1].id", "repeated"),
        (lambda d: d["indicators"]["rules"][0].update(districts=["docks"]),
         "indicators.rules[0].districts", "'docks' is not a district id"),
        (lambda d: d["indicators"]["rules"][0].update(on="score"),
         "indicators.rules[0]", "unknown key"),
        (lambda d: d["indicators"]["device_health"]["kinds"].update(hail={}),
         "indicators.device_health.kinds.hail", "not a kind id"),
        (lambda d: d["districts"].append({**d["districts"][0], "id": "city"}), "districts",
         "reserved"),
    ],
)
def test_a_wrong_indicator_setting_is_named(edit, key: str, words: str) -> None:
    error = error_of(edit)
    assert error.key.startswith(key), str(error)
    assert words in str(error), str(error)


def test_a_city_without_a_source_kind_simply_has_no_such_indicator() -> None:
    data = copy.deepcopy(RAW)
    del data["kinds"]["crowd_density"]
    del data["indicators"]["crowd"]
    data["indicators"]["rules"] = [r for r in data["indicators"]["rules"]
                                   if r["indicator"] != "crowd"]
    for rule in data["incidents"]["routing"]["rules"]:  # nor route what it cannot measure
        if "kinds" in rule:
            rule["kinds"] = [k for k in rule["kinds"] if k not in ("crowd_density", "crowd")]
    data["incidents"]["routing"]["rules"] = [
        r for r in data["incidents"]["routing"]["rules"] if r.get("kinds", True)
    ]
    settings = load_mapping(data, source="config.yaml", env={})
    assert settings.indicators.crowd.kind == "crowd_density"  # the default, not configured
