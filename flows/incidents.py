"""The city flow's incident steps: the one writer of every incident's events, per district.

    events = incident_steps(settings.incidents, routed_alerts, command_messages, log_messages,
                            clock=clock, log_id="<topic id>", restored=plan.by_district(),
                            names=DisplayNames.from_settings(settings))
    # IncidentChanged and CommandResult items: flows.topics.IncidentOutputs makes their records

Steps (ids are stable):

``tag_alerts``
    each routed alert (:class:`~flows.events.AlertRaised`), tagged as an alert.
``decode_commands`` (when a commands source is given)
    each ``commands`` message: a :class:`~alerts.commands.Command` from the dispatch API. One
    that cannot be read is logged and answered nowhere (it has no trustworthy id).
``decode_incident_log`` → ``merge_incident_log`` (when the incidents topic is read back)
    the events this step wrote before, as the topic kept them.
``merge_commands`` → ``key_by_incident_district``
    alerts, commands and logged events, keyed by district; with ``incidents.spatial_rules``
    all under one key (:data:`ALL_DISTRICTS`), since a located incident may span districts.
``incidents``
    per district, one :class:`IncidentLogic` holding a :class:`~alerts.incidents.GroupingState`:

    - an alert opens an incident or joins one (:class:`~alerts.incidents.IncidentGrouper`);
      duplicates and suppressed alerts make nothing; an alert that cannot become an incident
      is logged and skipped;
    - a command is executed against the incident as this step knows it
      (:func:`~alerts.commands.execute`: permission, then transition; a ``create`` command
      opens the incident of a person's report; the suppression commands add, end or list this
      district's maintenance windows, :mod:`alerts.suppressions`); its answer goes to the
      ``command_results`` topic, its events (if any) like every other event;
    - escalation: every :data:`ESCALATION_CHECK_S` (and before each item) incidents whose
      acknowledgement is overdue on the clock escalate (:meth:`IncidentGrouper.escalate`);
    - a logged event (the topic read back) that the state has not seen - the step wrote it
      after the snapshot it restarted from - is applied, so the state catches up with what
      the topic already holds instead of numbering new events over it; the step's own events,
      read back in normal running, are already known and cost a lookup. One that cannot be
      applied (its incident is unknown here, or events before it are missing: a ``restore``
      event, see :mod:`alerts.reconcile`) brings the incident it carries instead;
    - ``restored`` incidents (what :func:`alerts.reconcile.reconcile` took up again from
      history at the flow's start) join a district's state before its first item, unless the
      state knows them at the same or a later event already.

    New incidents are numbered in the event log ``log_id`` (the ``incidents`` topic's id,
    :func:`alerts.incidents.incident_id`).

    Incidents no longer active and last updated more than :data:`QUIET_S` before the district's
    newest alert leave the state (:meth:`~alerts.incidents.IncidentGrouper.forget`), so it
    stays small. A command already applied (its id is remembered with its incident) is not
    applied again when the commands topic is read again after a restart.

The step emits :class:`~flows.events.IncidentChanged` (an event and the incident after it) and
:class:`~alerts.commands.CommandResult` items; :class:`flows.topics.IncidentOutputs` turns them
into the records of the ``incidents`` topic, each routed department's dispatch queue and
``command_results``, at the sink.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import bytewax.operators as op
import orjson
from bytewax.dataflow import Stream
from bytewax.operators import StatefulLogic

from alerts.commands import (
    Command,
    CommandResult,
    InvalidCommand,
    execute,
    execute_suppression,
)
from alerts.incidents import DisplayNames, GroupingState, IncidentGrouper, InvalidAlert
from alerts.lifecycle import Incident, IncidentError, IncidentEvent, apply
from alerts.rules import Alert
from alerts.suppressions import SUPPRESSION_ACTIONS
from flows.events import AlertRaised, IncidentChanged
from flows.topics import IncidentOutputs
from settings.incidents import IncidentSettings

__all__ = [
    "ALL_DISTRICTS",
    "ESCALATION_CHECK_S",
    "QUIET_S",
    "IncidentEvents",
    "IncidentLogic",
    "IncidentOutputs",  # (flows.topics' serialiser, here for callers that drive the step)
    "incident_steps",
]

log = logging.getLogger(__name__)

QUIET_S = 86400.0
"""Incidents no longer active and not updated for this long leave the flow's state."""

ALL_DISTRICTS = "*"
"""The one key of the incident step when spatial rules may join alerts of several districts."""

ESCALATION_CHECK_S = 1.0
"""How often (wall seconds) a district with an escalation pending looks at its clock."""

Clock = Callable[[], float]
Item = tuple[str, Any]  # ("alert", Alert or record dict), ("command", Command),
                        # ("logged", record dict)
T = TypeVar("T")


class Outputs(Protocol[T]):
    """How the step's events leave it: :class:`IncidentEvents` (typed, the flow's) or
    :class:`~flows.topics.IncidentOutputs` (records at once)."""

    def event_records(self, event: IncidentEvent, incident: Incident) -> list[T]:
        """What an incident event (and the incident after it) becomes."""
        ...

    def result_record(self, result: CommandResult) -> T:
        """What a command's answer becomes."""
        ...


class IncidentEvents:
    """The step's events as they are: :class:`~flows.events.IncidentChanged` and
    :class:`~alerts.commands.CommandResult` (serialised at the sink)."""

    def event_records(self, event: IncidentEvent, incident: Incident) -> list[IncidentChanged]:
        """One :class:`~flows.events.IncidentChanged`."""
        return [IncidentChanged(event, incident)]

    def result_record(self, result: CommandResult) -> CommandResult:
        """The answer itself."""
        return result


class IncidentLogic(StatefulLogic[Item, T, GroupingState], Generic[T]):
    """``incidents`` for one district (see module doc); ``outputs`` says what its events
    become (the flow passes :class:`IncidentEvents`)."""

    def __init__(
        self, grouper: IncidentGrouper, outputs: Outputs[T], clock: Clock,
        resume: GroupingState | None, restored: Mapping[str, Sequence[Incident]] | None = None,
        *, key: Callable[[Item], str] | None = None,
    ) -> None:
        self._grouper = grouper
        self._outputs = outputs
        self._clock = clock
        self._state = resume if resume is not None else grouper.new_state()
        self._restored = restored or {}
        self._took_restored = not self._restored
        self._key = key or _district

    def on_item(self, value: Item) -> tuple[list[T], bool]:
        if not self._took_restored:  # the first item names this logic's district
            self._took_restored = True
            for incident in self._restored.get(self._key(value), ()):
                self._adopt(incident)
        out = self._escalate()
        tag, item = value
        if tag == "command":
            out += self._command(item)
        elif tag == "logged":
            self._catch_up(item)
        else:
            out += self._alert(item)
        return out, StatefulLogic.RETAIN

    def on_notify(self) -> tuple[list[T], bool]:
        return self._escalate(), StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """Soon, while an escalation is pending: the clock may be injected, so poll it."""
        due = self._grouper.next_due(self._state)
        if due is None:
            return None
        wait = min(ESCALATION_CHECK_S, max(0.0, due - self._clock()))
        return datetime.now(UTC) + timedelta(seconds=wait)

    def snapshot(self) -> GroupingState:
        return copy.deepcopy(self._state)

    def _alert(self, alert: Alert | dict[str, Any]) -> list[T]:
        try:
            grouped = self._grouper.add(self._state, alert)
        except InvalidAlert as exc:
            log.warning("incidents: %s", exc)
            return []
        if grouped.incident is None or not grouped.events:
            return []
        self._forget_quiet(newest=grouped.incident.last_alert_at)
        return [r for e in grouped.events for r in self._outputs.event_records(e, grouped.incident)]

    def _command(self, command: Command) -> list[T]:
        if command.id in self._state.commands:  # read again after a restart: done already
            log.info("incidents: command %s was applied before; not again", command.id)
            return []
        if command.action in SUPPRESSION_ACTIONS:
            return self._suppression(command)
        known = self._state.incidents.get(command.incident_id)
        result, after = execute(command, known, self._grouper.settings)
        out = [self._outputs.result_record(result)]
        if result.ok and after is not None and result.event is not None:
            self._state.incidents[after.id] = after
            self._state.commands[command.id] = after.id
            event = IncidentEvent.from_record(result.event)
            out = self._outputs.event_records(event, after) + out
        else:
            log.info("incidents: command %s refused: %s", command.id, result.detail)
        return out

    def _suppression(self, command: Command) -> list[T]:
        result, events = execute_suppression(command, self._state)
        if result.ok and command.action != "list_suppressions":
            self._state.commands[command.id] = command.incident_id
        out: list[T] = []
        for event in events:
            out += self._outputs.event_records(event, self._state.incidents[event.incident_id])
        return [*out, self._outputs.result_record(result)]

    def _catch_up(self, record: dict[str, Any]) -> None:
        known = self._state.incidents.get(str(record.get("incident_id")))
        sequence = record.get("sequence")
        if known is not None and isinstance(sequence, int) and sequence <= known.sequence:
            return  # written by this state: the normal case
        try:
            applied = self._grouper.apply(self._state, IncidentEvent.from_record(record))
        except (IncidentError, KeyError, TypeError, ValueError) as exc:
            applied = self._carried(record, exc)
        else:
            applied = applied or self._carried(record, None)
        if applied is not None:
            log.info("incidents: caught up with logged event %s", record.get("id"))
            command_id = (record.get("details") or {}).get("command_id")
            if command_id:
                self._state.commands[str(command_id)] = applied.id

    def _carried(self, record: dict[str, Any], error: Exception | None) -> Incident | None:
        """The incident a logged event carries (the incident after it), taken into the state
        when the event itself cannot be applied; None (logged) if it carries none."""
        try:
            carried = Incident.from_record(record["incident"])
            if carried.sequence != int(record["sequence"]):
                msg = f"it carries the incident at event {carried.sequence}"
                raise ValueError(msg)
        except (KeyError, TypeError, ValueError) as exc:
            if error is not None:
                log.warning("incidents: logged event %s not applied: %s (%s)",
                            record.get("id"), error, exc)
            return None
        return self._adopt(carried)

    def _adopt(self, incident: Incident) -> Incident | None:
        """Take ``incident`` into the state unless it knows it at that event or later."""
        known = self._state.incidents.get(incident.id)
        if known is not None and known.sequence >= incident.sequence:
            return None
        self._state.incidents[incident.id] = incident
        return incident

    def _escalate(self) -> list[T]:
        incidents = dict(self._state.incidents)  # (frozen Incidents: a shallow copy is "before")
        out: list[T] = []
        for event in self._grouper.escalate(self._state, now=self._clock()):
            incident = incidents[event.incident_id] = apply(incidents[event.incident_id], event)
            out += self._outputs.event_records(event, incident)
        return out

    def _forget_quiet(self, *, newest: float) -> None:
        self._grouper.forget(self._state, before=newest - QUIET_S)


def incident_steps(
    settings: IncidentSettings, alerts: Stream[AlertRaised],
    command_messages: Stream[Any] | None = None, log_messages: Stream[Any] | None = None, *,
    clock: Clock, log_id: str = "",
    restored: Mapping[str, Sequence[Incident]] | None = None, names: DisplayNames | None = None,
) -> Stream[IncidentChanged | CommandResult]:
    """The incident events and command answers of routed alerts and commands; new incidents
    are numbered in the event log ``log_id``, ``restored`` incidents (by district) join the
    state (see the module doc). ``names`` gives the district and kind names incident titles
    use (default: their ids)."""
    items = op.map("tag_alerts", alerts, _tag_alert)
    if log_messages is not None:
        logged = op.filter_map("decode_incident_log", log_messages, _logged)
        items = op.merge("merge_incident_log", items, logged)
    if command_messages is not None:
        commands = op.filter_map("decode_commands", command_messages, _command)
        items = op.merge("merge_commands", items, commands)
    key = _one_key if settings.spatial_rules else _district
    keyed = op.key_on("key_by_incident_district", items, key)
    grouper = IncidentGrouper(settings, names, log=log_id)
    if settings.spatial_rules and restored:
        restored = {ALL_DISTRICTS: [i for found in restored.values() for i in found]}

    def logic(resume: GroupingState | None) -> IncidentLogic[Any]:
        return IncidentLogic(grouper, IncidentEvents(), clock, resume, restored, key=key)

    logic_stream = op.stateful("incidents", keyed, logic)
    return op.map("incident_events", logic_stream, _event)


def _tag_alert(raised: AlertRaised) -> Item:
    return ("alert", raised.alert)


def _command(message: Any) -> Item | None:
    try:
        return ("command", Command.from_record(orjson.loads(message.value)))
    except (orjson.JSONDecodeError, InvalidCommand) as exc:
        log.warning("incidents: unreadable command at key %r: %s", message.key, exc)
        return None


def _logged(message: Any) -> Item | None:
    try:
        record = orjson.loads(message.value)
        record["district"] = record["incident"]["district"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return ("logged", record)


def _one_key(_item: Item) -> str:
    return ALL_DISTRICTS


def _district(item: Item) -> str:
    tag, value = item
    if tag == "logged" or (tag == "alert" and isinstance(value, dict)):
        return str(value.get("district"))
    return str(value.district)


def _event(keyed: tuple[str, Any]) -> Any:
    return keyed[1]
