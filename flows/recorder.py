"""The recorder: a Bytewax dataflow that keeps history, from Kafka into PostgreSQL.

    flow = build_recorder_flow(settings.kafka, options)   # options: connectors.storage

It reads the ``readings``, ``vitals`` and ``alerts`` topics and writes them to the
``readings``, ``vitals`` / ``indicators`` and ``alerts`` tables in batches (COPY, idempotent).
It runs as its own process (``cityheart recorder``) rather than inside the city flow, so a slow or
stopped database holds back only history, never the live vital signs and alerts: the recorder's
sinks return once rows are committed, so it simply reads Kafka more slowly and catches up when the
database is back. Writes are idempotent, so reading a topic again from its start stores nothing
twice.

Step ids: ``read_topics``, ``split_readings``, ``decode_readings``, ``store_readings``,
``split_alerts``, ``decode_alerts``, ``store_alerts``, ``decode_vitals``, ``split_indicators``,
``store_vitals``, ``store_indicators``.
"""

from __future__ import annotations

from typing import Any

import orjson
from bytewax import operators as op
from bytewax.dataflow import Dataflow

from connectors.kafka import kafka_source
from connectors.storage.options import StorageOptions
from connectors.storage.sinks import PostgresSink
from models.config import KafkaSettings

__all__ = ["build_recorder_flow"]


def _decode(message: Any) -> dict[str, Any]:
    return orjson.loads(message.value)


def build_recorder_flow(
    kafka: KafkaSettings, storage: StorageOptions, *, source: Any = None
) -> Dataflow:
    """The recorder dataflow; ``source`` (Kafka messages with topic and value) for tests."""
    topics = kafka.topics
    flow = Dataflow("cityheart_recorder")
    if source is None:
        source = kafka_source(kafka.bootstrap, [topics.readings, topics.vitals, topics.alerts])
    messages = op.input("read_topics", flow, source)

    readings = op.branch("split_readings", messages, lambda m: m.topic == topics.readings)
    op.output(
        "store_readings",
        op.map("decode_readings", readings.trues, _decode),
        PostgresSink(storage, "readings"),
    )
    alerts = op.branch("split_alerts", readings.falses, lambda m: m.topic == topics.alerts)
    op.output(
        "store_alerts",
        op.map("decode_alerts", alerts.trues, _decode),
        PostgresSink(storage, "alerts"),
    )
    vitals = op.map("decode_vitals", alerts.falses, _decode)
    indicators = op.branch("split_indicators", vitals, lambda r: r.get("record") == "indicator")
    op.output("store_vitals", indicators.falses, PostgresSink(storage, "vitals"))
    op.output("store_indicators", indicators.trues, PostgresSink(storage, "indicators"))
    return flow
