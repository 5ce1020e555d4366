"""The city dataflow: Kafka ``readings`` in; ``vitals``, ``alerts`` and dead letters out.

    flow = build_flow(settings, source=kafka_source(...), vitals_sink=KafkaRecordSink(...),
                      alerts_sink=..., dead_letter_sink=..., clock=time.time)

or from the command line (topics must exist; no environment overrides, see
:func:`build_from_config`)::

    python -m bytewax.run "flows.city:build_from_config('config.yaml')"

Steps (ids are stable: bytewax uses them in errors, metrics and recovery snapshots):

``read_readings``
    Kafka messages (``key``, ``value``, ``headers``).
``parse_reading``
    per batch: parse each value with :class:`~models.readings.ReadingParser` (the clock gives
    "now" for the future-timestamp check) and fold the valid readings into one partial
    :class:`~models.windows.Window` per district, kind and window; invalid ones become
    dead-letter records (original bytes; headers reason, detail, mqtt_topic, received_at,
    source="flow").
``split_dead_letters`` → ``write_dead_letters``
``key_by_district_kind`` → ``window_and_alert``
    per ``"<district>/<kind>"``: event-time windows (:class:`~models.windows.KeyWindows`) and the
    kind's alert rules evaluated on every update of a running window; emits an alert as soon as
    a rule fires and a vital record when a window closes (the watermark passes its end; bytewax
    wakes the step at that wall time). At the end of a finite input every open window closes.
``split_vitals_alerts`` → ``vital_records`` → ``write_vitals``, ``alert_records`` →
``write_alerts``
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import orjson
import yaml
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from alerts.rules import Alert, Rule, rules_for_kinds
from connectors.kafka import KafkaRecord, KafkaRecordSink, kafka_source
from models.config import Settings
from models.errors import InvalidReading
from models.readings import ReadingParser
from models.timefmt import iso
from models.windows import KeyWindows, Window, preaggregate, vital_record

__all__ = ["build_flow", "build_from_config", "build_kafka_flow"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Output = tuple[str, KafkaRecord]  # ("vitals" | "alerts", record)


def build_flow(
    settings: Settings,
    *,
    source: Source,
    vitals_sink: Sink,
    alerts_sink: Sink,
    dead_letter_sink: Sink,
    clock: Clock | None = None,
) -> Dataflow:
    """The city dataflow on the given source and sinks.

    ``source`` yields messages with ``key``, ``value`` (bytes) and ``headers`` attributes (a
    Kafka source, or :class:`~connectors.kafka.KafkaRecord` items in tests); the sinks take
    KafkaRecords. ``clock`` (epoch seconds, default :func:`time.time`) is "now" for the
    parser's future check, the watermark's advance and ``emitted_at``.
    """
    clock = clock or time.time
    parser = ReadingParser(
        settings.kinds,
        settings.district_ids(),
        topic_prefix=settings.mqtt.topic_prefix,
        max_future_s=settings.flow.max_future_s,
        max_payload_bytes=settings.mqtt.max_payload_bytes,
    )
    context = _Context(
        length=settings.flow.window_s,
        allowance=settings.flow.late_allowance_s,
        units={kind_id: kind.unit for kind_id, kind in settings.kinds.items()},
        rules=rules_for_kinds(settings.kinds),
        clock=clock,
    )
    flow = Dataflow("city")
    messages = op.input("read_readings", flow, source)
    parsed = op.flat_map_batch(
        "parse_reading", messages, _ParseBatch(parser, settings.flow.window_s, clock)
    )
    split = op.branch("split_dead_letters", parsed, _is_window)
    op.output("write_dead_letters", split.falses, dead_letter_sink)
    keyed = op.key_on("key_by_district_kind", split.trues, _key_of)
    events = op.stateful_batch(
        "window_and_alert", keyed, lambda resume: _WindowLogic(context, resume)
    )
    channels = op.branch("split_vitals_alerts", events, _is_vital)
    op.output("write_vitals", op.map("vital_records", channels.trues, _record_of), vitals_sink)
    op.output("write_alerts", op.map("alert_records", channels.falses, _record_of), alerts_sink)
    return flow


def build_kafka_flow(settings: Settings, *, clock: Clock | None = None) -> Dataflow:
    """The city dataflow on the Kafka topics of ``settings.kafka`` (which must exist)."""
    kafka = settings.kafka
    topics = kafka.topics
    return build_flow(
        settings,
        source=kafka_source(kafka.bootstrap, [topics.readings]),
        vitals_sink=KafkaRecordSink(kafka.bootstrap, topics.vitals),
        alerts_sink=KafkaRecordSink(kafka.bootstrap, topics.alerts),
        dead_letter_sink=KafkaRecordSink(kafka.bootstrap, topics.dead_letter),
        clock=clock,
    )


def build_from_config(path: str) -> Dataflow:
    """The Kafka dataflow of the config.yaml at ``path``, for ``python -m bytewax.run``.

    This reads the file only: the layers forbid flows to import ``cityheart.settings``, so the
    CITYHEART_* environment overrides do not apply here. ``cityheart flow`` (or
    ``cityheart.flow:build_from_config``) loads the configuration with them.
    """
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return build_kafka_flow(Settings.model_validate(raw))


def _is_window(item: Window | KafkaRecord) -> bool:
    return type(item) is Window


def _key_of(window: Window) -> str:
    return window.key


def _is_vital(keyed: tuple[str, Output]) -> bool:
    return keyed[1][0] == "vitals"


def _record_of(keyed: tuple[str, Output]) -> KafkaRecord:
    return keyed[1][1]


class _ParseBatch:
    """``parse_reading``: a batch of messages to partial windows and dead-letter records."""

    def __init__(self, parser: ReadingParser, length: float, clock: Clock) -> None:
        self._parse = parser.parse
        self._length = length
        self._clock = clock

    def __call__(self, messages: list[Any]) -> list[Window | KafkaRecord]:
        now = self._clock()
        parse = self._parse
        readings = []
        dead: list[Window | KafkaRecord] = []
        for message in messages:
            try:
                readings.append(parse(message.value or b"", None, now))
            except InvalidReading as exc:
                dead.append(_dead_letter(message, exc, now))
        if dead:
            log.debug("dead-lettered %d of %d readings", len(dead), len(messages))
        dead.extend(preaggregate(readings, self._length))
        return dead


def _dead_letter(message: Any, exc: InvalidReading, now: float) -> KafkaRecord:
    headers = dict(getattr(message, "headers", None) or ())
    return KafkaRecord(
        message.key,
        exc.payload,
        headers=(
            ("reason", exc.reason.encode()),
            ("detail", exc.detail.encode()),
            ("mqtt_topic", headers.get("mqtt_topic") or b""),
            ("received_at", iso(now).encode()),
            ("source", b"flow"),
        ),
    )


@dataclass(frozen=True)
class _Context:
    """What every key's logic shares: window settings, units, rules by kind, the clock."""

    length: float
    allowance: float
    units: Mapping[str, str]
    rules: Mapping[str, Sequence[Rule]]
    clock: Clock


@dataclass
class _KeyState:
    """The picklable state of one district/kind: its windows and its rules' memories."""

    windows: KeyWindows
    rule_states: dict[str, Any] = field(default_factory=dict)


class _WindowLogic(StatefulBatchLogic[Window, Output, _KeyState]):
    """``window_and_alert`` for one district/kind."""

    def __init__(self, context: _Context, resume: _KeyState | None) -> None:
        self._context = context
        self._clock = context.clock
        self._state = resume or _KeyState(KeyWindows(context.length, context.allowance))
        self._rules: Sequence[Rule] = ()

    def on_batch(self, values: list[Window]) -> tuple[list[Output], bool]:
        now = self._clock()
        windows = self._state.windows
        # windows the watermark passed while idle close first, as if on_notify had run on time
        out = self._close(windows.close_due(now), now)
        for part in values:
            ts = part.last_ts  # read first: merge may adopt the part as the running window
            running = windows.merge(part, now)
            if running is None:
                log.debug("%d late readings for %s at %s", part.count, part.key, iso(part.start))
                continue
            for rule in self._rules or self._rules_for(part.kind):
                state = self._state.rule_states[rule.rule_id]
                for alert in rule.on_update(state, running, ts=ts):
                    out.append(("alerts", _alert_record(alert, now)))
        out.extend(self._close(windows.close_due(now), now))
        return out, StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[list[Output], bool]:
        now = self._clock()
        return self._close(self._state.windows.close_due(now), now), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Output], bool]:
        windows = self._state.windows
        out = self._close(windows.close_all(), self._clock())
        if windows.late_pending:
            log.warning(
                "%d late readings were not reported in a vital record (input ended); "
                "%d late in all for this key", windows.late_pending, windows.late_total,
            )
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """When the watermark reaches the oldest open window's end, in bytewax's system time."""
        close_at = self._state.windows.next_close_time()
        if close_at is None:
            return None
        # close_at is on the injected clock's timeline; bytewax wakes on the system clock
        return datetime.now(UTC) + timedelta(seconds=max(0.0, close_at - self._clock()))

    def snapshot(self) -> _KeyState:
        return copy.deepcopy(self._state)

    def _rules_for(self, kind: str) -> Sequence[Rule]:
        self._rules = self._context.rules.get(kind, ())
        for rule in self._rules:
            self._state.rule_states.setdefault(rule.rule_id, rule.new_state())
        return self._rules

    def _close(self, closed: list[Window], now: float) -> list[Output]:
        out: list[Output] = []
        for window in closed:
            for rule in self._rules or self._rules_for(window.kind):
                state = self._state.rule_states[rule.rule_id]
                for alert in rule.on_close(state, window):
                    out.append(("alerts", _alert_record(alert, now)))
            late = self._state.windows.take_late()
            record = vital_record(window, self._context.units[window.kind], late, emitted_at=now)
            out.append(("vitals", KafkaRecord(_key_of(window).encode(), orjson.dumps(record))))
        return out


def _alert_record(alert: Alert, now: float) -> KafkaRecord:
    return KafkaRecord(alert.id.encode(), orjson.dumps(alert.record(emitted_at=now)))
