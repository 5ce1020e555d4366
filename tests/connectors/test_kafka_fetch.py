"""Readers that can wait ask the broker a few times a second, on real Tansu.

Tansu 0.6's memory engine lists every batch a partition holds for each fetch that finds new
records, and never deletes a batch, so a reader that fetches once per batch the bridge writes
costs the broker more every minute (BENCHMARKS.md, "Tansu's CPU grows"). The recorder reads with
:data:`connectors.kafka.HISTORY_FETCH`: a fetch waits for records to gather, so it sends a few
fetch requests a second while a batch arrives every 20 ms, and still reads every record.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.kafka import HISTORY_FETCH, ReliableProducer, create_topics
from tests.support import unique

pytestmark = pytest.mark.timeout(60)

RECORDS = 150
EVERY_S = 0.02  # the bridge's pace: one batch record per partition every linger (20 ms)


def _fetch_requests(stats: dict[str, Any]) -> int:
    """Fetch requests the consumer sent, over every broker connection (librdkafka statistics)."""
    return sum(broker["req"].get("Fetch", 0) for broker in stats["brokers"].values())


def _write_slowly(bootstrap: str, topic: str) -> None:
    producer = ReliableProducer(bootstrap, linger_ms=1)  # each record its own batch
    for i in range(RECORDS):
        producer.produce(topic, f"batch {i}".encode())
        producer.poll(0)
        time.sleep(EVERY_S)  # the pace is the workload here, not a wait for a condition
    producer.flush(15)


def test_a_history_reader_fetches_a_few_times_a_second_while_batches_keep_arriving(
    kafka_broker: Any,
) -> None:
    bootstrap, topic = kafka_broker.bootstrap, unique("fetch")
    create_topics(bootstrap, [topic], partitions=1)
    stats: list[dict[str, Any]] = []
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": unique("g"), "enable.auto.commit": False,
        "statistics.interval.ms": 200, "stats_cb": lambda raw: stats.append(json.loads(raw)),
        **HISTORY_FETCH,
    })
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    writer = threading.Thread(target=_write_slowly, args=(bootstrap, topic))
    started = time.monotonic()
    writer.start()
    values: list[bytes] = []
    try:
        deadline = started + 45
        while len(values) < RECORDS and time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                values.append(message.value())
        elapsed = time.monotonic() - started
        consumer.poll(0.3)  # one more statistics report, covering the whole read
    finally:
        writer.join()
        consumer.close()

    assert values == [f"batch {i}".encode() for i in range(RECORDS)]
    per_second = _fetch_requests(stats[-1]) / elapsed
    # one fetch per batch would be ~50 a second (a fast reader makes ~100, BATCH_FETCH's 10 ms)
    assert per_second <= 10, f"{per_second:.1f} fetch requests a second over {elapsed:.1f} s"
