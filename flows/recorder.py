"""The recorder: a Bytewax dataflow that keeps history, from Kafka into PostgreSQL.

    flow = build_recorder_flow(settings.kafka, options)   # options: connectors.storage

It reads the ``readings``, ``vitals``, ``alerts``, ``incidents`` and ``reports`` topics and
writes them to the ``readings``, ``vitals`` / ``indicators``, ``alerts``, ``incident_events`` /
``incidents`` and ``reports`` tables in batches (COPY, idempotent). A ``readings`` record is a
batch of readings (:mod:`models.reading_batch`): its rows go in the COPY of the Bytewax batch
that holds it, one COPY for all the records of that batch. An ``incidents`` record is an
incident event (``IncidentEvent.to_record()``) carrying ``"incident"``, the incident after it:
the event is stored in ``incident_events`` and the incident in ``incidents`` (kept only when its
``sequence`` is not older than the stored one).
It runs as its own process (``cityheart recorder``) rather than inside the city flow, so a slow or
stopped database holds back only history, never the live vital signs and alerts: the recorder's
sinks return once rows are committed, so it simply reads Kafka more slowly and catches up when the
database is back. Writes are idempotent, so reading a topic again from its start stores nothing
twice.

Step ids: ``read_topics``, ``split_readings``, ``decode_readings``, ``store_readings``,
``split_alerts``, ``decode_alerts``, ``store_alerts``, ``decode_vitals``, ``split_indicators``,
``split_incidents``, ``decode_incidents``, ``store_incident_events``, ``incident_records``,
``store_incidents``, ``split_reports``, ``decode_reports``, ``store_reports``,
``store_vitals``, ``store_indicators``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from bytewax import operators as op
from bytewax.dataflow import Dataflow

from connectors.kafka import HISTORY_FETCH, kafka_source
from connectors.storage.options import StorageOptions
from connectors.storage.sinks import PostgresSink
from flows.steps import SlowWhenIdle
from models.errors import InvalidReading
from models.reading_batch import readings_in
from models.readings import Reading
from settings.config import KafkaSettings

__all__ = ["build_recorder_flow"]

log = logging.getLogger(__name__)

IDLE_S = 0.05
"""How long the recorder waits before it asks an empty partition again."""
BATCH_SIZE = 50
"""Records per Bytewax batch, of each partition."""


def _decode(message: Any) -> dict[str, Any]:
    return orjson.loads(message.value)


def _readings(message: Any) -> list[Reading]:
    """The readings of a ``readings`` record (a batch, or a single reading's JSON); none, with
    a warning, when it is neither (the flow dead-letters it)."""
    try:
        return readings_in(message.value or b"")
    except InvalidReading as exc:
        log.warning("recorder: a readings record holds no readings (%s): %s", exc.reason,
                    exc.detail)
        return []


def _incident(event: dict[str, Any]) -> list[dict[str, Any]]:
    incident = event.get("incident")
    return [incident] if isinstance(incident, dict) else []


def build_recorder_flow(
    kafka: KafkaSettings, storage: StorageOptions, *, source: Any = None
) -> Dataflow:
    """The recorder dataflow; ``source`` (Kafka messages with topic and value) for tests."""
    topics = kafka.topics
    flow = Dataflow("cityheart_recorder")
    if source is None:
        # history may lag by half a second: an empty partition is asked again after 50 ms (not
        # every millisecond), and a fetch waits up to 500 ms for records to gather, with a
        # bounded prefetch (HISTORY_FETCH: a few fetches a second, not one per batch);
        # BATCH_SIZE records per Bytewax batch bound a catch-up COPY (up to 1,000 readings a
        # record: 50,000 rows), where 2,000 would be up to 2,000,000 rows in memory at once
        source = SlowWhenIdle(kafka_source(
            kafka.bootstrap,
            [topics.readings, topics.vitals, topics.alerts, topics.incidents, topics.reports],
            batch_size=BATCH_SIZE, config=HISTORY_FETCH,
        ), IDLE_S)
    messages = op.input("read_topics", flow, source)

    readings = op.branch("split_readings", messages, lambda m: m.topic == topics.readings)
    op.output(
        "store_readings",
        op.flat_map("decode_readings", readings.trues, _readings),
        PostgresSink(storage, "readings"),
    )
    alerts = op.branch("split_alerts", readings.falses, lambda m: m.topic == topics.alerts)
    op.output(
        "store_alerts",
        op.map("decode_alerts", alerts.trues, _decode),
        PostgresSink(storage, "alerts"),
    )
    incidents = op.branch("split_incidents", alerts.falses, lambda m: m.topic == topics.incidents)
    events = op.map("decode_incidents", incidents.trues, _decode)
    op.output("store_incident_events", events, PostgresSink(storage, "incident_events"))
    op.output(
        "store_incidents",
        op.flat_map("incident_records", events, _incident),
        PostgresSink(storage, "incidents"),
    )
    reports = op.branch("split_reports", incidents.falses, lambda m: m.topic == topics.reports)
    op.output(
        "store_reports",
        op.map("decode_reports", reports.trues, _decode),
        PostgresSink(storage, "reports"),
    )
    vitals = op.map("decode_vitals", reports.falses, _decode)
    indicators = op.branch("split_indicators", vitals, lambda r: r.get("record") == "indicator")
    op.output("store_vitals", indicators.falses, PostgresSink(storage, "vitals"))
    op.output("store_indicators", indicators.trues, PostgresSink(storage, "indicators"))
    return flow
