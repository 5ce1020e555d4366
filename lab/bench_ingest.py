"""``cityheart bench --http 200000``: what HTTP ingest sustains, from POST to Kafka's confirmation.

It starts Tansu on a free port and ``cityheart ingest`` (a child process, as production runs it)
with one source key, then ``clients`` threads POST ``readings`` valid readings as JSON arrays of
``batch`` over kept-alive connections. A 202 comes only once Kafka confirmed every record, so
readings/s (accepted readings over the wall time from the first request to the last answer) is
the end-to-end figure of this way in. CPU seconds of the ingest process and of Tansu say what
limits it::

    run_ingest_bench(settings, readings=200_000, batch=1000, clients=4)
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import yaml

from cityheart.runtime.readiness import ReadinessListener
from cityheart.runtime.servers import free_port, running, spawn, start_kafka_broker
from connectors.ingest.keys import new_key, save_keys
from connectors.kafka import create_topics
from lab.bench_bridge import _cpu_of
from models.errors import ConfigError
from settings.config import Settings
from settings.loader import dump

__all__ = ["IngestBenchResult", "run_ingest_bench"]

log = logging.getLogger(__name__)


@dataclass
class IngestBenchResult:
    """What ``clients`` clients posting batches of ``batch`` achieved."""

    readings: int
    batch: int
    clients: int
    accepted: int
    readings_per_s: float
    seconds: float
    p50_request_ms: float
    p99_request_ms: float
    cpu_s: dict[str, float]


def _bodies(settings: Settings, readings: int, batch: int) -> list[bytes]:
    districts = settings.district_ids()
    start = time.time() - 600
    bodies = []
    for first in range(0, readings, batch):
        records = [{"device_id": f"bench-{n % 1000}", "district": districts[n % len(districts)],
                    "kind": "traffic_speed", "value": 40.0 + n % 30, "unit": "km/h",
                    "ts": start + n * 0.001, "seq": n}
                   for n in range(first, min(first + batch, readings))]
        bodies.append(orjson.dumps(records))
    return bodies


def _post_all(url: str, token: str, bodies: list[bytes], latencies: list[float],
              accepted: list[int]) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        for body in bodies:
            started = time.perf_counter()
            conn.request("POST", parts.path, body, headers)
            answer = conn.getresponse()
            document = orjson.loads(answer.read())
            latencies.append(time.perf_counter() - started)
            if answer.status != 202:
                log.error("ingest answered %s: %s", answer.status, document)
                continue
            accepted.append(document["accepted"])
    finally:
        conn.close()


def run_ingest_bench(settings: Settings, *, readings: int = 200_000, batch: int = 1000,
                     clients: int = 4, as_json: bool = False) -> int:
    """Measure HTTP ingest once; print the result (one JSON line with ``as_json``)."""
    if readings < 1 or batch < 1 or clients < 1:
        msg = f"readings {readings}, batch {batch} and clients {clients} must be at least 1"
        raise ConfigError("--http", "ingest", msg)
    with tempfile.TemporaryDirectory(prefix="cityheart-bench-ingest-") as tmp, running(
        start_kafka_broker(log_path=Path(tmp) / "tansu.log")
    ) as kafka:
        work = Path(tmp)
        data = dump(settings)
        data["kafka"].update(bootstrap=kafka.bootstrap, embedded=False)
        data["ingest"].update(port=free_port(), keys_file=str(work / "keys.yaml"),
                              max_records=max(batch, 1), burst=max(batch, readings),
                              per_source_per_s=1e9)
        data["metrics"]["enabled"] = False
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        url = f"http://127.0.0.1:{data['ingest']['port']}/ingest"
        create_topics(kafka.bootstrap, settings.kafka.topics.every(), 1)
        key, token = new_key("bench")
        save_keys(work / "keys.yaml", [key])
        bodies = _bodies(settings, readings, batch)
        ready = ReadinessListener(Path(tempfile.mkdtemp(prefix="cityheart-")) / "ingest.notify")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHEART_")}
        child = spawn("ingest", [sys.executable, "-m", "cityheart", "ingest", "--config",
                                 str(config)], env={**env, **ready.environ()},
                      log_path=work / "ingest.log")
        try:
            ready.wait_ready(timeout=60, process=child.process)
            latencies: list[float] = []
            accepted: list[int] = []
            shares = [bodies[i::clients] for i in range(clients)]
            cpu_before = _cpu_of(child.process.pid), _cpu_of(kafka.child.process.pid)
            started = time.monotonic()
            threads = [threading.Thread(target=_post_all, args=(url, token, share,
                                                                 latencies, accepted))
                       for share in shares]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.monotonic() - started
            cpu = {"ingest": round(_cpu_of(child.process.pid) - cpu_before[0], 1),
                   "tansu": round(_cpu_of(kafka.child.process.pid) - cpu_before[1], 1)}
        finally:
            child.stop(signal.SIGTERM, timeout=30)
            ready.close()
            shutil.rmtree(ready.path.parent, ignore_errors=True)
    latencies.sort()
    total = sum(accepted)
    result = IngestBenchResult(
        readings, batch, clients, total, round(total / seconds), round(seconds, 1),
        round(latencies[len(latencies) // 2] * 1000, 1),
        round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1), cpu)
    if as_json:
        print(orjson.dumps(asdict(result)).decode(), flush=True)
    else:
        print(f"HTTP ingest: {result.accepted:,} of {readings:,} readings accepted in "
              f"{result.seconds} s = {result.readings_per_s:,} readings/s (batches of {batch}, "
              f"{clients} clients; request p50 {result.p50_request_ms} ms, p99 "
              f"{result.p99_request_ms} ms; CPU s {cpu})", flush=True)
    return 0 if total == readings else 1
