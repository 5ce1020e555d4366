"""The city dataflow: Kafka ``readings`` in; ``vitals`` (windows and indicators), ``alerts``,
``incidents`` and dead letters out.

    flow = build_flow(settings, source=kafka_source(...), vitals_sink=KafkaRecordSink(...),
                      alerts_sink=..., incidents_sink=..., dead_letter_sink=...,
                      dead_letter_source=..., clock=time.time)

or from the command line (topics must exist; no environment overrides, see
:func:`build_from_config`)::

    python -m bytewax.run "flows.city:build_from_config('config.yaml')"

Steps (ids are stable: bytewax uses them in errors, metrics and recovery snapshots):

``read_readings``
    Kafka messages (``key``, ``value``, ``headers``).
``parse_reading``
    per batch: parse each value with :class:`~models.readings.ReadingParser` (the clock gives
    "now" for the future-timestamp check) and fold the valid readings into one partial
    :class:`~models.windows.Window` per district, kind and window (with one
    :class:`~models.windows.DeviceRun` per device, and the energy sum for decibel kinds):
    the per-reading work ends here. Invalid ones become dead-letter records (original bytes;
    headers reason, detail, mqtt_topic, received_at, source="flow"); out-of-range ones also a
    :class:`~models.vitals.records.Rejection` for device health.
``read_incident_log`` → ``detector_feedback`` → ``merge_feedback`` (when an incident log source
is given: the incidents topic read back)
    anomaly incidents resolved as false alarms, for the district's detectors
    (:mod:`alerts.feedback`, :meth:`flows.anomaly.Detectors.on_feedback`).
``read_dead_letters`` → ``out_of_range_rejections`` → ``merge_rejections`` (when a dead-letter
source is given)
    the bridge dead-letters out-of-range readings before they reach ``readings``; their
    dead letters (reason ``out_of_range``, source ``bridge``) become Rejections, so a device
    that sends nonsense counts as unhealthy instead of merely quiet.
``split_dead_letters`` → ``write_dead_letters``
``key_by_district`` → ``district_vitals``
    per district (:class:`flows.steps.DistrictLogic`): each kind's event-time windows and the
    kind's threshold rules on every update of a running window (an alert as soon as a rule
    fires); when a window closes (the kind's watermark passes its end; bytewax wakes the step
    at that wall time) its vital record, its device runs feed device health, and (when
    ``anomaly.enabled``) its mean is the next point of the district and kind's anomaly
    detector (with ``anomaly.per_device`` each device's mean too, one detector per device;
    :mod:`flows.anomaly`), which alerts when its score reaches ``anomaly.threshold``. Once every
    kind of the district is done with a window, the district's indicator records
    (:mod:`models.vitals.district`) and the indicator rules on them (duration, hysteresis). At
    the end of a finite input every open window closes.
``split_city_facts`` → ``city_facts`` → ``key_city`` → ``city_vitals``
    the whole city's indicator records once every district is done with a window, and the
    indicator rules on them.
``merge_outputs`` → ``split_vitals_alerts`` → ``vital_records`` → ``write_vitals`` (window and
indicator records), ``alert_records`` (with the ``departments`` each routes to) →
``write_alerts``
``decode_alerts`` → ``tag_alerts``, ``read_commands`` → ``decode_commands`` →
``merge_commands`` → ``key_by_incident_district`` → ``incidents`` → ``incident_records`` →
``write_incidents``
    alerts grouped into incidents per district, people's actions (commands from the dispatch
    API) applied and answered, overdue incidents escalated: the flow is the one writer of
    every incident's events, which go to the ``incidents`` topic and each routed department's
    dispatch queue; command answers to ``command_results`` (:mod:`flows.incidents`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from alerts.anomaly_rules import AnomalyRule
from alerts.incidents import DisplayNames
from alerts.indicator_rules import indicator_rules
from alerts.lifecycle import Incident
from alerts.routing import route
from alerts.rules import rules_for_kinds
from connectors.kafka import KafkaRecord, KafkaRecordSink, kafka_source, topic_id
from flows.incidents import incident_steps
from flows.steps import (
    CityLogic,
    Context,
    DistrictLogic,
    Feedback,
    ParseBatch,
    Rejections,
    SlowWhenIdle,
)
from models.readings import ReadingParser
from models.vitals.city import CityVitals
from models.vitals.district import DistrictVitals
from models.vitals.records import CITY
from settings.config import Settings
from settings.incidents import RoutingSettings
from settings.loader import load
from settings.params import vitals_params

__all__ = ["build_flow", "build_from_config", "build_kafka_flow"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def build_flow(
    settings: Settings,
    *,
    source: Source,
    vitals_sink: Sink,
    alerts_sink: Sink,
    incidents_sink: Sink,
    dead_letter_sink: Sink,
    dead_letter_source: Source | None = None,
    commands_source: Source | None = None,
    incident_log_source: Source | None = None,
    clock: Clock | None = None,
    incident_log_id: str = "",
    restored: Mapping[str, Sequence[Incident]] | None = None,
) -> Dataflow:
    """The city dataflow on the given sources and sinks.

    ``source`` yields messages with ``key``, ``value`` (bytes) and ``headers`` attributes (a
    Kafka source, or :class:`~connectors.kafka.KafkaRecord` items in tests); the sinks take
    KafkaRecords (``incidents_sink`` the incident events, key = incident id, and records naming
    their own topic: dispatch queues and command results).
    ``dead_letter_source`` (optional) yields the dead-letter topic's messages:
    the bridge's out-of-range ones count against their devices' health.
    ``commands_source`` (optional) yields the ``commands`` topic's messages: people's actions
    on incidents. ``incident_log_source`` (optional) yields the ``incidents`` topic's messages
    again: anomaly incidents resolved as false alarms teach the detectors (and a reopen undoes
    it), and a restarted incident step catches up with the events it wrote after its snapshot.
    ``clock`` (epoch seconds, default :func:`time.time`) is "now" for the parser's future
    check, the watermarks' advance, ``emitted_at`` and escalation. ``incident_log_id`` is the
    identity of the incident log (new incident ids hash it, :func:`alerts.incidents.incident_id`)
    and ``restored`` the incidents taken up again from history (by district,
    :mod:`alerts.reconcile`), for the incident step.
    """
    clock = clock or time.time
    parser = ReadingParser(
        settings.kinds,
        settings.district_ids(),
        topic_prefix=settings.mqtt.topic_prefix,
        max_future_s=settings.flow.max_future_s,
        max_payload_bytes=settings.mqtt.max_payload_bytes,
    )
    params = vitals_params(settings)
    context = Context(
        vitals=DistrictVitals(params),
        city=CityVitals(params),
        units={kind_id: kind.unit for kind_id, kind in settings.kinds.items()},
        kind_rules=rules_for_kinds(settings.kinds),
        indicator_rules=indicator_rules(settings.indicators.rules),
        clock=clock,
        anomaly=(AnomalyRule.from_settings(settings.anomaly, settings.kinds)
                 if settings.anomaly.enabled else None),
    )
    flow = Dataflow("city")
    messages = op.input("read_readings", flow, source)
    parse = ParseBatch(parser, settings.flow.window_s, params.decibel_kinds, clock)
    parsed = op.flat_map_batch("parse_reading", messages, parse)
    if dead_letter_source is not None:
        letters = op.input("read_dead_letters", flow, dead_letter_source)
        rejections = op.flat_map_batch(
            "out_of_range_rejections", letters, Rejections(settings.mqtt.topic_prefix)
        )
        parsed = op.merge("merge_rejections", parsed, rejections)
    incident_log = (op.input("read_incident_log", flow, incident_log_source)
                    if incident_log_source is not None else None)
    if incident_log is not None and settings.anomaly.enabled:
        feedback = op.flat_map_batch("detector_feedback", incident_log, Feedback())
        parsed = op.merge("merge_feedback", parsed, feedback)
    split = op.branch("split_dead_letters", parsed, _is_fact)
    op.output("write_dead_letters", split.falses, dead_letter_sink)
    keyed = op.key_on("key_by_district", split.trues, _district_of)
    district = op.stateful_batch(
        "district_vitals", keyed, lambda resume: DistrictLogic(context, resume)
    )
    facts = op.branch("split_city_facts", district, _is_city_fact)
    to_city = op.key_on("key_city", op.map("city_facts", facts.trues, _payload), _city_key)
    city = op.stateful_batch("city_vitals", to_city, lambda resume: CityLogic(context, resume))
    outputs = op.merge("merge_outputs", facts.falses, city)
    channels = op.branch("split_vitals_alerts", outputs, _is_published)
    op.output("write_vitals", op.map("vital_records", channels.trues, _record_of), vitals_sink)
    alerts = op.map("alert_records", channels.falses, RoutedAlert(settings.incidents.routing))
    op.output("write_alerts", alerts, alerts_sink)
    commands = (op.input("read_commands", flow, commands_source)
                if commands_source is not None else None)
    incidents = incident_steps(settings.incidents, settings.kafka.topics, alerts, commands,
                               incident_log, clock=clock, log_id=incident_log_id,
                               restored=restored, names=DisplayNames.from_settings(settings))
    op.output("write_incidents", incidents, incidents_sink)
    return flow


def build_kafka_flow(
    settings: Settings, *, clock: Clock | None = None,
    restored: Mapping[str, Sequence[Incident]] | None = None,
) -> Dataflow:
    """The city dataflow on the Kafka topics of ``settings.kafka`` (which must exist); new
    incident ids hash the ``incidents`` topic's id (a recreated topic, a new log: new ids).
    ``restored``: incidents taken up again from history, by district (:mod:`alerts.reconcile`).
    """
    kafka = settings.kafka
    topics = kafka.topics
    log_id = topic_id(kafka.bootstrap, topics.incidents)
    if log_id is None:
        log.warning("flow: the broker gives topic %r no id; incident ids cannot tell this log "
                    "from one before it (they may repeat after the log is lost)", topics.incidents)
    return build_flow(
        settings,
        source=kafka_source(kafka.bootstrap, [topics.readings]),
        vitals_sink=KafkaRecordSink(kafka.bootstrap, topics.vitals),
        alerts_sink=KafkaRecordSink(kafka.bootstrap, topics.alerts),
        incidents_sink=KafkaRecordSink(kafka.bootstrap, topics.incidents),
        dead_letter_sink=KafkaRecordSink(kafka.bootstrap, topics.dead_letter),
        dead_letter_source=SlowWhenIdle(kafka_source(kafka.bootstrap, [topics.dead_letter])),
        commands_source=SlowWhenIdle(kafka_source(kafka.bootstrap, [topics.commands]), 0.1),
        incident_log_source=SlowWhenIdle(kafka_source(kafka.bootstrap, [topics.incidents])),
        clock=clock,
        incident_log_id=log_id or "",
        restored=restored,
    )


def build_from_config(path: str) -> Dataflow:
    """The Kafka dataflow of the config.yaml at ``path`` (with its city file and the CITYHEART_*
    environment overrides), for ``python -m bytewax.run``."""
    return build_kafka_flow(load(path))


def _is_fact(item: Any) -> bool:
    return type(item) is not KafkaRecord


def _district_of(item: Any) -> str:
    return str(item.district)


def _is_city_fact(keyed: tuple[str, tuple[str, Any]]) -> bool:
    return keyed[1][0] == "city"


def _payload(keyed: tuple[str, tuple[str, Any]]) -> Any:
    return keyed[1][1]


def _city_key(_fact: Any) -> str:
    return CITY


def _is_published(keyed: tuple[str, tuple[str, Any]]) -> bool:
    """vitals and indicators go to the vitals topic; alerts to theirs."""
    return keyed[1][0] != "alerts"


class RoutedAlert:
    """``alert_records``: an alert's record, with the ``departments`` it routes to (so that a
    department's dispatchers see the raw alerts of their incidents on the feed)."""

    def __init__(self, routing: RoutingSettings) -> None:
        self._routing = routing

    def __call__(self, keyed: tuple[str, tuple[str, Any]]) -> KafkaRecord:
        record = _record_of(keyed)
        alert = orjson.loads(record.value)
        alert["departments"] = route(
            self._routing, district=str(alert.get("district")), kinds=(str(alert.get("kind")),),
            severity=str(alert.get("severity")), rules=(str(alert.get("rule")),),
        )
        return KafkaRecord(record.key, orjson.dumps(alert), record.headers)


def _record_of(keyed: tuple[str, tuple[str, Any]]) -> KafkaRecord:
    record: KafkaRecord = keyed[1][1]
    return record
