"""Several bridge processes sharing the MQTT subscription, against real mosquitto and Tansu.

What operators rely on when they run ``cityheart bridge --processes N``: every reading a device
got acknowledged reaches ``readings`` once, the members share the work, a member that crashes
loses nothing (mosquitto keeps its share in its session until it is back), and MQTT 3.1.1,
which has no shared subscriptions, is refused with the key to change.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from cityheart.bridge import with_processes
from connectors.bridge import Bridge
from connectors.kafka import tail_consumer
from connectors.mqtt import MqttPublisher
from models.errors import ConfigError
from models.reading_batch import readings_in
from models.readings import Reading
from models.timefmt import iso
from settings.config import RateLimitSettings, Settings
from settings.loader import load_mapping
from tests.support import shipped_config, wait_until, write_config

pytestmark = pytest.mark.timeout(180)

DEVICES = 40


def shared(settings: Settings, processes: int = 2) -> Settings:
    """``settings`` with ``processes`` bridge members and no per-device limit (devices here send
    their readings at once)."""
    mqtt = settings.mqtt.model_copy(update={
        "bridge_processes": processes,
        "bridge_group": f"g-{uuid.uuid4().hex[:8]}",
        "rate_limit": RateLimitSettings(enabled=False),
    })
    return settings.model_copy(update={"mqtt": mqtt})


def publish(settings: Settings, url: str, seqs: range,
            on_each: dict[int, Callable[[], None]] | None = None) -> MqttPublisher:
    """Publish one reading per seq (devices in turn) at QoS 1; ``on_each[seq]()`` runs first."""
    publisher = MqttPublisher(url, f"dev-{uuid.uuid4().hex[:8]}", keep_acked=True).connect()
    prefix = settings.mqtt.topic_prefix
    for seq in seqs:
        if on_each and seq in on_each:
            on_each[seq]()
        device = f"nz-{seq % DEVICES}"
        payload = orjson.dumps({"device_id": device, "kind": "noise", "value": 50.0,
                                "unit": "dBA", "ts": iso(time.time()), "seq": seq})
        publisher.publish(f"{prefix}/university/noise/{device}", payload)
    return publisher


def acked_keys(publisher: MqttPublisher) -> set[tuple[str, int]]:
    assert publisher.flush(60), "the broker acknowledged every reading"
    assert publisher.acked_log is not None
    return {_key(orjson.loads(payload)) for _, payload in publisher.acked_log}


def _key(record: dict) -> tuple[str, int]:
    return record["device_id"], record["seq"]


class ReadingsLog:
    """Everything in a ``readings`` topic, read from the beginning as it grows."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = tail_consumer(settings.kafka.bootstrap, [settings.kafka.topics.readings])
        self.values: list[bytes] = []

    def read_until(self, done, timeout: float) -> Counter:
        """Read until ``done(counts by (device, seq))`` or ``timeout``; returns the counts."""
        deadline = time.monotonic() + timeout
        while not done(self.counts()) and time.monotonic() < deadline:
            for message in self._consumer.consume(1000, 0.1):
                if message.error() is None:
                    self.values.append(message.value())
        return self.counts()

    def read_until_quiet(self, quiet_s: float, timeout: float) -> Counter:
        """Read until nothing new came for ``quiet_s`` seconds (or ``timeout``); the counts."""
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() - last_new < quiet_s and time.monotonic() < deadline:
            for message in self._consumer.consume(1000, 0.1):
                if message.error() is None:
                    self.values.append(message.value())
                    last_new = time.monotonic()
        return self.counts()

    @property
    def rewinds(self) -> int:
        """How often the reader found records missing and went back for them."""
        return self._consumer.guard.rewinds

    def counts(self) -> Counter:
        return Counter((r.device_id, r.seq) for value in self.values
                       for r in readings_in(value))

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def readings_log(settings: Settings) -> Iterator[ReadingsLog]:
    log = ReadingsLog(settings)
    yield log
    log.close()


def test_two_members_forward_every_reading_once_and_share_the_work(
    settings: Settings, mqtt_broker, readings_log: ReadingsLog
) -> None:
    settings = shared(settings)
    stop = threading.Event()
    members = [Bridge(settings, index=index) for index in (0, 1)]
    servers = [threading.Thread(target=m.serve, args=(stop,), daemon=True) for m in members]
    for member, server in zip(members, servers, strict=True):
        member.start()
        server.start()
    try:
        publisher = publish(settings, mqtt_broker.url, range(2000))
        published = acked_keys(publisher)
        publisher.close()
        counts = readings_log.read_until(lambda c: published <= set(c), 60)
    finally:
        stop.set()
        for member, server in zip(members, servers, strict=True):
            server.join(10)
            member.stop()
    forwarded = [member.stats.forwarded for member in members]
    acknowledged = [member.stats.acknowledged for member in members]
    assert set(counts) == published, (
        f"lost {len(published - set(counts))} readings; members forwarded {forwarded}, "
        f"Kafka acknowledged {acknowledged}; the reader went back for missing records "
        f"{readings_log.rewinds} times"
    )
    assert sum(forwarded) == len(published), f"each reading went to one member: {forwarded}"
    assert min(forwarded) >= len(published) // 4, f"both members took part: {forwarded}"
    counts = readings_log.read_until(lambda c: False, 1.0)  # anything late would show here
    assert max(counts.values()) == 1, "no reading reached Kafka twice"


def start_member(config: Path, log: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cityheart", "bridge", "--config", str(config), *extra],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
    )


def wait_for_log(log: Path, text: str, count: int = 1, timeout: float = 60.0) -> str:
    """The log's text once it holds ``text`` ``count`` times."""
    def holds() -> str | None:
        content = log.read_text(errors="replace")
        return content if content.count(text) >= count else None

    return wait_until(holds, timeout, lambda: (f"{count} x {text!r} in {log}:\n"
                                               f"{log.read_text(errors='replace')}"))


def stop_all(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_member_killed_mid_stream_loses_nothing(
    settings: Settings, mqtt_broker, readings_log: ReadingsLog, tmp_path: Path
) -> None:
    settings = shared(settings)
    config = write_config(settings, tmp_path / "config.yaml")
    logs = [tmp_path / f"member-{index}.log" for index in (0, 1)]
    members = [start_member(config, logs[i], "--index", str(i)) for i in (0, 1)]
    try:
        for log in logs:
            wait_for_log(log, "subscribed to $share/")

        def crash() -> None:  # no clean shutdown: in-flight readings stay unacknowledged
            members[1].send_signal(signal.SIGKILL)
            members[1].wait(10)

        publisher = publish(settings, mqtt_broker.url, range(3000), {1000: crash})
        published = acked_keys(publisher)
        publisher.close()
        assert len(published) == 3000

        # mosquitto 2.0 goes on handing every other message to the dead member's session (it
        # does not pass its share to the live one): those wait in the broker for its return
        held = published - set(readings_log.read_until_quiet(3.0, 60))
        if mqtt_broker.kind == "mosquitto":  # about half of the 2,000 sent after the crash
            assert len(held) >= 800, f"the dead member's share waits for it: {len(held)}"

        members[1] = start_member(config, logs[1], "--index", "1")
        counts = readings_log.read_until(lambda c: published <= set(c), 90)
        assert published - set(counts) == set(), f"lost {len(published - set(counts))}"

        # a reading the dead member forwarded but had not acknowledged comes again: the same
        # reading, so storage's key (device_id, kind, ts) keeps one
        first: dict[tuple[str, int], Reading] = {}
        for value in readings_log.values:
            for reading in readings_in(value):
                key = (reading.device_id, reading.seq)
                assert first.setdefault(key, reading) == reading
        for process in members:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(30) for process in members] == [0, 0]
    finally:
        stop_all(*members)


def test_the_parent_runs_the_members_and_stops_them_together(
    settings: Settings, mqtt_broker, readings_log: ReadingsLog, tmp_path: Path
) -> None:
    settings = shared(settings)
    config = write_config(settings, tmp_path / "config.yaml")
    log = tmp_path / "bridge.log"
    parent = start_member(config, log)  # mqtt.bridge_processes: 2 in the config
    try:
        content = wait_for_log(log, "subscribed to $share/", count=2)
        client_id = settings.mqtt.bridge_client_id
        assert f"bridge {client_id}-0 connected" in content
        assert f"bridge {client_id}-1 connected" in content
        pids = [int(pid) for pid in re.findall(r"started bridge member \d \(pid (\d+)\)", content)]
        assert len(pids) == 2

        publisher = publish(settings, mqtt_broker.url, range(200))
        published = acked_keys(publisher)
        publisher.close()
        counts = readings_log.read_until(lambda c: published <= set(c), 60)
        assert set(counts) == published

        os.kill(pids[1], signal.SIGKILL)  # one member dies: the parent stops the other, exits
        assert parent.wait(40) != 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids), "no member is left"
    finally:
        stop_all(parent)


def test_sigterm_stops_every_member_cleanly(settings: Settings, tmp_path: Path) -> None:
    config = write_config(shared(settings, processes=3), tmp_path / "config.yaml")
    log = tmp_path / "bridge.log"
    parent = start_member(config, log)
    try:
        wait_for_log(log, "subscribed to $share/", count=3)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(40) == 0, "every member stopped cleanly (exit code 0)"
    finally:
        stop_all(parent)


def test_mqtt_3_1_1_refuses_several_bridge_processes(base_settings: Settings) -> None:
    raw = shipped_config()
    raw["mqtt"].update({"protocol": "3.1.1", "bridge_processes": 2})
    with pytest.raises(ConfigError) as refused:
        load_mapping(raw, source="config.yaml", env={})
    assert refused.value.key == "mqtt.bridge_processes"
    assert "MQTT 5 shared subscription" in str(refused.value)

    v311 = base_settings.model_copy(update={
        "mqtt": base_settings.mqtt.model_copy(update={"protocol": "3.1.1"})})
    with pytest.raises(ConfigError) as refused:
        with_processes(v311, 2)  # cityheart bridge --processes 2
    assert refused.value.key == "mqtt.bridge_processes"
    assert with_processes(v311, 1).mqtt.bridge_processes == 1


@pytest.mark.services
def test_bench_measures_one_and_two_bridge_processes(
    base_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from lab.bench_bridge import run_bridge_bench

    assert run_bridge_bench(base_settings, processes=[1, 2], readings=3000, as_json=True) == 0
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    runs, summary = lines[:-1], lines[-1]
    assert [run["processes"] for run in runs] == [1, 2]
    assert all(run["readings"] == 3000 and run["readings_per_s"] > 0 for run in runs)
    assert all(run["cpu_s"]["bridges"] > 0 for run in runs), "the members' CPU is counted"
    assert summary["ratio"] == pytest.approx(runs[1]["readings_per_s"] / runs[0]["readings_per_s"])
