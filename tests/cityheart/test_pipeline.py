"""End to end: devices publish over MQTT; operators see vital signs and alerts on the feed.

Real mosquitto, real Tansu, the bridge, the Bytewax flow and the feed as the same child processes
`cityheart up` runs, a real websocket client.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest

from cityheart.runtime.up import city_stack
from cityheart.simulate import run_simulator
from connectors.mqtt import MqttPublisher
from models.timefmt import iso
from settings.config import Settings
from tests.support import FeedRecorder, write_config

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """Short windows so the test sees several close within seconds."""
    return settings.model_copy(
        update={"flow": settings.flow.model_copy(update={"window_s": 2.0,
                                                          "late_allowance_s": 0.5})}
    )


def test_breach_over_mqtt_reaches_the_feed_as_an_alert_and_every_district_has_vitals(
    fast_settings: Settings, tmp_path: Path
) -> None:
    settings = fast_settings
    config = write_config(settings, tmp_path / "config.yaml")
    with city_stack(settings, config_path=config, log_dir=tmp_path / "log",
                    components=("feed", "flow", "bridge")) as city, \
            FeedRecorder(city.feed_url) as feed:
        stop = threading.Event()
        simulator = threading.Thread(
            target=run_simulator,
            args=(settings,),
            kwargs={"devices": 72, "rate": 150.0, "scenario": "calm", "duration_s": 120,
                    "stop": stop},
            daemon=True,
        )
        simulator.start()
        try:
            every = set(settings.district_ids())
            feed.wait_until(
                lambda messages: {m["district"] for m in messages if m["type"] == "vital"}
                >= every,
                timeout=60,
            )
            assert not [m for m in feed.messages if m["type"] == "alert"], (
                "a calm city raises no alert"
            )
            prefix = settings.mqtt.topic_prefix
            with MqttPublisher(city.mqtt_url, "test-breach") as device:
                for n in range(5):
                    payload = orjson.dumps({"device_id": f"probe-{n}", "kind": "pm25",
                                            "value": 480.0, "unit": "ug/m3",
                                            "ts": iso(time.time())})
                    device.publish(f"{prefix}/harbour/pm25/probe-{n}", payload)
                device.flush(10)
            alert = feed.wait_for(
                lambda m: m["type"] == "alert" and m["district"] == "harbour"
                and m["kind"] == "pm25" and m["severity"] == "critical",
                timeout=30,
            )
        finally:
            stop.set()
            simulator.join(20)
    assert alert["threshold"] == settings.kinds["pm25"].thresholds.critical
    assert alert["value"] >= alert["threshold"]
    assert alert["rule"] and alert["id"] and alert["seq"] > 0
    vitals = [m for m in feed.messages if m["type"] == "vital"]
    assert all(v["count"] >= 1 and v["min"] <= v["mean"] <= v["max"] for v in vitals)
    others = [m for m in feed.messages if m["type"] == "alert" and m["district"] != "harbour"]
    assert not others, "the other districts stay normal"
