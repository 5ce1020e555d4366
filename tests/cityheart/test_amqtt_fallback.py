"""Without mosquitto, the city still runs on the embedded amqtt broker (MQTT 3.1.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityheart.runtime.servers import free_port
from cityheart.runtime.up import city_stack
from cityheart.simulate import run_simulator
from settings.config import Settings
from tests.support import FeedRecorder, write_config

pytestmark = pytest.mark.timeout(180)


def test_readings_flow_through_amqtt_to_the_feed(settings: Settings, tmp_path: Path) -> None:
    amqtt = settings.model_copy(update={
        "mqtt": settings.mqtt.model_copy(update={
            "url": f"mqtt://127.0.0.1:{free_port()}", "embedded": True,
            "embedded_broker": "amqtt", "protocol": "3.1.1",
        }),
        "flow": settings.flow.model_copy(update={"window_s": 1.0, "late_allowance_s": 0.3}),
    })
    config = write_config(amqtt, tmp_path / "config.yaml")
    with city_stack(amqtt, config_path=config, log_dir=tmp_path / "log",
                    components=("feed", "flow", "bridge")) as city, \
            FeedRecorder(city.feed_url, channels=["vitals"]) as feed:
        assert [s.kind for s in city.servers] == ["amqtt"]
        report = run_simulator(amqtt, devices=72, rate=300, count=600, scenario="calm")
        assert report.acknowledged == 600
        feed.wait_until(
            lambda messages: sum(m.get("count", 0) for m in messages if m["type"] == "vital")
            >= 600,
            timeout=60,
        )
