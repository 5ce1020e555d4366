"""The city dataflow's steps: parsing a batch, one district's logic, the city's logic.

Thin Bytewax adapters around the pure pieces: :mod:`models.windows` and :mod:`models.vitals`
compute, :mod:`alerts.rules` and :mod:`alerts.indicator_rules` decide alerts; this module only
calls them in order and keeps their state per key. The stateful steps emit typed events
(:mod:`flows.events`): :class:`~flows.events.WindowClosed` (a window's vital signs),
:class:`~flows.events.IndicatorUpdate`, :class:`~flows.events.AlertRaised` (threshold,
indicator and anomaly alerts: :mod:`flows.anomaly` keeps the district's detectors) and the
district facts for the city step (:data:`~flows.events.CITY_FACTS`). Nothing here writes bytes:
:mod:`flows.topics` does, at the sinks.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.operators import StatefulBatchLogic

from alerts.anomaly_rules import AnomalyRule
from alerts.feedback import DetectorFeedback, detector_feedback
from alerts.indicator_rules import IndicatorRule
from alerts.rules import Rule
from connectors.metrics import DISTRICT_MISMATCHES
from flows.anomaly import Detectors
from flows.events import AlertRaised, IndicatorUpdate, Refused, WindowClosed
from models.errors import InvalidReading
from models.placement import Placed
from models.reading_batch import decode_batch
from models.readings import ReadingParser
from models.timefmt import iso
from models.vitals.city import CityState, CityVitals
from models.vitals.devices import decode_rejection, rejection_from_reading
from models.vitals.district import DistrictProgress, DistrictState, DistrictVitals, DistrictWindow
from models.vitals.records import CITY, IndicatorRecord, Rejection
from models.windows import Preaggregate, Window

__all__ = [
    "CityLogic", "Context", "DistrictLogic", "Feedback", "ParseBatch", "Rejections", "SlowWhenIdle",
    "count_mismatch",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Output = WindowClosed | IndicatorUpdate | AlertRaised | DistrictWindow | DistrictProgress
"""What ``district_vitals`` and ``city_vitals`` emit."""


@dataclass(frozen=True)
class Context:
    """What every key's logic shares: computations, rules, units and the clock."""

    vitals: DistrictVitals
    city: CityVitals
    units: Mapping[str, str]
    kind_rules: Mapping[str, Sequence[Rule]]
    indicator_rules: Sequence[IndicatorRule]
    clock: Clock
    anomaly: AnomalyRule | None = None   # None: no anomaly detection
    snapshots: bool = True
    """Whether the states' snapshots are kept (recovery is on). Bytewax asks for them at every
    epoch even without recovery; then they are None instead of a deep copy of every district's
    state (which, with thousands of devices, cost a third of the flow's time)."""


class ParseBatch:
    """``parse_reading``: a batch of messages to partial windows, rejections and refusals.

    A ``readings`` record is a batch of readings (:mod:`models.reading_batch`): each is checked
    again against the flow's districts, kinds, ranges and clock
    (:meth:`~models.readings.ReadingParser.check_batch`), and one that fails is refused alone (its
    dead letter: the reading's JSON, keyed by its device). A record that is no batch of a known
    format is refused whole; one holding a single reading (as bridges wrote before batches) is
    parsed as before.
    """

    def __init__(
        self, parser: ReadingParser, length: float, decibel_kinds: frozenset[str], clock: Clock
    ) -> None:
        self._parse = parser.parse
        self._check = parser.check_batch
        self._length = length
        self._decibels = decibel_kinds
        self._clock = clock

    def __call__(self, messages: list[Any]) -> list[Window | Rejection | Refused]:
        now = self._clock()
        parts = Preaggregate(self._length, self._decibels)  # in the order readings come
        out: list[Window | Rejection | Refused] = []
        for message in messages:
            value = message.value or b""
            try:
                batch = decode_batch(value)
                if batch is None:
                    parts.add_readings([self._parse(value, None, now)])
                    continue
            except InvalidReading as exc:
                _refuse(out, message, exc, now, message.key)
                continue
            good, refused = self._check(batch, now)
            parts.add_columns(good.series, good.series_ix, good.device_ids, good.values, good.ts)
            for exc in refused:  # each refused reading alone, keyed by its device
                device = orjson.loads(exc.payload)["device_id"]
                _refuse(out, message, exc, now, device.encode())
        if out:
            log.debug("refused some readings of %d records", len(messages))
        out.extend(parts.windows())
        return out


def count_mismatch(device_id: str, placed: Placed) -> None:
    """A reading whose topic named another district than its position's: counted per device
    (``cityheart_district_mismatches_total``); the position's district is the one used."""
    DISTRICT_MISMATCHES.labels(device_id).inc()
    log.debug("device %s: topic says %s, its position %s is in %s", device_id, placed.given,
              placed.position, placed.district)


class Rejections:
    """``decode_rejections``: the bridge's rejection records (its out-of-range refusals), for
    device health; a record that is not one is skipped."""

    def __call__(self, messages: list[Any]) -> list[Rejection]:
        out = []
        for message in messages:
            rejection = decode_rejection(message.value or b"")
            if rejection is not None:
                out.append(rejection)
        return out


class Feedback:
    """``detector_feedback``: incident records (the flow's own incidents topic read back) to
    the :class:`~alerts.feedback.DetectorFeedback` they carry for the anomaly detectors."""

    def __call__(self, messages: list[Any]) -> list[DetectorFeedback]:
        out = []
        for message in messages:
            try:
                record = orjson.loads(message.value or b"")
            except orjson.JSONDecodeError:
                continue
            feedback = detector_feedback(record) if isinstance(record, dict) else None
            if feedback is not None:
                out.append(feedback)
        return out


class SlowWhenIdle(FixedPartitionedSource[Any, Any]):
    """A source whose partitions, when they have nothing, are asked again only after ``idle_s``.

    Bytewax polls an empty source every millisecond; the rejections topic is usually empty and
    its out-of-range counts are judged over an hour, so polling it a few times a second is
    plenty and saves the flow a busy loop.
    """

    def __init__(self, source: FixedPartitionedSource[Any, Any], idle_s: float = 0.5) -> None:
        self._source = source
        self._idle = timedelta(seconds=idle_s)

    def list_parts(self) -> list[str]:
        """The wrapped source's partitions."""
        return self._source.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _SlowPartition:
        """The wrapped source's partition, polled slowly while it is empty."""
        return _SlowPartition(self._source.build_part(step_id, for_part, resume_state), self._idle)


class _SlowPartition(StatefulSourcePartition[Any, Any]):
    def __init__(self, part: StatefulSourcePartition[Any, Any], idle: timedelta) -> None:
        self._part = part
        self._idle = idle
        self._awake: datetime | None = None

    def next_batch(self) -> Iterable[Any]:
        batch = list(self._part.next_batch())
        self._awake = None if batch else datetime.now(UTC) + self._idle
        return batch

    def next_awake(self) -> datetime | None:
        return self._awake or self._part.next_awake()

    def snapshot(self) -> Any:
        return self._part.snapshot()

    def close(self) -> None:
        self._part.close()


def _refuse(out: list[Any], message: Any, exc: InvalidReading, now: float,
            key: bytes | None) -> None:
    """Refuse a reading (or a whole record): its dead letter, and a Rejection for device
    health when it was out of range."""
    headers = dict(getattr(message, "headers", None) or ())
    out.append(Refused(key, exc.payload, exc.reason, exc.detail,
                       headers.get("mqtt_topic") or b"", now))
    if exc.reason == "out_of_range":
        rejection = rejection_from_reading(exc.payload)
        if rejection is not None:
            out.append(rejection)


@dataclass
class DistrictKeyState:
    """The picklable state of one district: vital signs, every rule's memory, its detectors."""

    vitals: DistrictState
    kind_rules: dict[str, Any] = field(default_factory=dict)
    indicator_rules: dict[str, Any] = field(default_factory=dict)
    anomaly: Detectors = field(default_factory=Detectors)


class DistrictLogic(StatefulBatchLogic[Window | Rejection, Output, DistrictKeyState | None]):
    """``district_vitals`` for one district."""

    def __init__(self, context: Context, resume: DistrictKeyState | None) -> None:
        self._context = context
        self._vitals = context.vitals
        self._clock = context.clock
        self._state = resume
        if resume is not None and not hasattr(resume, "anomaly"):
            resume.anomaly = Detectors()  # a snapshot from before anomaly detection
        if resume is not None:  # a restart: the replay must find the windows still open
            self._vitals.resume(resume.vitals, self._clock())

    def on_batch(self, values: list[Window | Rejection]) -> tuple[list[Output], bool]:
        now = self._clock()
        if self._state is None:
            self._state = DistrictKeyState(self._vitals.new_state(values[0].district))
        state = self._state
        # windows the watermark passed while idle close first, as if on_notify had run on time
        out = self._close(now)
        for item in values:
            if type(item) is Rejection:
                self._vitals.reject(state.vitals, item)
                continue
            if type(item) is DetectorFeedback:
                for line in state.anomaly.on_feedback(item):
                    log.info("anomaly feedback: %s", line)
                continue
            assert isinstance(item, Window)
            ts = item.last_ts  # read first: merge may adopt the part as the running window
            running = self._vitals.merge(state.vitals, item, now)
            if running is None:
                log.debug("%d late readings for %s at %s", item.count, item.key, iso(item.start))
                continue
            for rule in self._context.kind_rules.get(item.kind, ()):
                rule_state = state.kind_rules.get(rule.rule_id)
                if rule_state is None:
                    rule_state = state.kind_rules[rule.rule_id] = rule.new_state()
                out += [AlertRaised(alert, now)
                        for alert in rule.on_update(rule_state, running, ts=ts)]
        out.extend(self._close(now))
        return out, StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[list[Output], bool]:
        return self._close(self._clock()), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Output], bool]:
        if self._state is None:
            return [], StatefulBatchLogic.RETAIN
        out = self._close(self._clock(), final=True)
        for kind, kind_state in self._state.vitals.kinds.items():
            windows = kind_state.windows
            if windows.late_pending:
                log.warning(
                    "%d late readings of %s/%s were not reported in a vital record (input "
                    "ended); %d late in all", windows.late_pending, self._state.vitals.district,
                    kind, windows.late_total,
                )
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """When a window closes or a kind is done with the next one, in bytewax's system time."""
        if self._state is None:
            return None
        wake = self._vitals.next_wake(self._state.vitals)
        if wake is None:
            return None
        # wake is on the injected clock's timeline; bytewax wakes on the system clock
        return datetime.now(UTC) + timedelta(seconds=max(0.0, wake - self._clock()))

    def snapshot(self) -> DistrictKeyState | None:
        assert self._state is not None
        return copy.deepcopy(self._state) if self._context.snapshots else None

    def _close(self, now: float, *, final: bool = False) -> list[Output]:
        assert self._state is not None
        state = self._state
        closed = self._vitals.close(state.vitals, now, final=final)
        out: list[Output] = []
        for window, late in closed.windows:
            for rule in self._context.kind_rules.get(window.kind, ()):
                rule_state = state.kind_rules.get(rule.rule_id)
                if rule_state is not None:
                    out += [AlertRaised(alert, now) for alert in rule.on_close(rule_state, window)]
            out.append(WindowClosed(window, self._context.units[window.kind], late, now))
            if self._context.anomaly is not None:
                out += [AlertRaised(alert, now)
                        for alert in state.anomaly.on_window(self._context.anomaly, window)]
        out += _indicator_outputs(
            closed.records, self._context.indicator_rules, state.indicator_rules, now
        )
        out += closed.to_city
        for problem in closed.problems:
            log.warning("indicator not computed: %s", problem)
        return out


class CityLogic(StatefulBatchLogic[DistrictWindow | DistrictProgress, Output, Any]):
    """``city_vitals``: the whole city, from every district's computed windows."""

    def __init__(self, context: Context, resume: tuple[CityState, dict] | None) -> None:
        self._context = context
        self._city = context.city
        self._clock = context.clock
        self._state, self._rules = resume or (context.city.new_state(), {})

    def on_batch(
        self, values: list[DistrictWindow | DistrictProgress]
    ) -> tuple[list[Output], bool]:
        records: list[IndicatorRecord] = []
        for fact in values:
            records += self._city.on_district(self._state, fact)
        return self._publish(records), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Output], bool]:
        return self._publish(self._city.close_all(self._state)), StatefulBatchLogic.RETAIN

    def snapshot(self) -> tuple[CityState, dict] | None:
        if not self._context.snapshots:
            return None
        return copy.deepcopy((self._state, self._rules))

    def _publish(self, records: list[IndicatorRecord]) -> list[Output]:
        return _indicator_outputs(records, self._context.indicator_rules, self._rules,
                                  self._clock())


def _indicator_outputs(
    records: Sequence[IndicatorRecord], rules: Sequence[IndicatorRule],
    rule_states: dict[str, Any], now: float,
) -> list[Output]:
    out: list[Output] = []
    for record in records:
        out.append(IndicatorUpdate(record, now))
        for rule in rules:
            if rule.indicator != record.indicator or not rule.applies_to(record.district):
                continue
            key = rule.rule_id if record.district != CITY else f"{rule.rule_id}@city"
            rule_state = rule_states.get(key)
            if rule_state is None:
                rule_state = rule_states[key] = rule.new_state()
            out += [AlertRaised(alert, now) for alert in rule.on_record(rule_state, record)]
    return out
