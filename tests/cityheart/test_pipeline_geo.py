"""End to end, geography: devices publish over MQTT with a position and no district; the flow
places their readings (real mosquitto, Tansu, the bridge and the Bytewax flow as `cityheart up`
runs them, a real websocket client). Riverton: harbour is lon 11.64-11.67, lat 48.13-48.15,
old-town lon 11.55-11.58."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from cityheart.devices import save_registry
from cityheart.runtime.up import city_stack
from connectors.mqtt import MqttPublisher
from models.devices import Device, DeviceRegistry
from models.timefmt import iso
from settings.config import Settings
from tests.support import FeedRecorder, consume_all, write_config

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]


def test_readings_with_only_a_position_land_in_their_district(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"flow": settings.flow.model_copy(
        update={"window_s": 2.0, "late_allowance_s": 0.5})})
    config = write_config(settings, tmp_path / "config.yaml")
    # a fixed device registered in old-town that never says where it is
    save_registry(tmp_path / settings.mqtt.device_auth.registry, DeviceRegistry(devices=(
        Device(id="pm-fixed", district="old-town", kind="pm25", password_hash="$7$101$c2E=$aA==",
               added_at="2026-11-26T00:00:00Z", lat=48.14, lon=11.565),
    )))
    prefix = settings.mqtt.topic_prefix
    with city_stack(settings, config_path=config, log_dir=tmp_path / "log",
                    components=("feed", "flow", "bridge")) as city, \
            FeedRecorder(city.feed_url) as feed, \
            MqttPublisher(city.mqtt_url, "test-geo") as device:

        def send(device_id: str, value: float, **where: float) -> None:
            payload = {"device_id": device_id, "kind": "pm25", "value": value,
                       "unit": "ug/m3", "ts": iso(time.time()), **where}
            device.publish(f"{prefix}/-/pm25/{device_id}", orjson.dumps(payload))

        send("bus-1", 480.0, lat=48.14, lon=11.655)       # harbour, by its own position
        send("drone-1", 480.0, lat=48.354, lon=11.786)    # outside the city
        send("pm-fixed", 480.0)                           # old-town, by its registered place
        device.flush(10)
        feed.wait_until(
            lambda messages: {m["district"] for m in messages
                              if m["type"] == "alert" and m["kind"] == "pm25"}
            >= {"harbour", "old-town"},
            timeout=90,
        )
        dead = consume_all(settings.kafka.bootstrap, settings.kafka.topics.dead_letter, 1)
    districts = {m["district"] for m in feed.messages if m["type"] == "alert"}
    assert districts == {"harbour", "old-town"}, "nothing raised anywhere else"
    [letter] = dead
    headers = dict(letter.headers())
    assert headers["reason"] == b"outside_city" and headers["source"] == b"flow"
    assert orjson.loads(letter.value())["device_id"] == "drone-1"
