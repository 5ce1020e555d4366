"""The city flow's incident steps: alerts grouped into incidents, per district.

    records = incident_steps(settings.incidents, alert_records)   # KafkaRecords for ``incidents``
    op.output("write_incidents", records, incidents_sink)

Steps (ids are stable):

``decode_alerts``
    each ``alerts`` KafkaRecord's JSON value.
``key_alerts_by_district``
    keyed by the alert's ``district``.
``group_incidents``
    per district, one :class:`~alerts.incidents.GroupingState` that
    :class:`~alerts.incidents.IncidentGrouper` shows every alert: an alert opens an incident
    or joins one (its count and peak severity grow); duplicates and suppressed alerts make
    nothing. An alert that cannot become an incident is logged and skipped. Incidents whose
    last alert is more than :data:`QUIET_S` (event time) before the district's newest alert
    are dropped from the state, so it stays small.
``incident_records``
    the incident events as ``incidents`` topic records: key = incident id, value = JSON of
    :meth:`~alerts.lifecycle.IncidentEvent.to_record` plus ``"incident"``, the incident record
    after the event (:meth:`~alerts.lifecycle.Incident.to_record`), which the recorder stores.

Escalation (:meth:`~alerts.incidents.IncidentGrouper.escalate` on a timer) is not run here
yet: acknowledgements are made outside the flow, so the flow cannot know what is overdue.
"""

from __future__ import annotations

import logging
from typing import Any

import bytewax.operators as op
import orjson
from bytewax.dataflow import Stream

from alerts.incidents import GroupingState, IncidentGrouper, InvalidAlert
from alerts.lifecycle import Incident, IncidentEvent
from connectors.kafka import KafkaRecord
from models.incident_config import IncidentSettings

__all__ = ["QUIET_S", "GroupIncidents", "incident_record", "incident_steps"]

log = logging.getLogger(__name__)

QUIET_S = 86400.0
"""Incidents quiet this long (event time) leave the flow's grouping state."""


def incident_record(event: IncidentEvent, incident: Incident) -> KafkaRecord:
    """The ``incidents`` topic record of ``event``, carrying ``incident`` (after the event)."""
    value = {**event.to_record(), "incident": incident.to_record()}
    return KafkaRecord(event.incident_id.encode(), orjson.dumps(value))


class GroupIncidents:
    """The ``group_incidents`` mapper: (state, alert record) -> (state, incident records)."""

    def __init__(self, settings: IncidentSettings) -> None:
        self.grouper = IncidentGrouper(settings)

    def __call__(
        self, state: GroupingState | None, alert: dict[str, Any]
    ) -> tuple[GroupingState, list[KafkaRecord]]:
        state = state if state is not None else self.grouper.new_state()
        try:
            grouped = self.grouper.add(state, alert)
        except InvalidAlert as exc:
            log.warning("group_incidents: %s", exc)
            return state, []
        if grouped.incident is None or not grouped.events:
            return state, []
        _forget_quiet(state, newest=grouped.incident.last_alert_at)
        return state, [incident_record(e, grouped.incident) for e in grouped.events]


def _forget_quiet(state: GroupingState, *, newest: float) -> None:
    quiet = [k for k, i in state.incidents.items() if i.last_alert_at < newest - QUIET_S]
    for key in quiet:
        del state.incidents[key]


def incident_steps(settings: IncidentSettings, alert_records: Stream[KafkaRecord]) -> Stream[Any]:
    """The incidents topic records of a stream of ``alerts`` KafkaRecords (see module doc)."""
    alerts = op.map("decode_alerts", alert_records, _decode)
    keyed = op.key_on("key_alerts_by_district", alerts, _district)
    grouped = op.stateful_map("group_incidents", keyed, GroupIncidents(settings))
    return op.flat_map("incident_records", grouped, _records)


def _decode(record: KafkaRecord) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(record.value)
    return value


def _district(alert: dict[str, Any]) -> str:
    return str(alert.get("district"))


def _records(keyed: tuple[str, list[KafkaRecord]]) -> list[KafkaRecord]:
    return keyed[1]
