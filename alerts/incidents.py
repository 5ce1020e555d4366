"""Alerts into incidents: one incident per rule, district and kind while alerts keep coming.

The flow keeps one picklable :class:`GroupingState` (per district, or one for all) and shows it
every alert the rules fire; :meth:`IncidentGrouper.add` says what became of it and returns the
incident events to store and publish::

    grouper = IncidentGrouper(settings.incidents, DisplayNames.from_settings(settings))
    state = grouper.new_state()
    grouped = grouper.add(state, alert)    # an Alert, or an alerts wire record (parse_alert)
    grouped.status                         # opened | joined | duplicate | suppressed
    grouped.incident.alert_count, grouped.incident.severity, grouped.events
    grouper.apply(state, event)                  # keep state in step with people's actions
    grouper.escalate(state, now=now)             # escalation events of what is overdue
    grouper.next_due(state)                      # when to call escalate next (a timer)
    grouper.forget(state, before=now - 86400)    # drop resolved/closed incidents quiet since
                                                 # (and run-time windows ended before)

Grouping: an alert joins the active (not resolved or closed) incident of its district that
already has its rule and kind and whose alerts span reaches within ``grouping_window_s`` of the
alert's time (a report's alert, rule ``report.<kind>``, and an incident with one need only the
kind: :mod:`alerts.report_alerts`); the incident's alert count grows and its severity becomes the
highest seen.
Otherwise a correlation rule listing the alert's kind can join it to an active incident of the
district with another of the rule's kinds, within the rule's ``window_s`` (rain + water
level). Otherwise a spatial rule (``incidents.spatial_rules``) listing the alert's kind can join
a located alert to an active incident of any district with another of the rule's kinds, within
the rule's ``within_m`` metres and ``within_s`` seconds (:func:`alerts.spatial.spatial_match`),
routing it to the rule's departments too. Otherwise the alert opens an incident. An incident's
place (its districts and the circle around its alerts' positions) follows from its events
(:mod:`alerts.lifecycle`). An alert a suppression window covers (one of config.yaml's, or one
added at run time: ``state.suppressions``) does none of this: it is reported as ``suppressed``
and changes nothing.

Times are event times (the alert's ``ts``), so a replay groups the same way. The incident id
hashes the first alert's rule, district, kind, the start of its grouping window (multiples
of ``grouping_window_s`` since the epoch) and the grouper's ``log``: the identity of the event
log the incidents are written to (the flow passes the ``incidents`` topic's Kafka topic id);
event ids are incident id + sequence number. An alert id seen before is a duplicate and
changes nothing.

Why the log's identity. The id must be the same whenever the same log is replayed (a restart
reads the topics again and re-emits the same alerts: they must land on the same incidents, not
open new ones), so it cannot come from a clock, a counter kept outside the log or a random
number. Within one log the rest of the hash and the state make it unique (a second incident in
the same window of a state that still knows the first gets ``-2``). But a log can be lost (an
in-memory broker restarted, a topic recreated) while PostgreSQL keeps its history: the next
run, starting from an empty state, would hash the same rule, district, kind and window into the
id of an incident history already holds, and history would then show one id with the events of
two incidents. The first alert's own id does not prevent that (alert ids are deterministic too,
and a run restarted within the same window re-fires the same one), nor does its offset (a new
log starts again at offset 0). The topic id does: it is fixed when the topic is created, stays
the same for as long as the log exists (every replay of it), and a new log gets a new one.
With ``log=""`` (tests, brokers without topic ids) the id is the hash of the four alone.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from alerts.escalation import SYSTEM_ACTOR, escalate, next_due, suppression_for
from alerts.lifecycle import Incident, IncidentEvent, apply, restore_fields, to_epoch
from alerts.report_alerts import is_report_rule
from alerts.routing import merge, route
from alerts.rules import Alert
from alerts.spatial import spatial_match
from models.errors import CityheartError
from models.timefmt import iso
from settings.config import Settings
from settings.incidents import (
    SEVERITIES,
    CorrelationRule,
    IncidentSettings,
    SpatialRule,
    SuppressionWindow,
)
from settings.indicators import INDICATOR_NAMES

__all__ = [
    "AlertFacts",
    "alert_facts",
    "DisplayNames",
    "GroupingState",
    "Grouped",
    "IncidentGrouper",
    "InvalidAlert",
    "incident_id",
    "incident_title",
    "parse_alert",
]

Status = Literal["opened", "joined", "duplicate", "suppressed"]


class InvalidAlert(CityheartError):
    """Raised when an alert record lacks a field an incident needs, or has a wrong value."""

    def __init__(self, alert_id: Any, reason: str) -> None:
        super().__init__(alert_id, reason)
        self.alert_id = alert_id
        self.reason = reason

    def __str__(self) -> str:
        return f"alert {self.alert_id!r} cannot become an incident: {self.reason}"


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """What grouping needs of an ``alerts`` record; ``detector`` is the record's ``detector``
    or ``device_id`` (the anomaly detector or device behind it), if it has one; ``lat`` and
    ``lon`` where what raised it is, if known."""

    id: str
    rule: str
    district: str
    kind: str
    severity: str
    ts: float
    value: float | None = None
    detector: str | None = None
    lat: float | None = None
    lon: float | None = None

    @property
    def point(self) -> tuple[float, float] | None:
        """(lat, lon), or None when the alert is not located."""
        return None if self.lat is None or self.lon is None else (self.lat, self.lon)


def alert_facts(alert: Alert) -> AlertFacts:
    """The facts of an :class:`~alerts.rules.Alert` as a rule made it (valid by construction:
    no parsing; a value that is not finite is None, as on the wire)."""
    anomaly = alert.anomaly
    value = alert.value if math.isfinite(alert.value) else None
    return AlertFacts(alert.id, alert.rule, alert.district, alert.kind, alert.severity, alert.ts,
                      value, None if anomaly is None else anomaly.detector, alert.lat, alert.lon)


def parse_alert(record: Mapping[str, Any]) -> AlertFacts:
    """The facts of an ``alerts`` wire record; :class:`InvalidAlert` if one is missing or wrong."""
    alert_id = record.get("id")
    for name in ("id", "rule", "district", "kind", "severity"):
        if not isinstance(record.get(name), str) or not record[name]:
            raise InvalidAlert(alert_id, f"field {name!r} must be a non-empty string")
    if record["severity"] not in SEVERITIES:
        reason = f"severity {record['severity']!r} is not one of {list(SEVERITIES)}"
        raise InvalidAlert(alert_id, reason)
    ts = _number(record, "ts", to_epoch)
    if ts is None:
        raise InvalidAlert(alert_id, f"ts {record.get('ts')!r} is not a time")
    detector = record.get("detector") or record.get("device_id")
    lat, lon = _number(record, "lat", float), _number(record, "lon", float)
    if (lat is None) != (lon is None) or not (lat is None or -90 <= lat <= 90) or not (
            lon is None or -180 <= lon <= 180):
        raise InvalidAlert(alert_id, f"lat {lat!r} and lon {lon!r} are not a WGS84 position")
    return AlertFacts(
        record["id"], record["rule"], record["district"], record["kind"], record["severity"],
        ts, _number(record, "value", float), None if detector is None else str(detector),
        lat, lon,
    )


def _number(record: Mapping[str, Any], name: str, convert: Any) -> float | None:
    """``record[name]`` converted to a finite float; None when absent, InvalidAlert if wrong."""
    raw = record.get(name)
    try:
        number = None if raw is None or isinstance(raw, bool) else convert(raw)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if number is not None and not math.isfinite(number):
        raise InvalidAlert(record.get("id"), f"{name} {raw!r} is not a finite number or time")
    return number


@dataclass(frozen=True, slots=True)
class DisplayNames:
    """How people read district and kind ids: the names config.yaml gives them.

    An id without a name reads as itself. Kinds cover sensor kinds and indicators (an
    indicator rule's alert has the indicator as its kind).
    """

    districts: Mapping[str, str] = field(default_factory=dict)
    kinds: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> DisplayNames:
        """The districts' and kinds' ``name`` of config.yaml, and the indicators' names."""
        kinds = {**INDICATOR_NAMES, **{k: kind.name for k, kind in settings.kinds.items()}}
        return cls({d.id: d.name for d in settings.districts}, kinds)

    def district(self, district_id: str) -> str:
        """The district's name, or its id."""
        return self.districts.get(district_id) or district_id

    def kind(self, kind_id: str) -> str:
        """The kind's (or indicator's) name, or its id."""
        return self.kinds.get(kind_id) or kind_id


def incident_title(facts: AlertFacts, names: DisplayNames | None = None) -> str:
    """What the incident is about, for people: "Ozone past its threshold in Harbour"."""
    names = names or DisplayNames()
    kind, district = names.kind(facts.kind), names.district(facts.district)
    if facts.rule.startswith("anomaly."):
        return f"unusual {kind} in {district}"
    if facts.rule == f"{facts.kind}.threshold":
        return f"{kind} past its threshold in {district}"
    return f"{kind}: {facts.rule} in {district}"


def incident_id(rule: str, district: str, kind: str, window_start: float, log: str = "") -> str:
    """The deterministic id of the incident an alert opens (``inc-`` and 16 hex digits) in the
    event log ``log`` (its identity; see the module doc)."""
    text = f"{rule}|{district}|{kind}|{iso(window_start)}"
    if log:
        text += f"|{log}"
    return "inc-" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(slots=True)
class GroupingState:
    """The incidents grouping still knows, by id (picklable; JSON through to/from_record),
    and the people's commands applied to them (command id -> incident id), so that a command
    read again after a restart is not applied twice, and the suppression windows added at run
    time (:mod:`alerts.suppressions`), by id."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    suppressions: dict[str, SuppressionWindow] = field(default_factory=dict)

    def __getstate__(self) -> dict[str, Any]:
        return {"incidents": self.incidents, "commands": self.commands,
                "suppressions": self.suppressions}

    def __setstate__(self, state: Any) -> None:
        restore_fields(self, state)  # a snapshot from before ``suppressions`` has none

    def to_record(self) -> dict[str, Any]:
        """JSON-ready: ``{"incidents": [incident records]}``."""
        return {"incidents": [i.to_record() for i in self.incidents.values()]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GroupingState:
        """The state of a :meth:`to_record` dict."""
        incidents = (Incident.from_record(r) for r in record.get("incidents", ()))
        return cls({i.id: i for i in incidents})


@dataclass(frozen=True, slots=True)
class Grouped:
    """What became of one alert: the incident it opened or joined and the events that made."""

    status: Status
    incident: Incident | None
    events: tuple[IncidentEvent, ...] = ()
    suppressed_by: str | None = None


class IncidentGrouper:
    """Groups alerts into incidents under ``settings`` (grouping window, correlation, routing,
    suppression), titled with ``names``, numbering them in the event log ``log`` (its identity,
    see the module doc). Holds no state of its own: that is the :class:`GroupingState` passed in."""

    def __init__(
        self, settings: IncidentSettings, names: DisplayNames | None = None, *, log: str = ""
    ) -> None:
        self.settings = settings
        self.names = names or DisplayNames()
        self.window_s = settings.grouping_window_s
        self.log = log

    def new_state(self) -> GroupingState:
        """Fresh, empty state."""
        return GroupingState()

    def add(
        self, state: GroupingState, alert: Alert | AlertFacts | Mapping[str, Any]
    ) -> Grouped:
        """Group one alert (an Alert, its facts, or a wire record: :class:`InvalidAlert` if
        that lacks what an incident needs); updates ``state``."""
        if isinstance(alert, Alert):
            facts = alert_facts(alert)
        else:
            facts = alert if isinstance(alert, AlertFacts) else parse_alert(alert)
        for incident in state.incidents.values():
            if facts.id in incident.alert_ids:
                return Grouped("duplicate", incident)
        window = suppression_for((*self.settings.suppression, *state.suppressions.values()),
                                 district=facts.district, at=facts.ts, device=facts.detector,
                                 kind=facts.kind)
        if window is not None:
            return Grouped("suppressed", None, suppressed_by=window.id)
        target = self._own_incident(state, facts)
        correlation: CorrelationRule | SpatialRule | None = None
        if target is None:
            target, correlation = self._correlated(state, facts)
        if target is None:
            target, correlation = self._spatial(state, facts)
        if target is not None:
            return self._join(state, target, facts, correlation)
        return self._open(state, facts)

    def apply(self, state: GroupingState, event: IncidentEvent) -> Incident | None:
        """Apply an event made elsewhere (a person's action, an escalation) to ``state``.

        Returns the updated incident, or None when the incident is unknown here (forgotten,
        or grouped by another state) and the event is not its ``open``.
        """
        known = state.incidents.get(event.incident_id)
        if known is None and event.action != "open":
            return None
        incident = apply(known, event)
        state.incidents[incident.id] = incident
        return incident

    def escalate(self, state: GroupingState, *, now: float) -> list[IncidentEvent]:
        """Escalate every incident of ``state`` with a step due at ``now``; the events."""
        events: list[IncidentEvent] = []
        windows = tuple(state.suppressions.values())
        for key, incident in list(state.incidents.items()):
            state.incidents[key], fired = escalate(incident, self.settings, now=now,
                                                   windows=windows)
            events += fired
        return events

    def next_due(self, state: GroupingState) -> float | None:
        """The earliest time an escalation step of ``state`` falls due (for a timer)."""
        times = [next_due(i, self.settings) for i in state.incidents.values()]
        return min((t for t in times if t is not None), default=None)

    def forget(self, state: GroupingState, *, before: float) -> list[str]:
        """Drop resolved and closed incidents last updated before ``before``; their ids."""
        state.suppressions = {k: w for k, w in state.suppressions.items() if w.end_ts >= before}
        gone = [i.id for i in state.incidents.values() if not i.active and i.updated_at < before]
        for key in gone:
            del state.incidents[key]
        if gone:
            dropped = set(gone)
            state.commands = {c: i for c, i in state.commands.items() if i not in dropped}
        return gone

    def _own_incident(self, state: GroupingState, facts: AlertFacts) -> Incident | None:
        found = [
            i for i in state.incidents.values()
            if i.active and i.district == facts.district and _same_rule(facts.rule, i.rules)
            and facts.kind in i.kinds and _near(i, facts.ts, self.window_s)
        ]
        return max(found, key=lambda i: i.last_alert_at, default=None)

    def _correlated(
        self, state: GroupingState, facts: AlertFacts
    ) -> tuple[Incident | None, CorrelationRule | None]:
        for rule in self.settings.correlation:
            if facts.kind not in rule.kinds:
                continue
            found = [
                i for i in state.incidents.values()
                if i.active and i.district == facts.district
                and any(kind in rule.kinds for kind in i.kinds)
                and _near(i, facts.ts, rule.window_s)
            ]
            if found:
                return max(found, key=lambda i: i.last_alert_at), rule
        return None, None

    def _spatial(
        self, state: GroupingState, facts: AlertFacts
    ) -> tuple[Incident | None, SpatialRule | None]:
        rules = self.settings.spatial_rules
        if not rules or facts.point is None:
            return None, None
        found = [(i, rule) for i in state.incidents.values() if (rule := spatial_match(
            rules, kind=facts.kind, point=facts.point, ts=facts.ts, incident=i)) is not None]
        if not found:
            return None, None
        return max(found, key=lambda pair: pair[0].last_alert_at)

    def _open(self, state: GroupingState, facts: AlertFacts) -> Grouped:
        start = math.floor(facts.ts / self.window_s) * self.window_s
        base = new_id = incident_id(facts.rule, facts.district, facts.kind, start, self.log)
        number = 1
        while new_id in state.incidents:
            number += 1
            new_id = f"{base}-{number}"
        departments = route(self.settings.routing, district=facts.district, kinds=(facts.kind,),
                            severity=facts.severity, rules=(facts.rule,))
        details = {**_alert_details(facts), "district": facts.district,
                   "title": incident_title(facts, self.names)}
        event = IncidentEvent(new_id, 1, facts.ts, SYSTEM_ACTOR, "open", None, departments,
                              details)
        incident = apply(None, event)
        state.incidents[new_id] = incident
        return Grouped("opened", incident, (event,))

    def _join(
        self, state: GroupingState, incident: Incident, facts: AlertFacts,
        correlation: CorrelationRule | SpatialRule | None,
    ) -> Grouped:
        details = {**_alert_details(facts), "district": facts.district}
        extra: tuple[str, ...] = ()
        if correlation is not None:
            name = correlation.name if isinstance(correlation, SpatialRule) else correlation.id
            details["correlation"] = name
            if name not in incident.correlations:
                label = correlation.title or name
                details["title"] = f"{label} in {self.names.district(incident.district)}"
            if isinstance(correlation, SpatialRule):
                extra = correlation.departments
        kinds = (*incident.kinds, facts.kind)
        severity = max(incident.severity, facts.severity, key=SEVERITIES.index)
        departments = route(self.settings.routing, district=facts.district, kinds=kinds,
                            severity=severity, rules=(*incident.rules, facts.rule))
        departments = merge(departments, extra)
        event = IncidentEvent(incident.id, incident.sequence + 1, facts.ts, SYSTEM_ACTOR,
                              "alert", None, merge(incident.departments, departments), details)
        joined = apply(incident, event)
        state.incidents[joined.id] = joined
        return Grouped("joined", joined, (event,))


def _same_rule(rule: str, rules: Collection[str]) -> bool:
    """Whether an alert of ``rule`` may join an incident of ``rules`` (its kind matching): the
    same rule, or a report on either side (reports join what their kind and place already
    have, and sensor alerts join what reports opened)."""
    return rule in rules or is_report_rule(rule) or any(is_report_rule(r) for r in rules)


def _near(incident: Incident, ts: float, window_s: float) -> bool:
    return incident.first_alert_at - window_s <= ts <= incident.last_alert_at + window_s


def _alert_details(facts: AlertFacts) -> dict[str, Any]:
    details: dict[str, Any] = {"id": facts.id, "rule": facts.rule, "kind": facts.kind,
                               "severity": facts.severity, "value": facts.value}
    if facts.detector is not None:
        details["detector"] = facts.detector
    if facts.lat is not None and facts.lon is not None:
        details["lat"], details["lon"] = facts.lat, facts.lon
    return details
