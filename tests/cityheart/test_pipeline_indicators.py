"""End to end: a pollution episode in one district raises its AQI and an AQI alert on the feed.

Real mosquitto, real Tansu, the bridge, the Bytewax flow and the feed as the child processes
`cityheart up` runs, the device simulator with its ``pollution-episode`` scenario (PM2.5 x14 in
industrial-east), and a real websocket client. Windows of 2 s, AQI averaging periods of 4-8 s
and an AQI rule of 4 s keep it short; the other districts must stay normal.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cityheart.runtime.up import city_stack
from cityheart.simulate import run_simulator
from settings.config import Settings
from settings.loader import dump, load_mapping
from tests.support import FeedRecorder, write_config

pytestmark = pytest.mark.timeout(240)

EPISODE = "industrial-east"
AQI_RULE = {"id": "aqi-test", "indicator": "aqi", "direction": "above", "warning": 151,
            "critical": 201, "for_s": 4, "hysteresis": 10, "scope": "districts"}


@pytest.fixture
def episode_settings(settings: Settings) -> Settings:
    """Short windows, short AQI periods and a short AQI rule (the shipped rules otherwise)."""
    data = dump(settings)
    data["flow"].update(window_s=2.0, late_allowance_s=0.5)
    indicators = data["indicators"]
    indicators["aqi"].update(periods_s={"1h": 4, "8h": 8, "24h": 8}, bucket_s=2)
    indicators["rules"] = [AQI_RULE] + [r for r in indicators["rules"] if r["indicator"] != "aqi"]
    return load_mapping(data, env={})


def aqi_level(message: dict) -> int:
    return int(message["details"]["level_number"])


def test_a_pollution_episode_raises_one_districts_aqi_and_alert_while_others_stay_normal(
    episode_settings: Settings, tmp_path: Path
) -> None:
    settings = episode_settings
    config = write_config(settings, tmp_path / "config.yaml")
    with city_stack(settings, config_path=config, log_dir=tmp_path / "log",
                    components=("feed", "flow", "bridge")) as city, \
            FeedRecorder(city.feed_url) as feed:
        stop = threading.Event()
        simulator = threading.Thread(
            target=run_simulator,
            args=(settings,),
            kwargs={"devices": 96, "rate": 200.0, "scenario": "pollution-episode",
                    "duration_s": 150, "stop": stop},
            daemon=True,
        )
        simulator.start()
        try:
            alert = feed.wait_for(
                lambda m: m["type"] == "alert" and m["rule"] == "aqi-test"
                and m["severity"] == "critical", timeout=120,
            )
            feed.wait_until(
                lambda messages: {m["district"] for m in messages if m["type"] == "indicator"
                                  and m["indicator"] == "aqi"} >= set(settings.district_ids()),
                timeout=30,
            )
        finally:
            stop.set()
            simulator.join(20)
    assert (alert["district"], alert["kind"], alert["stat"]) == (EPISODE, "aqi", "value")
    assert alert["value"] >= alert["threshold"] == 201 and alert["seq"] > 0
    fired = [m for m in feed.messages if m["type"] == "alert" and m["rule"] == "aqi-test"]
    severities = [m["severity"] for m in fired]
    assert len(severities) == len(set(severities)), f"one alert per severity: {severities}"
    aqi = [m for m in feed.messages if m["type"] == "indicator" and m["indicator"] == "aqi"]
    assert max(aqi_level(m) for m in aqi if m["district"] == EPISODE) >= 5, "heavily polluted"
    others = [m for m in aqi if m["district"] not in (EPISODE, "city")]
    assert others and max(aqi_level(m) for m in others) <= 2, "the other districts stay normal"
    assert all(m["unit"] == "AQI" and m["details"]["standard"] == "hj633" for m in aqi)
    stray = [m for m in feed.messages if m["type"] == "alert" and m["district"] != EPISODE]
    assert not stray, f"alerts outside the episode's district: {stray[:3]}"
