"""What a request costs the embedded Tansu as a partition fills: ``python -m lab.tansu_growth``.

Tansu 0.6's memory engine keeps each produced batch as an object and, on every fetch that finds
new records, lists all the objects of the partition; it never deletes one (no retention, and its
DeleteRecords is unimplemented). This starts a Tansu on a free loopback port, fills one partition
with one-record batches up to each of ``steps`` and at each step measures, from /proc, the
broker's CPU for 100 produce requests alone and for 100 cycles of "produce one batch, a tailing
reader (``BATCH_FETCH``, as the flow reads) fetches it"::

    batches  produce: CPU ms  produce+fetch: CPU ms  wall ms
        200           0.00                   0.50      4.9
      12200           0.20                  93.30    614.4

A produce costs the same at every size; a fetch that finds records costs in proportion to the
batches the partition holds, and far more once listing them outlasts the reader's
``fetch.wait.max.ms`` (``--wait-ms``): Tansu then answers nothing and the reader asks again
(BENCHMARKS.md, "Tansu's CPU grows while the demo runs")."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from cityheart.runtime.servers import start_kafka_broker
from connectors.kafka import BATCH_FETCH, ReliableProducer, create_topics

__all__ = ["measure"]

TOPIC = "growth"
CYCLES = 100


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _produce_one(producer: ReliableProducer, value: bytes) -> None:
    producer.produce(TOPIC, value)
    producer.flush(15)  # confirmed before the next: each record is a batch of its own


def _cycles(producer: ReliableProducer, reader: Consumer) -> None:
    for i in range(CYCLES):
        _produce_one(producer, b"cycle %d" % i)
        while (message := reader.poll(10)) is None or message.error() is not None:
            pass


def measure(steps: Sequence[int], wait_ms: int = 10) -> list[tuple[int, float, float, float]]:
    """(batches held, produce CPU ms, produce+fetch CPU ms, produce+fetch wall ms) per step; the
    reader's ``fetch.wait.max.ms`` is ``wait_ms`` (BATCH_FETCH's 10 ms by default)."""
    kafka = start_kafka_broker()
    pid = kafka.child.process.pid
    rows = []
    try:
        create_topics(kafka.bootstrap, [TOPIC], partitions=1)
        producer = ReliableProducer(kafka.bootstrap, linger_ms=0)
        held = 0
        for step in steps:
            while held < step:
                _produce_one(producer, b"fill")
                held += 1
            cpu = _cpu_s(pid)
            for _ in range(CYCLES):
                _produce_one(producer, b"produce")
            produce_ms = (_cpu_s(pid) - cpu) * 1000 / CYCLES
            held += CYCLES
            reader = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "growth",
                               "enable.auto.commit": False, **BATCH_FETCH,
                               "fetch.wait.max.ms": wait_ms})
            reader.assign([TopicPartition(TOPIC, 0, held)])
            reader.poll(0.5)  # connected and waiting at the end of the partition
            cpu, wall = _cpu_s(pid), time.perf_counter()
            _cycles(producer, reader)
            rows.append((held + CYCLES, produce_ms, (_cpu_s(pid) - cpu) * 1000 / CYCLES,
                         (time.perf_counter() - wall) * 1000 / CYCLES))
            held += CYCLES
            reader.close()
    finally:
        kafka.stop()
    return rows


def main() -> None:
    """Print the table for the steps given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", nargs="*", type=int, default=[0, 1000, 3000, 6000, 12000])
    parser.add_argument("--wait-ms", type=int, default=10, help="the reader's fetch.wait.max.ms")
    args = parser.parse_args()
    print("batches  produce: CPU ms  produce+fetch: CPU ms  wall ms")
    for held, produce_ms, cycle_ms, wall_ms in measure(args.steps, args.wait_ms):
        print(f"{held:7d}  {produce_ms:13.2f}  {cycle_ms:21.2f}  {wall_ms:7.1f}", flush=True)


if __name__ == "__main__":
    main()
