"""Gateways' SenML packs through the bridge, against real mosquitto and real Tansu.

What a gateway's operator relies on: a pack's good records reach Kafka as readings, each bad
record reaches the dead-letter topic with its reason and its index in the pack while the rest
goes on, and the pack's MQTT message is acknowledged only once Kafka has every record of it, so
a bridge crash loses nothing the broker accepted.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from pathlib import Path

import orjson
import pytest

from cityheart.runtime.readiness import ReadinessListener
from connectors.bridge import Bridge
from models.vitals.devices import decode_rejection
from settings.config import RateLimitSettings, Settings
from tests.connectors.test_bridge import Device, start_bridge_process
from tests.connectors.test_bridge_scale import shared
from tests.support import consume_all, serving_bridge, wait_until, write_config
from tests.support.kafka import consume_readings, consume_until, readings_of

pytestmark = pytest.mark.timeout(120)


def test_a_pack_s_bad_records_are_dead_lettered_by_index_and_the_rest_flow(
    settings: Settings, mqtt_broker
) -> None:
    now = time.time()
    pack = [
        {"bn": "old-town/pm25/", "bt": now - 30, "bu": "ug/m3", "n": "pm-1", "v": 12.0},
        {"n": "pm-2", "u": "mg/m3", "v": 0.02, "t": 10},
        {"n": "pm-3", "v": 5000.0},                                    # 2: out of range
        {"n": "pm-4", "u": "grains", "v": 1.0},                        # 3: unknown unit
        {"bn": "harbour/noise/", "n": "nz-1/extra", "u": "dBA", "v": 50},  # 4: bad name
        {"n": "nz-1", "u": "dBA", "vs": "loud"},                       # 5: not a number
        {"n": "nz-1", "u": "dBA", "v": 55, "t": -5},
    ]
    topic = f"{settings.mqtt.topic_prefix}/gateway/gw-1"
    device = Device(mqtt_broker.url, "gw-1")
    with serving_bridge(settings) as bridge:
        try:
            device.publish(topic, orjson.dumps(pack))
            device.wait_acked(1)
        finally:
            device.close()
        # acknowledged (to the broker) once Kafka confirmed the batch holding its 3 readings,
        # its 4 dead letters and the out-of-range record's rejection
        wait_until(lambda: bridge.stats.acknowledged == 1, 30, "the pack's acknowledgement")
        assert bridge.stats.packs == 1
        assert bridge._producer.delivered == bridge.stats.batches + 4 + 1

    kafka, topics = settings.kafka.bootstrap, settings.kafka.topics
    readings = consume_readings(kafka, topics.readings, 3)
    assert [(r.device_id, r.district, r.kind) for r in readings] == [
        ("pm-1", "old-town", "pm25"), ("pm-2", "old-town", "pm25"), ("nz-1", "harbour", "noise")]
    assert readings[1].value == pytest.approx(20.0) and readings[1].unit == "ug/m3"
    assert [r.ts for r in readings] == pytest.approx([now - 30, now - 20, now - 35])

    dead = consume_all(kafka, topics.dead_letter, 4)
    letters = {int(dict(m.headers())["pack_index"]): m for m in dead}
    assert {i: dict(m.headers())["reason"].decode() for i, m in letters.items()} == {
        2: "out_of_range", 3: "unknown_unit", 4: "bad_name", 5: "wrong_type"}
    for message in dead:
        headers = dict(message.headers())
        assert headers["mqtt_topic"].decode() == topic and headers["source"] == b"bridge"
    assert orjson.loads(letters[3].value()) == {
        "n": "old-town/pm25/pm-4", "u": "grains", "v": 1.0, "t": pytest.approx(now - 30)}

    (rejected,) = consume_all(kafka, topics.rejected, 1)
    rejection = decode_rejection(rejected.value())
    assert rejection is not None and rejected.key() == b"pm-3"
    assert (rejection.district, rejection.kind, rejection.device_id) == ("old-town", "pm25", "pm-3")


def test_a_pack_refused_whole_is_one_dead_letter_and_is_acknowledged(
    settings: Settings, mqtt_broker
) -> None:
    topic = f"{settings.mqtt.topic_prefix}/gateway/gw-2"
    bad = orjson.dumps([{"bn": "old-town/pm25/pm-1", "bver": 11, "u": "ug/m3", "v": 1}])
    device = Device(mqtt_broker.url, "gw-2")
    with serving_bridge(settings):
        try:
            device.publish(topic, bad)
            device.wait_acked(1)
        finally:
            device.close()
    (letter,) = consume_all(settings.kafka.bootstrap, settings.kafka.topics.dead_letter, 1)
    headers = dict(letter.headers())
    assert headers["reason"] == b"unsupported_version" and "pack_index" not in headers
    assert letter.value() == bad


def test_bridge_crash_loses_no_record_of_a_pack_the_broker_accepted(
    settings: Settings, mqtt_broker, tmp_path: Path
) -> None:
    unlimited = settings.mqtt.model_copy(update={"rate_limit": RateLimitSettings(enabled=False)})
    settings = settings.model_copy(update={"mqtt": unlimited})
    config = write_config(settings, tmp_path / "config.yaml")
    log = tmp_path / "bridge.log"
    ready = ReadinessListener(Path(tempfile.mkdtemp(prefix="ch-")) / "bridge.notify")
    process = start_bridge_process(config, log, ready)
    ready.wait_ready(timeout=20, process=process)
    device = Device(mqtt_broker.url, "gw-crash")
    topic = f"{settings.mqtt.topic_prefix}/gateway/gw-crash"
    packs, size = 300, 20

    def publish(number: int) -> None:
        records = [{"n": f"d-{number * size + i}", "v": 50.0} for i in range(size)]
        records[0].update({"bn": "university/noise/", "bu": "dBA"})
        device.publish(topic, orjson.dumps(records), seq=number)

    try:
        # READY=1 comes once the bridge asked for its subscription: pack 0 reaching Kafka shows
        # the broker holds it, so the session keeps what comes while the bridge is down
        publish(0)
        consume_readings(settings.kafka.bootstrap, settings.kafka.topics.readings, size)
        for number in range(1, packs):
            if number == 100:
                process.send_signal(signal.SIGKILL)  # a crash: no clean shutdown
                process.wait(10)
            if number == 200:
                process = start_bridge_process(config, log, ready)
            publish(number)
        device.wait_acked(packs)
        wanted = {f"d-{i}" for i in range(packs * size)}
        seen: set[str] = set()

        def done(messages: list) -> bool:
            seen.update(r.device_id for r in readings_of(messages))
            return wanted <= seen

        consume_until(settings.kafka.bootstrap, settings.kafka.topics.readings, done, 60)
        assert wanted - seen == set(), f"lost {len(wanted - seen)} records"
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        ready.close()
        device.close()
        if process.poll() is None:
            process.kill()
            process.wait(10)



def test_a_pack_s_records_count_against_their_own_device_s_rate_limit(
    settings: Settings, mqtt_broker
) -> None:
    strict = RateLimitSettings(per_device_per_s=0.001, burst=2)
    settings = settings.model_copy(
        update={"mqtt": settings.mqtt.model_copy(update={"rate_limit": strict})})
    records = [{"bn": "harbour/noise/", "bu": "dBA", "n": "nz-1", "v": 50}]
    records += [{"n": "nz-1", "v": 50, "t": -i} for i in range(1, 4)]
    records += [{"n": "nz-2", "v": 50}]  # another device: its own bucket
    device = Device(mqtt_broker.url, "gw-3")
    with serving_bridge(settings) as bridge:
        try:
            device.publish(f"{settings.mqtt.topic_prefix}/gateway/gw-3", orjson.dumps(records))
        finally:
            device.close()
        wait_until(lambda: bridge.stats.acknowledged == 1, 30, "the pack's acknowledgement")
    readings = consume_readings(settings.kafka.bootstrap, settings.kafka.topics.readings, 3)
    assert [r.device_id for r in readings] == ["nz-1", "nz-1", "nz-2"]
    dead = consume_all(settings.kafka.bootstrap, settings.kafka.topics.dead_letter, 2)
    assert {(dict(m.headers())["reason"], dict(m.headers())["pack_index"]) for m in dead} == {
        (b"rate_limited", b"2"), (b"rate_limited", b"3")}


def test_two_bridge_members_share_the_gateway_packs(settings: Settings, mqtt_broker) -> None:
    settings = shared(settings)
    stop = threading.Event()
    members = [Bridge(settings, index=index) for index in (0, 1)]
    servers = [threading.Thread(target=m.serve, args=(stop,), daemon=True) for m in members]
    for member, server in zip(members, servers, strict=True):
        member.start()
        server.start()
    device = Device(mqtt_broker.url, "gw-shared")
    try:
        for number in range(60):
            records = [{"bn": "university/noise/", "bu": "dBA", "n": f"d-{number}-0", "v": 50}]
            records += [{"n": f"d-{number}-{i}", "v": 50} for i in range(1, 10)]
            device.publish(f"{settings.mqtt.topic_prefix}/gateway/gw-shared",
                           orjson.dumps(records))
        wait_until(lambda: sum(m.stats.acknowledged for m in members) == 60, 60,
                   lambda: f"60 packs acknowledged, got {[m.stats for m in members]}")
    finally:
        device.close()
        stop.set()
        for member, server in zip(members, servers, strict=True):
            server.join(10)
            member.stop()
    packs = [member.stats.packs for member in members]
    assert sum(packs) == 60 and min(packs) > 0, f"each pack went to one member: {packs}"
    readings = consume_readings(settings.kafka.bootstrap, settings.kafka.topics.readings, 600)
    names = [r.device_id for r in readings]
    assert len(names) == len(set(names)) == 600
