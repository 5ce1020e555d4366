"""The city dataflow: Kafka ``readings`` in; ``vitals`` (windows and indicators), ``alerts``,
``incidents`` and dead letters out.

    flow = build_flow(settings, source=kafka_source(...), vitals_sink=KafkaRecordSink(...),
                      alerts_sink=..., incidents_sink=..., dead_letter_sink=...,
                      rejection_source=..., clock=time.time)

or from the command line (topics must exist; config.yaml plus the CITYHEART_* environment
overrides, see :func:`build_from_config`)::

    python -m bytewax.run "flows.city:build_from_config('config.yaml')"

It reads as its builders, one per stage: :func:`ingest` (readings to partial windows),
:func:`vitals` (the stateful district and city steps, where the kinds' rules, the indicator
rules and the anomaly detectors run), :func:`route_alerts`, :func:`incidents` and
:func:`sinks`. Steps pass typed events (:mod:`flows.events`); bytes are written once, in
:func:`sinks`, by :mod:`flows.topics`.

Steps (ids are stable: bytewax uses them in errors, metrics and recovery snapshots; the
stateful ones and the inputs keep theirs):

``read_readings``
    Kafka messages (``key``, ``value``, ``headers``).
``parse_reading``
    per batch: parse each value with :class:`~models.readings.ReadingParser` (the clock gives
    "now" for the future-timestamp check), place it in the district of its position (its own
    ``lat``/``lon``, else its registered device's: :mod:`models.placement`; outside every
    district it is refused as ``outside_city``; a topic naming another district is counted per
    device, ``cityheart_district_mismatches_total``) and fold the valid readings into one partial
    :class:`~models.windows.Window` per district, kind and window (with one
    :class:`~models.windows.DeviceRun` per device, and the energy sum for decibel kinds):
    the per-reading work ends here. Invalid ones become :class:`~flows.events.Refused`
    (dead letters with source="flow"); out-of-range ones also a
    :class:`~models.vitals.records.Rejection` for device health.
``read_incident_log`` → ``detector_feedback`` → ``merge_feedback`` (when an incident log source
is given: the incidents topic read back)
    anomaly incidents resolved as false alarms, for the district's detectors
    (:mod:`alerts.feedback`, :meth:`flows.anomaly.Detectors.on_feedback`).
``read_rejections`` → ``decode_rejections`` → ``merge_rejections`` (when a rejection source is
given)
    the bridge refuses out-of-range readings before they reach ``readings``; besides their dead
    letter it writes each as a Rejection record to the rejections topic, which count against
    the device's health (a device that sends nonsense counts as unhealthy instead of merely
    quiet). A topic of their own: the flow reads only these, never the dead letters (a flood
    of garbage costs it nothing), decodes each once, and its position in the topic rides in
    the recovery snapshot with the districts' state, so each counts once in effect.
``split_refused``
    refused readings to the sinks, the rest on.
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
``read_reports`` → ``report_alerts`` → ``merge_reports`` (when a reports source is given)
    each report of warning or critical severity as the alert it raises (rule
    ``report.<kind>``, :mod:`alerts.report_alerts`), among the rules' alerts: routed, published and
    grouped into incidents like them. A record that is not a report is logged and skipped.
``merge_outputs`` → ``split_vitals_alerts`` → ``route_alerts``
    each alert with the ``departments`` it routes to (so that a department's dispatchers see
    the raw alerts of their incidents on the feed), before it is published.
``tag_alerts``, ``read_commands`` → ``decode_commands`` → ``merge_commands`` →
``key_by_incident_district`` → ``incidents`` → ``incident_events``
    alerts grouped into incidents per district, people's actions (commands from the dispatch
    API) applied and answered, overdue incidents escalated: the flow is the one writer of
    every incident's events (:mod:`flows.incidents`).
``dead_letter_records`` → ``write_dead_letters``, ``vital_records`` → ``write_vitals`` (window
and indicator records), ``alert_records`` → ``write_alerts``, ``incident_records`` →
``write_incidents`` (the ``incidents`` topic, each routed department's dispatch queue and
``command_results``)
    the sinks: each map turns its events into the topic's records (:mod:`flows.topics`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from alerts.anomaly_rules import AnomalyRule
from alerts.incidents import DisplayNames
from alerts.indicator_rules import indicator_rules
from alerts.lifecycle import Incident
from alerts.report_alerts import report_alert
from alerts.routing import route
from alerts.rules import rules_for_kinds
from connectors.kafka import BATCH_FETCH, BATCH_RECORDS, KafkaRecordSink, kafka_source, topic_id
from flows.events import CITY_FACTS, AlertRaised, Refused
from flows.incidents import incident_steps
from flows.steps import (
    CityLogic,
    Context,
    DistrictLogic,
    Feedback,
    ParseBatch,
    Rejections,
    SlowWhenIdle,
    count_mismatch,
)
from flows.topics import IncidentOutputs, alert_record, dead_letter_record, vitals_record
from models.devices import DeviceRegistry
from models.geography import Locator
from models.placement import Placement
from models.reports import decode_report
from models.vitals.city import CityVitals
from models.vitals.district import DistrictVitals
from models.vitals.records import CITY
from settings.config import Settings
from settings.incidents import RoutingSettings
from settings.loader import load
from settings.params import reading_parser, vitals_params

__all__ = [
    "Sinks", "build_flow", "build_from_config", "build_kafka_flow", "incidents", "ingest",
    "route_alerts", "sinks", "vitals",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

READINGS_IDLE_S = 0.005
"""How long the flow waits before it asks an empty ``readings`` partition again."""


@dataclass(frozen=True)
class Sinks:
    """Where the flow writes: KafkaRecord sinks for ``vitals`` (window and indicator records),
    ``alerts``, ``incidents`` (incident events keyed by incident id, and records naming their
    own topic: dispatch queues and command results) and dead letters."""

    vitals: Sink
    alerts: Sink
    incidents: Sink
    dead_letters: Sink


def build_flow(
    settings: Settings,
    *,
    source: Source,
    vitals_sink: Sink,
    alerts_sink: Sink,
    incidents_sink: Sink,
    dead_letter_sink: Sink,
    rejection_source: Source | None = None,
    commands_source: Source | None = None,
    incident_log_source: Source | None = None,
    reports_source: Source | None = None,
    clock: Clock | None = None,
    incident_log_id: str = "",
    restored: Mapping[str, Sequence[Incident]] | None = None,
    registry: DeviceRegistry | None = None,
    recovery: bool = True,
) -> Dataflow:
    """The city dataflow on the given sources and sinks.

    ``source`` yields messages with ``key``, ``value`` (bytes) and ``headers`` attributes (a
    Kafka source, or :class:`~connectors.kafka.KafkaRecord` items in tests); the sinks take
    KafkaRecords (see :class:`Sinks`).
    ``rejection_source`` (optional) yields the rejections topic's messages: the readings the
    bridge refused as out of range, which count against their devices' health.
    ``commands_source`` (optional) yields the ``commands`` topic's messages: people's actions
    on incidents. ``incident_log_source`` (optional) yields the ``incidents`` topic's messages
    again: anomaly incidents resolved as false alarms teach the detectors (and a reopen undoes
    it), and a restarted incident step catches up with the events it wrote after its snapshot.
    ``reports_source`` (optional) yields the ``reports`` topic's messages: reports from people
    and systems, each of warning or critical severity an alert (:mod:`alerts.report_alerts`).
    ``clock`` (epoch seconds, default :func:`time.time`) is "now" for the parser's future
    check, the watermarks' advance, ``emitted_at`` and escalation. ``incident_log_id`` is the
    identity of the incident log (new incident ids hash it, :func:`alerts.incidents.incident_id`)
    and ``restored`` the
    incidents taken up again from history (by district, :mod:`alerts.reconcile`), for the
    incident step. ``registry`` is the device registry: its devices' positions place the readings
    that carry none of their own, and its active devices that never report are ``missing`` in
    device health. ``recovery`` False (the flow runs without a recovery config) spares the
    stateful steps a copy of their state at every epoch (nothing keeps it).
    """
    clock = clock or time.time
    flow = Dataflow("city")
    incident_log = _input(flow, "read_incident_log", incident_log_source)
    parts, refused = ingest(flow, settings, source, clock, rejection_source, incident_log,
                            registry.positions() if registry else None)
    published, raised = vitals(settings, parts, clock, registry.expected() if registry else None,
                               snapshots=recovery)
    if reports_source is not None:
        reported = op.filter_map("report_alerts", op.input("read_reports", flow, reports_source),
                                 ReportAlerts(clock))
        raised = op.merge("merge_reports", raised, reported)
    centroids = {d.id: d.centroid for d in settings.districts}
    alerts = route_alerts(settings.incidents.routing, raised, centroids)
    commands = _input(flow, "read_commands", commands_source)
    events = incidents(settings, alerts, commands, incident_log, clock=clock,
                       log_id=incident_log_id, restored=restored)
    sinks(settings, Sinks(vitals_sink, alerts_sink, incidents_sink, dead_letter_sink),
          refused=refused, published=published, alerts=alerts, incidents=events)
    return flow


def ingest(
    flow: Dataflow, settings: Settings, source: Source, clock: Clock,
    rejection_source: Source | None = None, incident_log: Stream[Any] | None = None,
    positions: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[Stream[Any], Stream[Refused]]:
    """Readings in: partial windows, rejections and (with anomaly detection and an incident
    log) detector feedback for the districts; and the readings the flow refused."""
    messages = op.input("read_readings", flow, source)
    placement = Placement(Locator(settings.geography.districts), positions)
    parser = reading_parser(settings, placement=placement, on_mismatch=count_mismatch)
    parse = ParseBatch(parser, settings.flow.window_s, vitals_params(settings).decibel_kinds,
                       clock)
    parsed = op.flat_map_batch("parse_reading", messages, parse)
    if rejection_source is not None:
        records = op.input("read_rejections", flow, rejection_source)
        rejections = op.flat_map_batch("decode_rejections", records, Rejections())
        parsed = op.merge("merge_rejections", parsed, rejections)
    if incident_log is not None and settings.anomaly.enabled:
        feedback = op.flat_map_batch("detector_feedback", incident_log, Feedback())
        parsed = op.merge("merge_feedback", parsed, feedback)
    split = op.branch("split_refused", parsed, _is_refused)
    return split.falses, split.trues


def vitals(
    settings: Settings, parts: Stream[Any], clock: Clock,
    registered: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None, *,
    snapshots: bool = True,
) -> tuple[Stream[Any], Stream[AlertRaised]]:
    """The districts' and the city's stateful steps: vital records and indicator records
    (keyed), and the alerts the kinds' rules, the indicator rules and the anomaly detectors
    fire (keyed); ``registered``: the registry's devices by district and kind."""
    params = vitals_params(settings, registered)
    context = Context(
        vitals=DistrictVitals(params),
        city=CityVitals(params),
        units={kind_id: kind.unit for kind_id, kind in settings.kinds.items()},
        kind_rules=rules_for_kinds(settings.kinds),
        indicator_rules=indicator_rules(settings.indicators.rules),
        clock=clock,
        anomaly=(AnomalyRule.from_settings(settings.anomaly, settings.kinds)
                 if settings.anomaly.enabled else None),
        snapshots=snapshots,
    )
    keyed = op.key_on("key_by_district", parts, _district_of)
    district = op.stateful_batch(
        "district_vitals", keyed, lambda resume: DistrictLogic(context, resume)
    )
    facts = op.branch("split_city_facts", district, _is_city_fact)
    to_city = op.key_on("key_city", op.map("city_facts", facts.trues, _payload), _city_key)
    city = op.stateful_batch("city_vitals", to_city, lambda resume: CityLogic(context, resume))
    outputs = op.merge("merge_outputs", facts.falses, city)
    split = op.branch("split_vitals_alerts", outputs, _is_published)
    return split.trues, split.falses


def route_alerts(
    routing: RoutingSettings, raised: Stream[Any],
    centroids: Mapping[str, tuple[float, float]] | None = None,
) -> Stream[AlertRaised]:
    """Each alert with the departments it routes to (``route_alerts``), before it is
    published: so that a department's dispatchers see the raw alerts of their incidents. An
    alert without a position gets its district's centroid (``centroids``: id -> (lon, lat))."""
    return op.map("route_alerts", raised, RouteAlert(routing, centroids))


def incidents(
    settings: Settings, alerts: Stream[AlertRaised], commands: Stream[Any] | None,
    incident_log: Stream[Any] | None, *, clock: Clock, log_id: str | Callable[[], str] = "",
    restored: Mapping[str, Sequence[Incident]] | None = None,
) -> Stream[Any]:
    """The incident step's events and command answers (:mod:`flows.incidents`), incident
    titles in the names config.yaml gives districts and kinds."""
    return incident_steps(settings.incidents, alerts, commands, incident_log, clock=clock,
                          log_id=log_id, restored=restored,
                          names=DisplayNames.from_settings(settings))


def sinks(
    settings: Settings, to: Sinks, *, refused: Stream[Refused], published: Stream[Any],
    alerts: Stream[AlertRaised], incidents: Stream[Any],
) -> None:
    """Each stream's records (:mod:`flows.topics`: the one place bytes are written) to its
    sink."""
    op.output("write_dead_letters", op.map("dead_letter_records", refused, dead_letter_record),
              to.dead_letters)
    op.output("write_vitals", op.map("vital_records", published, _vitals_record), to.vitals)
    op.output("write_alerts", op.map("alert_records", alerts, alert_record), to.alerts)
    outputs = IncidentOutputs(settings.kafka.topics)
    op.output("write_incidents", op.flat_map("incident_records", incidents, outputs.records),
              to.incidents)


def build_kafka_flow(
    settings: Settings, *, clock: Clock | None = None,
    restored: Mapping[str, Sequence[Incident]] | None = None,
    registry: DeviceRegistry | None = None, recovery: bool = True,
) -> Dataflow:
    """The city dataflow on the Kafka topics of ``settings.kafka`` (which must exist); new
    incident ids hash the ``incidents`` topic's id (a recreated topic, a new log: new ids),
    asked of the broker here, before the flow runs (asked from inside the incident step, the
    question held up the first alerts of a run by a second or two).
    ``restored``: incidents taken up again from history, by district (:mod:`alerts.reconcile`);
    ``registry``: the device registry; ``recovery``: whether it runs with a recovery config.
    """
    kafka = settings.kafka
    topics = kafka.topics
    return build_flow(
        settings,
        # batch records: a bounded prefetch (BATCH_FETCH), one record per Bytewax batch
        # (BATCH_RECORDS: partitions in step); an empty partition is asked again after 5 ms,
        # not every millisecond (the bridge gathers a batch for linger_ms, 50 ms, anyway)
        source=SlowWhenIdle(kafka_source(kafka.bootstrap, [topics.readings],
                                         batch_size=BATCH_RECORDS, config=BATCH_FETCH),
                            READINGS_IDLE_S),
        vitals_sink=KafkaRecordSink(kafka.bootstrap, topics.vitals),
        alerts_sink=KafkaRecordSink(kafka.bootstrap, topics.alerts),
        incidents_sink=KafkaRecordSink(kafka.bootstrap, topics.incidents),
        dead_letter_sink=KafkaRecordSink(kafka.bootstrap, topics.dead_letter),
        rejection_source=SlowWhenIdle(kafka_source(kafka.bootstrap, [topics.rejected])),
        commands_source=SlowWhenIdle(kafka_source(kafka.bootstrap, [topics.commands]), 0.1),
        incident_log_source=SlowWhenIdle(kafka_source(kafka.bootstrap, [topics.incidents])),
        reports_source=SlowWhenIdle(kafka_source(kafka.bootstrap, [topics.reports]), 0.1),
        clock=clock,
        incident_log_id=_incident_log_id(kafka.bootstrap, topics.incidents),
        restored=restored,
        registry=registry,
        recovery=recovery,
    )


def build_from_config(path: str) -> Dataflow:
    """The Kafka dataflow of the config.yaml at ``path`` (with its city file) and the CITYHEART_*
    environment overrides (:func:`settings.loader.load`), for ``python -m bytewax.run``, which
    may start many processes: incidents are not reconciled with history here
    (:func:`cityheart.flow.run_flow` does that)."""
    return build_kafka_flow(load(path))


def _incident_log_id(bootstrap: str, topic: str) -> str:
    log_id = topic_id(bootstrap, topic)
    if log_id is None:
        log.warning("flow: the broker gives topic %r no id; incident ids cannot tell this log "
                    "from one before it (they may repeat after the log is lost)", topic)
    return log_id or ""


def _input(flow: Dataflow, step_id: str, source: Source | None) -> Stream[Any] | None:
    return None if source is None else op.input(step_id, flow, source)


def _is_refused(item: Any) -> bool:
    return type(item) is Refused


def _district_of(item: Any) -> str:
    return str(item.district)


def _is_city_fact(keyed: tuple[str, Any]) -> bool:
    return type(keyed[1]) in CITY_FACTS


def _payload(keyed: tuple[str, Any]) -> Any:
    return keyed[1]


def _city_key(_fact: Any) -> str:
    return CITY


def _is_published(keyed: tuple[str, Any]) -> bool:
    """window and indicator records go to the vitals topic; alerts on to routing."""
    return type(keyed[1]) is not AlertRaised


def _vitals_record(keyed: tuple[str, Any]) -> Any:
    return vitals_record(keyed[1])


class RouteAlert:
    """``route_alerts``: a keyed alert, with the ``departments`` it routes to and a position
    (its district's centroid when the rule gave it none)."""

    def __init__(
        self, routing: RoutingSettings,
        centroids: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self._routing = routing
        self._centroids = dict(centroids or {})

    def __call__(self, keyed: tuple[str, AlertRaised]) -> AlertRaised:
        raised = keyed[1]
        alert = raised.alert
        departments = route(self._routing, district=alert.district, kinds=(alert.kind,),
                            severity=alert.severity, rules=(alert.rule,))
        lat, lon = alert.lat, alert.lon
        centroid = self._centroids.get(alert.district)
        if lat is None and centroid is not None:
            lon, lat = centroid
        return AlertRaised(replace(alert, departments=departments, lat=lat, lon=lon),
                           raised.emitted_at)


class ReportAlerts:
    """``report_alerts``: a ``reports`` message as the keyed alert it raises (None for an info
    report, or a record that is not a report: logged)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def __call__(self, message: Any) -> tuple[str, AlertRaised] | None:
        try:
            report = decode_report(message.value)
        except ValueError as exc:
            log.warning("report_alerts: skipping a record: %s", exc)
            return None
        alert = report_alert(report)
        if alert is None:
            return None
        return alert.district, AlertRaised(alert, self._clock())
