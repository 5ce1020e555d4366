"""The simulator and the MQTT publisher against a real mosquitto.

What users rely on: ``cityheart simulate --count N`` puts exactly N valid readings on the broker
and exits 0; Ctrl-C/SIGTERM ends it cleanly with everything acknowledged; the publisher never
loses or overwrites a message however many it sends (flow control, message-id wrap-around) and
carries on through a broker restart.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cityheart.runtime.servers import (
    ChildProcess,
    _give_to_broker_user,
    free_port,
    mosquitto_config,
    spawn,
    wait_for_port,
)
from cityheart.simulate import run_simulator
from connectors.mqtt import MqttPublisher, new_client, parse_url
from models.errors import ConfigError, ConnectorError
from models.readings import ReadingParser
from settings.config import ScenarioEvent, Settings
from settings.params import pack_parser
from tests.support import write_config

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


class Subscriber:
    """A paho client subscribed at QoS 1, collecting (topic, payload) on a queue."""

    def __init__(self, url: str, pattern: str) -> None:
        host, port, _ = parse_url(url)
        self.messages: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self.received: list[tuple[str, bytes]] = []
        subscribed: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}",
                             protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.put(True)
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(pattern, qos=1)
        subscribed.get(timeout=10)

    def _on_message(self, client: Client, userdata: object, message: MQTTMessage) -> None:
        self.messages.put((message.topic, message.payload))

    def wait_for(self, predicate: Callable[[list[tuple[str, bytes]]], bool],
                 timeout: float = 30.0) -> list[tuple[str, bytes]]:
        """Collect messages until ``predicate(received)`` holds or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not predicate(self.received) and time.monotonic() < deadline:
            try:
                self.received.append(self.messages.get(timeout=0.1))
            except queue.Empty:
                pass
        return self.received

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(settings: Settings) -> Iterator[Subscriber]:
    sub = Subscriber(settings.mqtt.url, f"{settings.mqtt.topic_prefix}/#")
    yield sub
    sub.close()


def sentinel_topic(settings: Settings) -> str:
    return f"{settings.mqtt.topic_prefix}/zz-sentinel/end/end"


def drain_until_sentinel(settings: Settings, subscriber: Subscriber) -> list[tuple[str, bytes]]:
    """Everything the subscriber got before a sentinel published after the run was acked."""
    with MqttPublisher(settings.mqtt.url, f"sentinel-{uuid.uuid4().hex[:8]}") as marker:
        marker.publish(sentinel_topic(settings), b"end")
        assert marker.flush(10)
    received = subscriber.wait_for(lambda got: any(t == sentinel_topic(settings) for t, _ in got))
    assert received and received[-1][0] == sentinel_topic(settings), "sentinel never arrived"
    return received[:-1]


def assert_valid_readings(settings: Settings, messages: list[tuple[str, bytes]]) -> None:
    parser = ReadingParser(settings.kinds, settings.district_ids(),
                           topic_prefix=settings.mqtt.topic_prefix)
    seqs: dict[str, list[int]] = {}
    for topic, payload in messages:
        reading = parser.parse(payload, topic, time.time())
        seqs.setdefault(reading.device_id, []).append(reading.seq)
    for device_id, numbers in seqs.items():  # each device counts 0, 1, 2, ... without gaps
        assert sorted(numbers) == list(range(len(numbers))), device_id


# -- run_simulator -----------------------------------------------------------------------------


def test_simulator_publishes_exactly_count_valid_readings(
    settings: Settings, subscriber: Subscriber
) -> None:
    report = run_simulator(settings, rate=5000, count=700, scenario="calm")
    assert (report.published, report.acknowledged, report.stopped_by) == (700, 700, "count")
    assert report.elapsed_s > 0
    received = drain_until_sentinel(settings, subscriber)
    assert len(received) == 700
    assert_valid_readings(settings, received)
    devices = Counter(orjson.loads(p)["device_id"] for _, p in received)
    assert len(devices) == settings.simulator.devices  # round-robin reached every device


def test_simulator_paces_to_the_rate(settings: Settings) -> None:
    report = run_simulator(settings, rate=400, duration_s=1.5, scenario="calm")
    assert report.stopped_by == "duration"
    assert report.published == 600  # every reading due in 1.5 s at 400/s, on time or late
    assert report.acknowledged == 600
    assert report.elapsed_s == pytest.approx(1.5, abs=0.2)


def test_scenario_events_reach_the_broker(settings: Settings, subscriber: Subscriber) -> None:
    events = [
        ScenarioEvent(type="silent", district="riverside", kind="water_level"),
        ScenarioEvent(type="stuck", district="old-town", kind="noise"),
        ScenarioEvent(type="episode", district="harbour", kind="no2", factor=10),
    ]
    simulator = settings.simulator.model_copy(update={"scenarios": {"test": events}})
    settings = settings.model_copy(update={"simulator": simulator})
    report = run_simulator(settings, devices=72, rate=5000, count=710, scenario="test")
    assert report.acknowledged == 710  # 10 rounds of the 71 devices that speak
    values: dict[str, list[float]] = {}
    for _, payload in drain_until_sentinel(settings, subscriber):
        record = orjson.loads(payload)
        values.setdefault(record["device_id"], []).append(record["value"])
    assert "water_level-riverside-001" not in values
    assert len(values) == 71
    assert len(set(values["noise-old-town-001"])) == 1
    other_no2 = [v for device, vs in values.items() if device.startswith("no2-")
                 and device != "no2-harbour-001" for v in vs]
    assert statistics.mean(values["no2-harbour-001"]) > 4 * statistics.mean(other_no2)


def test_simulator_as_gateways_publishes_count_readings_in_senml_packs(
    settings: Settings, subscriber: Subscriber
) -> None:
    report = run_simulator(settings, rate=5000, count=700, scenario="calm", gateways=3,
                           pack_size=20)
    assert (report.published, report.acknowledged, report.stopped_by) == (700, 700, "count")
    received = drain_until_sentinel(settings, subscriber)
    assert len(received) == report.messages and report.messages <= 700 // 20 + 3 * 3
    prefix = settings.mqtt.topic_prefix
    assert {topic for topic, _ in received} == {f"{prefix}/gateway/gw-{g:03d}" for g in range(3)}
    packs = pack_parser(settings)
    readings = []
    for _, payload in received:
        result = packs.parse(payload, time.time())
        assert result.refused == [] and len(result.readings) <= 20
        readings += [reading for _, reading in result.readings]
    assert len(readings) == 700
    assert len({r.device_id for r in readings}) == settings.simulator.devices


def test_unknown_scenario_names_the_known_ones(base_settings: Settings) -> None:
    with pytest.raises(ConfigError) as caught:
        run_simulator(base_settings, scenario="earthquake", count=1)
    assert caught.value.key == "simulator.scenario"
    assert "'earthquake'" in str(caught.value) and "'demo'" in str(caught.value)


# -- the CLI -----------------------------------------------------------------------------------


def cli(settings: Settings, tmp_path: Path, mqtt_broker: SimpleNamespace,
        *args: str) -> subprocess.Popen:
    config = write_config(settings, tmp_path / "config.yaml")
    env = {**os.environ, "CITYHEART_MQTT_URL": mqtt_broker.url}
    argv = [sys.executable, "-m", "cityheart", "simulate", "--config", str(config), *args]
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_cli_simulate_count_exits_zero(settings: Settings, subscriber: Subscriber,
                                       tmp_path: Path, mqtt_broker: SimpleNamespace) -> None:
    process = cli(settings, tmp_path, mqtt_broker, "--count", "300", "--rate", "3000")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "300 readings published, 300 acknowledged" in stderr
    assert len(drain_until_sentinel(settings, subscriber)) == 300


def test_cli_simulate_stops_cleanly_on_sigterm(settings: Settings, subscriber: Subscriber,
                                               tmp_path: Path,
                                               mqtt_broker: SimpleNamespace) -> None:
    process = cli(settings, tmp_path, mqtt_broker, "--rate", "500")
    try:
        subscriber.wait_for(lambda got: len(got) >= 100)
        assert len(subscriber.received) >= 100
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "stopped (signal)" in stderr
    published = int(stderr.split(" readings published")[0].rsplit(" ", 1)[1])
    assert f"{published} readings published, {published} acknowledged" in stderr
    assert len(drain_until_sentinel(settings, subscriber)) == published


def test_cli_unknown_scenario_fails_with_the_key(settings: Settings, tmp_path: Path,
                                                 mqtt_broker: SimpleNamespace) -> None:
    process = cli(settings, tmp_path, mqtt_broker, "--scenario", "nope", "--count", "1")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "simulator.scenario" in stderr and "'nope'" in stderr


# -- MqttPublisher -----------------------------------------------------------------------------


def test_flow_control_never_exceeds_max_inflight(settings: Settings,
                                                 subscriber: Subscriber) -> None:
    topic = f"{settings.mqtt.topic_prefix}/flow/control/test"
    most = 0
    with MqttPublisher(settings.mqtt.url, f"flow-{uuid.uuid4().hex[:8]}", max_inflight=50,
                       keep_acked=True) as publisher:
        for number in range(3000):
            publisher.publish(topic, str(number).encode())
            most = max(most, publisher.in_flight)
        assert publisher.flush(30)
    assert most <= 50
    assert (publisher.published, publisher.acknowledged) == (3000, 3000)
    assert sorted(int(p) for _, p in publisher.acked_log) == list(range(3000))
    received = subscriber.wait_for(lambda got: len(got) >= 3000)
    assert sorted(int(p) for _, p in received) == list(range(3000))


def test_more_messages_than_message_ids_are_all_acknowledged(settings: Settings) -> None:
    # paho's message ids wrap at 65,535: without flow control a publisher overwrites its own
    topic = f"{settings.mqtt.topic_prefix}/wrap/around/test"
    acked: set[bytes] = set()
    total = 70_000
    with MqttPublisher(settings.mqtt.url, f"wrap-{uuid.uuid4().hex[:8]}",
                       on_acked=lambda t, p: acked.add(p)) as publisher:
        for number in range(total):
            publisher.publish(topic, b"%d" % number)
        assert publisher.flush(60)
    assert publisher.acknowledged == total
    assert len(acked) == total


def test_a_refused_publish_is_a_connector_error_naming_the_broker(settings: Settings) -> None:
    url = settings.mqtt.url
    with MqttPublisher(url, f"refused-{uuid.uuid4().hex[:8]}") as publisher:
        with pytest.raises(ConnectorError) as refused:  # paho: no wildcards in a publish topic
            publisher.publish(f"{settings.mqtt.topic_prefix}/#", b"x")
        assert publisher.in_flight == 0
    with pytest.raises(ConnectorError) as closed:
        publisher.publish(f"{settings.mqtt.topic_prefix}/after/close", b"x")
    assert (refused.value.address, closed.value.address) == (url, url)
    assert "cannot publish to" in refused.value.reason
    assert "the publisher is closed" in closed.value.reason


def mosquitto_on(port: int, workdir: Path, persistence_dir: Path | None = None) -> ChildProcess:
    """mosquitto on loopback ``port``, started directly: after a restart the old connections'
    TIME_WAIT sockets make servers.ensure_port_free refuse a port mosquitto can reuse."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_config(port, persistence_dir=persistence_dir))
    child = spawn("mosquitto", [binary, "-c", str(conf)], log_path=workdir / "broker.log")
    wait_for_port("127.0.0.1", port, 15, child.process)
    return child


@pytest.mark.services
def test_publisher_carries_on_through_a_broker_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    broker = mosquitto_on(port, tmp_path)
    publisher = MqttPublisher(url, "restart-test", max_inflight=100)
    try:
        publisher.connect()
        for number in range(500):
            publisher.publish("restart/test", b"%d" % number)
        assert publisher.flush(10)
        broker.stop()
        for number in range(500, 550):  # the broker is gone: paho keeps these to re-send
            assert publisher.publish("restart/test", b"%d" % number, timeout=5)
        broker = mosquitto_on(port, tmp_path)
        assert publisher.flush(30), f"{publisher.in_flight} never acknowledged"
        assert (publisher.acknowledged, publisher.connects) == (550, 2)
    finally:
        publisher.close()
        broker.stop()


def test_a_broker_crash_loses_nothing_it_acknowledged(tmp_path: Path) -> None:
    """mosquitto acknowledges a QoS 1 message before it saves it (every second); killed then,
    it forgets what it had queued for an offline persistent session. The publisher's resend
    window publishes those again after reconnecting, so the session gets every one."""
    port, saved = free_port(), tmp_path / "saved"
    _give_to_broker_user(saved)
    url = f"mqtt://127.0.0.1:{port}"
    broker = mosquitto_on(port, tmp_path, saved)
    bridge = new_client(url, "crash-bridge", persistent=True)
    received: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    bridge.on_message = lambda client, userdata, message: received.put(message.payload)
    bridge.start()
    bridge.subscribe("crash/#", qos=1)
    bridge.stop()  # away: the broker queues for its session
    broker.stop()  # a clean stop saves the session and its subscription
    broker = mosquitto_on(port, tmp_path, saved)
    publisher = MqttPublisher(url, "crash-device", persistent=True, resend_acked_s=5)
    try:
        publisher.connect()
        for number in range(300):
            publisher.publish("crash/device", b"%d" % number)
        assert publisher.flush(10)
        broker.process.send_signal(signal.SIGKILL)  # before its next save
        broker.process.wait()
        broker = mosquitto_on(port, tmp_path, saved)
        assert publisher.flush(30), f"{publisher.in_flight} never acknowledged"
        bridge.start()
        got: set[bytes] = set()
        deadline = time.monotonic() + 20
        while len(got) < 300 and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                got.add(received.get(timeout=0.2))
        assert len(got) == 300, f"{300 - len(got)} of 300 acknowledged messages lost"
        assert publisher.acknowledged == 300
    finally:
        bridge.stop()
        publisher.close()
        broker.stop()


def test_unreachable_broker_is_a_connector_error_naming_the_url() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectorError) as caught:
        MqttPublisher(url, "nobody-home", connect_timeout=2).connect()
    assert url in str(caught.value)
    with pytest.raises(ConnectorError, match="'?http://127.0.0.1:1883'?"):
        MqttPublisher("http://127.0.0.1:1883", "wrong-scheme")
