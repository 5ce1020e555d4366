"""Every Prometheus metric cityheart exports, defined in one place, and the ``/metrics`` server.

    server = serve_metrics("127.0.0.1", 0)       # prometheus_client's HTTP server, own thread
    server.url                                   # http://127.0.0.1:54321/metrics
    READINGS_INGESTED.inc()                      # anywhere in the process
    server.close()

The metrics live in prometheus_client's default registry, one per process; each component
serves the ones it moves (and prometheus_client's ``process_*``/``python_*`` ones):

=========================================== ====================================================
``cityheart_mqtt_messages_total``           bridge: MQTT messages received
``cityheart_readings_ingested_total``       bridge: valid readings sent to the readings topic
``cityheart_dead_letters_total{reason}``    bridge: payloads sent to the dead-letter topic
``cityheart_bridge_acknowledged_total``     bridge: MQTT messages acknowledged after Kafka had them
``cityheart_consumer_lag{topic,partition}`` flow, recorder: records in the topic not read yet
``cityheart_district_mismatches_total{device}`` flow: readings whose topic named another
                                            district than their position's
``cityheart_window_latency_seconds``        recorder: ``emitted_at - window_end`` of each vitals
                                            record (histogram; ``record`` = window/indicator)
``cityheart_incidents_open{department}``    recorder: incidents not resolved or closed
``cityheart_feed_clients``                  feed: websocket clients connected now
``cityheart_feed_messages_sent_total``      feed: messages sent to clients after ``hello``
``cityheart_feed_slow_clients_total``       feed: clients dropped for falling behind
``cityheart_source_*{source}``              sources: each pulled service's health and counts
                                            (:mod:`connectors.sources.health`, registered while
                                            the poller runs)
=========================================== ====================================================

Consumer lag: the Kafka sources of Bytewax flows report each partition's position
(:func:`track_partition`, wired in :mod:`connectors.kafka`); at every scrape
:class:`ConsumerLag` asks the broker for the partitions' end offsets and reports the
difference.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from models.errors import ConnectorError

__all__ = [
    "BRIDGE_ACKNOWLEDGED",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "DISTRICT_MISMATCHES",
    "FEED_CLIENTS",
    "FEED_MESSAGES_SENT",
    "FEED_SLOW_CLIENTS",
    "INCIDENTS_OPEN",
    "MQTT_MESSAGES",
    "READINGS_INGESTED",
    "WINDOW_LATENCY",
    "ConsumerLag",
    "MetricsServer",
    "serve_metrics",
    "track_partition",
]

log = logging.getLogger(__name__)

MQTT_MESSAGES = Counter("cityheart_mqtt_messages", "MQTT messages the bridge received.")
READINGS_INGESTED = Counter(
    "cityheart_readings_ingested", "Valid readings the bridge sent to the readings topic."
)
DEAD_LETTERS = Counter(
    "cityheart_dead_letters",
    "Payloads sent to the dead-letter topic, by reason (invalid_json, out_of_range, ...).",
    ["reason"],
)
DISTRICT_MISMATCHES = Counter(
    "cityheart_district_mismatches",
    "Readings whose topic (or payload) named another district than their position's, by device.",
    ["device"],
)
BRIDGE_ACKNOWLEDGED = Counter(
    "cityheart_bridge_acknowledged", "MQTT messages acknowledged once Kafka confirmed them."
)
WINDOW_LATENCY = Histogram(
    "cityheart_window_latency_seconds",
    "emitted_at - window_end of each vitals record: how long after a window closes it is out.",
    ["record"],
    buckets=(0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
INCIDENTS_OPEN = Gauge(
    "cityheart_incidents_open",
    "Incidents not resolved or closed, by department they are routed to.",
    ["department"],
)
FEED_CLIENTS = Gauge("cityheart_feed_clients", "Websocket clients connected to the feed.")
FEED_MESSAGES_SENT = Counter(
    "cityheart_feed_messages_sent",
    "Messages the feed sent to clients after hello (data, control and heartbeats).",
)
FEED_SLOW_CLIENTS = Counter(
    "cityheart_feed_slow_clients", "Feed clients dropped because they fell too far behind."
)
CONSUMER_LAG = "cityheart_consumer_lag"
"""Name of the lag gauge :class:`ConsumerLag` reports."""


@dataclass
class MetricsServer:
    """A running ``/metrics`` HTTP server; :meth:`close` stops it."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """``http://host:port/metrics`` with the bound port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(host: str, port: int) -> MetricsServer:
    """Serve the process's metrics on ``host:port`` (0: any free port) on a daemon thread."""
    disable_created_metrics()  # no ``*_created`` series: half the samples, none of the use
    try:
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        msg = f"cannot listen for /metrics: {exc.strerror or exc}"
        raise ConnectorError("metrics", f"{host}:{port}", msg) from exc
    return MetricsServer(host, int(server.server_port), server, thread)


# -- consumer lag --------------------------------------------------------------------------


class _Positions:
    """The next offset each tracked partition will read: (bootstrap, topic, partition) -> offset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[tuple[str, str, int], int] = {}

    def set(self, key: tuple[str, str, int], offset: int) -> None:
        with self._lock:
            self._next[key] = offset

    def forget(self, key: tuple[str, str, int]) -> None:
        with self._lock:
            self._next.pop(key, None)

    def items(self) -> list[tuple[tuple[str, str, int], int]]:
        with self._lock:
            return list(self._next.items())


_POSITIONS = _Positions()


class _TrackedPartition(StatefulSourcePartition[Any, Any]):
    """A Kafka source partition that records its position after every batch."""

    def __init__(self, inner: Any, key: tuple[str, str, int]) -> None:
        self._inner = inner
        self._key = key

    def next_batch(self) -> Iterable[Any]:
        batch = self._inner.next_batch()
        if batch:
            offset = getattr(batch[-1], "offset", None)
            if offset is not None:
                _POSITIONS.set(self._key, offset + 1)
        return batch

    def next_awake(self) -> Any:
        return self._inner.next_awake()

    def snapshot(self) -> Any:
        return self._inner.snapshot()

    def close(self) -> None:
        _POSITIONS.forget(self._key)
        self._inner.close()


def track_partition(inner: Any, bootstrap: str, topic: str, partition: int) -> Any:
    """``inner`` (a Bytewax Kafka source partition), reporting its position for consumer lag."""
    return _TrackedPartition(inner, (bootstrap, topic, partition))


class ConsumerLag(Collector):
    """At each scrape: end offset minus position of every partition a source in this process
    reads (``cityheart_consumer_lag``); a broker that does not answer within ``timeout_s``
    leaves its partitions out of that scrape.
    """

    def __init__(self, timeout_s: float = 2.0) -> None:
        self._timeout_s = timeout_s
        self._consumers: dict[str, Consumer] = {}
        self._lock = threading.Lock()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The lag gauge without samples (so registering asks no broker)."""
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The lag gauge, one sample per tracked partition."""
        family = self._family()
        with self._lock:
            tracked = _POSITIONS.items()
            unreachable: set[str] = set()  # one timeout per broker and scrape, not per partition
            for (bootstrap, topic, partition), position in tracked:
                if bootstrap in unreachable:
                    continue
                end = self._end_offset(bootstrap, topic, partition)
                if end is None:
                    unreachable.add(bootstrap)
                else:
                    family.add_metric([topic, str(partition)], max(0, end - position))
            for bootstrap in set(self._consumers) - {key[0] for key, _ in tracked}:
                self._consumers.pop(bootstrap).close()  # no source reads there any more
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            CONSUMER_LAG,
            "Records in a partition that this process has not read yet (end offset - position).",
            labels=["topic", "partition"],
        )

    def _end_offset(self, bootstrap: str, topic: str, partition: int) -> int | None:
        consumer = self._consumers.get(bootstrap)
        if consumer is None:
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cityheart-metrics",
                                 "enable.auto.commit": False})
            self._consumers[bootstrap] = consumer
        try:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=self._timeout_s
            )
        except KafkaException as exc:
            log.warning("metrics: no end offset of %s[%d] from %s: %s",
                        topic, partition, bootstrap, exc.args[0])
            return None
        return int(high)


REGISTRY.register(ConsumerLag())
