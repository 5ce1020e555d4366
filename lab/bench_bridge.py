"""``cityheart bench --bridge-processes 1,2``: how the bridge's throughput grows with processes.

It starts an embedded mosquitto and Tansu on free ports, then for each process count P runs
``cityheart bridge --processes P`` (the members share an MQTT 5 shared subscription) in three
phases, each run on topics and sessions of its own:

1. the bridge starts, its members' persistent sessions subscribe, and it stops (SIGTERM);
2. a fast publisher (:class:`connectors.mqtt.MqttPublisher`, QoS 1, 1,000 in flight, 1,000
   devices) publishes a backlog of ``readings`` valid readings, which mosquitto queues in the
   members' sessions (in turn, so each holds its share);
3. the bridge starts again and forwards the backlog to Kafka, while one consumer reads the
   ``readings`` topic as the flow would (in large fetches); the run ends when it has read all.

Sustained throughput is the rate at which the members handed readings to Kafka (the batch records'
create times, which librdkafka stamps at ``produce``) between 5 % and 95 % of the backlog, so
start-up and the tail are left out. The publisher is idle by then: the figure is what
mosquitto -> bridge(s) -> Tansu sustain on this machine, with devices elsewhere as in
production. CPU seconds of the members, mosquitto and Tansu during phase 3 say what limits it::

    run_bridge_bench(settings, processes=[1, 2], readings=200_000)

With ``as_json`` each run and then the summary (``ratio``: the last run's rate over the first's)
are printed as one JSON object a line.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import yaml

from cityheart.runtime.readiness import ReadinessListener
from cityheart.runtime.servers import (
    ChildProcess,
    EmbeddedServer,
    running,
    spawn,
    start_kafka_broker,
    start_mqtt_broker,
)
from connectors.kafka import create_topics, tail_consumer
from connectors.mqtt import MqttPublisher
from models.errors import ConfigError, ConnectorError
from models.reading_batch import readings_in
from models.timefmt import iso
from settings.config import KafkaTopics, RateLimitSettings, Settings
from settings.loader import dump

__all__ = ["BridgeScaleResult", "run_bridge_bench"]

log = logging.getLogger(__name__)

DEVICES = 1000
SHARE = (0.05, 0.95)
RUN_TIMEOUT_S = 300.0
READER = {"fetch.wait.max.ms": 200, "fetch.min.bytes": 256 * 1024}
"""The counting consumer's fetches: few and large (the flow reads readings as they come too)."""


@dataclass
class BridgeScaleResult:
    """What ``processes`` bridge processes achieved over a backlog of ``readings``."""

    processes: int
    readings: int
    readings_per_s: float
    seconds: float
    published_per_s: float
    cpu_s: dict[str, float]


def run_bridge_bench(
    settings: Settings,
    *,
    processes: Sequence[int] = (1, 2),
    readings: int = 200_000,
    as_json: bool = False,
) -> int:
    """Measure the bridge with each number of ``processes``; print the results and the ratio."""
    if not processes or min(processes) < 1:
        msg = f"give one or more bridge process counts of at least 1, got {list(processes)}"
        raise ConfigError("--bridge-processes", "mqtt.bridge_processes", msg)
    with tempfile.TemporaryDirectory(prefix="cityheart-bench-bridge-") as tmp, running(
        start_mqtt_broker(prefer="mosquitto", log_path=Path(tmp) / "mosquitto.log")
    ) as mqtt, running(start_kafka_broker(log_path=Path(tmp) / "tansu.log")) as kafka:
        results = []
        for count in processes:
            run = _Run(settings, mqtt, kafka, count, Path(tmp))
            result = run.measure(readings)
            results.append(result)
            _print(asdict(result), as_json,
                   f"{count} bridge process(es): {result.readings_per_s:,.0f} readings/s "
                   f"(the middle 90 % of {result.readings:,} readings in {result.seconds:.1f} "
                   f"s; published at {result.published_per_s:,.0f}/s before); CPU s: "
                   f"{result.cpu_s}")
        ratio = results[-1].readings_per_s / results[0].readings_per_s if results else None
        summary = {"summary": True, "cores": os.cpu_count(), "ratio": ratio,
                   "processes": list(processes), "mqtt": mqtt.kind}
        _print(summary, as_json, f"ratio {processes[-1]} vs {processes[0]} bridge process(es): "
               f"{ratio:.2f} on {os.cpu_count()} cores")
    return 0


def _print(record: dict, as_json: bool, text: str) -> None:
    print(orjson.dumps(record).decode() if as_json else text, flush=True)  # noqa: T201


class _Run:
    """One measured run: P bridge processes on topics and sessions of their own."""

    def __init__(self, settings: Settings, mqtt: EmbeddedServer, kafka: EmbeddedServer,
                 processes: int, tmp: Path) -> None:
        prefix = f"benchb{processes}"
        self.processes = processes
        self.mqtt = mqtt
        self.kafka = kafka
        self.topics = KafkaTopics(
            readings=f"{prefix}.readings", dead_letter=f"{prefix}.readings.dlq",
            vitals=f"{prefix}.vitals", alerts=f"{prefix}.alerts",
            incidents=f"{prefix}.incidents", commands=f"{prefix}.commands",
            command_results=f"{prefix}.command-results", dispatch_prefix=f"{prefix}.dispatch.",
        )
        # the limiter runs (its cost counts) but never throttles a device's queued backlog
        unlimited = RateLimitSettings(per_device_per_s=1e9, burst=10**9)
        self.settings = settings.model_copy(update={
            "mqtt": settings.mqtt.model_copy(update={
                "url": mqtt.url, "embedded": False, "protocol": "5", "topic_prefix": prefix,
                "bridge_client_id": f"{prefix}-bridge", "bridge_group": prefix,
                "bridge_processes": processes, "rate_limit": unlimited, "username": None,
                "password": None,
            }),
            "kafka": settings.kafka.model_copy(
                update={"bootstrap": kafka.bootstrap, "embedded": False, "topics": self.topics}),
        })
        data = dump(self.settings)
        if "metrics" in data:
            data["metrics"]["enabled"] = False  # no /metrics ports to clash with a running city
        self.config = tmp / f"bridge-{processes}.yaml"
        self.config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        self.log_path = tmp / f"bridge-{processes}.log"

    def measure(self, readings: int) -> BridgeScaleResult:
        kafka = self.settings.kafka
        create_topics(kafka.bootstrap, [self.topics.readings, self.topics.dead_letter],
                      kafka.partitions)
        self._start().stop(signal.SIGTERM, timeout=30)  # the sessions subscribe, then go away
        published_per_s = self._publish(readings)
        cpu_before = {"mosquitto": _cpu(self.mqtt), "tansu": _cpu(self.kafka),
                      "reader": _cpu_of(os.getpid())}
        busy_before = _machine_busy()
        bridge = self._start()
        try:
            times = self._wait_for(readings, bridge)
            cpu = {"bridges": round(sum(_cpu_of(pid) for pid in self._member_pids(bridge)), 1)}
            cpu["mosquitto"] = round(_cpu(self.mqtt) - cpu_before["mosquitto"], 1)
            cpu["tansu"] = round(_cpu(self.kafka) - cpu_before["tansu"], 1)
            cpu["reader"] = round(_cpu_of(os.getpid()) - cpu_before["reader"], 1)
            busy, wall = (now - then for now, then in zip(_machine_busy(), busy_before,
                                                          strict=True))
            cpu["machine_busy_of_wall"] = round(busy / wall, 2)  # cores busy, all processes
        finally:
            bridge.stop(signal.SIGTERM, timeout=30)
        rate, seconds = _rate(times)
        return BridgeScaleResult(self.processes, readings, round(rate), round(seconds, 1),
                                 round(published_per_s), cpu)

    def _start(self) -> ChildProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHEART_")}
        argv = [sys.executable, "-m", "cityheart", "bridge", "--config", str(self.config)]
        ready = ReadinessListener(Path(tempfile.mkdtemp(prefix="cityheart-")) / "bridge.notify")
        child = spawn(f"bridge x{self.processes}", argv, env={**env, **ready.environ()},
                      log_path=self.log_path)
        try:  # each member says READY=1 once its session subscribed
            ready.wait_ready(after=self.processes - 1, timeout=60, process=child.process)
        except ConnectorError:
            child.stop()
            raise
        finally:
            ready.close()
            shutil.rmtree(ready.path.parent, ignore_errors=True)
        return child

    def _member_pids(self, bridge: ChildProcess) -> list[int]:
        if self.processes == 1:
            return [bridge.process.pid]
        text = self.log_path.read_text()
        return [int(pid) for pid in re.findall(r"started bridge member \d+ \(pid (\d+)\)", text)
                ][-self.processes:]

    def _publish(self, readings: int) -> float:
        """Publish the backlog as fast as the broker acknowledges it; the rate."""
        kinds = [(kind_id, kind) for kind_id, kind in self.settings.kinds.items()]
        districts = self.settings.district_ids()
        prefix = self.settings.mqtt.topic_prefix
        began = time.monotonic()
        with MqttPublisher(self.mqtt.url, f"{prefix}-publisher") as publisher:
            for seq in range(readings):
                n = seq % DEVICES
                kind_id, kind = kinds[n % len(kinds)]
                district = districts[n % len(districts)]
                device = f"{kind_id}-{n}"
                low, high = kind.range
                payload = orjson.dumps({
                    "device_id": device, "kind": kind_id, "value": low + 0.3 * (high - low),
                    "unit": kind.unit, "ts": iso(time.time()), "seq": seq,
                })
                publisher.publish(f"{prefix}/{district}/{kind_id}/{device}", payload)
            if not publisher.flush(120):
                msg = f"{publisher.in_flight} readings unacknowledged after 120 s"
                raise ConnectorError("mqtt", self.mqtt.url, msg)
        rate = readings / (time.monotonic() - began)
        log.info("backlog: %d readings published at %.0f/s", readings, rate)
        return rate

    def _wait_for(self, readings: int, bridge: ChildProcess) -> list[float]:
        """Read the readings topic as the flow would until it holds ``readings`` readings; the
        create times of their records (epoch s), one per reading, sorted. ConnectorError if
        they do not all come in time."""
        bootstrap, topic = self.settings.kafka.bootstrap, self.topics.readings
        # Tansu's watermarks do not count records: read them, in large fetches
        consumer = tail_consumer(bootstrap, [topic], config=READER)
        times: list[float] = []
        deadline = time.monotonic() + RUN_TIMEOUT_S
        try:
            while len(times) < readings:
                if time.monotonic() > deadline or not bridge.running:
                    msg = (f"the bridge forwarded {len(times)} of {readings} readings "
                           f"(running: {bridge.running})")
                    raise ConnectorError("bridge", bootstrap, msg)
                for message in consumer.consume(10000, 0.5):
                    if message.error() is None:  # a batch: each reading at its create time
                        count = len(readings_in(message.value() or b""))
                        times.extend([message.timestamp()[1] / 1000] * count)
        finally:
            consumer.close()
        return sorted(times)


def _rate(times: list[float]) -> tuple[float, float]:
    """(records per second, seconds) between the SHARE quantiles of the create times."""
    first, last = (int(share * (len(times) - 1)) for share in SHARE)
    seconds = max(times[last] - times[first], 1e-3) if times else 1e-3
    return (last - first) / seconds, seconds


def _machine_busy() -> tuple[float, float]:
    """(CPU seconds all cores have been busy since boot, from /proc/stat; a wall clock)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / tick, time.monotonic()


def _cpu(server: EmbeddedServer) -> float:
    return _cpu_of(server.child.process.pid)


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
