"""``cityheart bench --flow-processes 1,2``: how the flow's throughput grows with processes.

It starts an embedded Tansu on a free port, fills a ``readings`` topic of ``partitions`` partitions
(2 by default) with a backlog of valid readings (every district and kind, devices spread over the
partitions, event time in the past; each device at a fixed point inside its district, which its
readings carry as ``lat``/``lon`` as the simulator's do), then runs ``cityheart flow --processes P``
(a Bytewax cluster of P processes on loopback, one worker each) over it for each P, every run
writing to topics of its own. Sustained throughput is the flow's catch-up rate: the readings counted
in the window records it emitted up to the one that brings the count to 95 % of the backlog, over
the time from the flow's start to that record's ``emitted_at`` (so start-up, about 2 s, is included:
use a backlog that takes far longer; the last windows' wall-clock close is left out)::

    results = run_scale_bench(settings, processes=[1, 2], readings=200_000)

With ``as_json`` each run and then the summary (with ``ratio``, the last run's rate over the
first's) are printed as one JSON object a line.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import yaml

from cityheart.runtime.servers import running, spawn, start_kafka_broker
from cityheart.simulation import point_inside
from connectors.batcher import pack
from connectors.kafka import ReliableProducer, create_topics, tail_consumer
from models.errors import ConnectorError
from models.readings import Reading
from models.timefmt import from_iso
from settings.config import KafkaTopics, Settings
from settings.loader import dump

__all__ = ["ScaleResult", "run_scale_bench"]

log = logging.getLogger(__name__)

DEVICES = 192
EVERY_S = 5.0
MEASURED_SHARE = 0.95
RUN_TIMEOUT_S = 300.0


@dataclass
class ScaleResult:
    """What the flow achieved with ``processes`` processes."""

    processes: int
    readings: int
    readings_per_s: float
    seconds: float


def run_scale_bench(
    settings: Settings,
    *,
    processes: Sequence[int] = (1, 2),
    readings: int = 200_000,
    partitions: int = 2,
    as_json: bool = False,
    devices: int = DEVICES,
    every_s: float = EVERY_S,
) -> int:
    """Measure the flow with each number of ``processes``; print the results and the ratio.
    The backlog's ``devices`` devices each read every ``every_s`` seconds (of event time): few
    readings per window stress window closing, many the per-reading path."""
    with tempfile.TemporaryDirectory(prefix="cityheart-bench-scale-") as tmp, running(
        start_kafka_broker(log_path=Path(tmp) / "tansu.log")
    ) as kafka:
        bootstrap = kafka.bootstrap
        topic = "bench.readings"
        create_topics(bootstrap, [topic], partitions)
        produced = _backlog(settings, bootstrap, topic, readings, partitions, devices, every_s)
        results = []
        for count in processes:
            result = _measure(settings, bootstrap, topic, produced, count, Path(tmp))
            results.append(result)
            _print(asdict(result), as_json, f"{count} process(es): {result.readings_per_s:,.0f} "
                   f"readings/s ({result.readings:,} readings in {result.seconds:.1f} s)")
        ratio = results[-1].readings_per_s / results[0].readings_per_s if results else None
        summary = {"summary": True, "partitions": partitions, "cores": os.cpu_count(),
                   "ratio": ratio, "processes": list(processes)}
        _print(summary, as_json, f"ratio {processes[-1]} vs {processes[0]} process(es): "
               f"{ratio:.2f} on {os.cpu_count()} cores, {partitions} partitions")
    return 0


def _print(record: dict, as_json: bool, text: str) -> None:
    print(orjson.dumps(record).decode() if as_json else text, flush=True)  # noqa: T201


def _backlog(settings: Settings, bootstrap: str, topic: str, count: int, partitions: int,
             devices: int, every_s: float) -> int:
    """Produce ``count`` readings ending an hour ago, in the bridge's batches; how many."""
    districts = settings.district_ids()
    kinds = list(settings.kinds)
    steps = max(1, count // devices)
    start = (time.time() // 60) * 60 - 3600 - steps * every_s
    producer = ReliableProducer(bootstrap, linger_ms=50)
    areas = {d.id: d.geometry for d in settings.geography.districts}
    places = [point_inside(areas[districts[n % len(districts)]], random.Random(f"bench-{n}"))
              for n in range(devices)]

    def readings() -> Iterator[Reading]:
        for step in range(steps):
            for n in range(devices):
                district, kind_id = districts[n % len(districts)], kinds[(n // 2) % len(kinds)]
                kind = settings.kinds[kind_id]
                low, high = kind.range
                lat, lon = places[n]
                yield Reading(f"{kind_id}-{n}", district, kind_id, low + 0.3 * (high - low),
                              kind.unit, start + step * every_s + (n % 10) * every_s / 50, None,
                              lat, lon)

    produced = 0
    for batch in pack(readings(), partitions):
        producer.produce(topic, batch.value, partition=batch.partition)
        produced += batch.count
        producer.poll(0)
    producer.flush(120)
    log.info("backlog: %d readings in %r", produced, topic)
    return produced


def _measure(settings: Settings, bootstrap: str, readings_topic: str, expected: int,
             processes: int, tmp: Path) -> ScaleResult:
    prefix = f"bench{processes}"
    topics = KafkaTopics(
        readings=readings_topic, dead_letter=f"{prefix}.readings.dlq", vitals=f"{prefix}.vitals",
        alerts=f"{prefix}.alerts", incidents=f"{prefix}.incidents",
        commands=f"{prefix}.commands", command_results=f"{prefix}.command-results",
        dispatch_prefix=f"{prefix}.dispatch.",
    )
    data = dump(settings.model_copy(update={
        "kafka": settings.kafka.model_copy(
            update={"bootstrap": bootstrap, "embedded": False, "topics": topics}),
        "flow": settings.flow.model_copy(
            update={"processes": processes, "workers": 1, "recovery_dir": None}),
    }))
    if "metrics" in data:
        data["metrics"]["enabled"] = False  # no /metrics ports to clash with a running city
    config = tmp / f"config-{processes}.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    began = time.time()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHEART_")}
    argv = [sys.executable, "-m", "cityheart", "flow", "--config", str(config)]
    flow = spawn(f"flow x{processes}", argv, env=env, log_path=tmp / f"flow-{processes}.log")
    try:
        create_topics(bootstrap, [topics.vitals], settings.kafka.partitions)
        return _rate(bootstrap, topics.vitals, expected, processes, lambda: flow.running, began)
    finally:
        flow.stop(signal.SIGTERM, timeout=60)


def _rate(bootstrap: str, topic: str, expected: int, processes: int,
          alive: Callable[[], bool], began: float) -> ScaleResult:
    """Read window records until MEASURED_SHARE of ``expected`` readings are counted."""
    consumer = tail_consumer(bootstrap, [topic])
    deadline = time.monotonic() + RUN_TIMEOUT_S
    total = 0
    last = began
    try:
        while total < MEASURED_SHARE * expected:
            if time.monotonic() > deadline or not alive():
                msg = f"the flow counted {total} of {expected} readings (running: {alive()})"
                raise ConnectorError("flow", bootstrap, msg)
            for message in consumer.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                vital = orjson.loads(message.value())
                if "record" in vital:
                    continue
                total += vital["count"] + vital["late"]
                last = max(last, from_iso(vital["emitted_at"]))
    finally:
        consumer.close()
    seconds = max(last - began, 1e-3)
    return ScaleResult(processes, total, round(total / seconds), round(seconds, 1))
