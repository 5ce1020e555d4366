"""Where the city flow's events go, and their bytes: the one place that serialises them.

Every step before the sinks passes typed events (:mod:`flows.events`); right before each
``op.output`` a map turns them into :class:`~connectors.kafka.KafkaRecord` s with the
functions here, so each topic's wire format is written once::

    vitals_record(WindowClosed(...) or IndicatorUpdate(...))   # vitals topic
    alert_record(AlertRaised(...))                             # alerts topic
    dead_letter_record(Refused(...))                           # dead-letter topic
    IncidentOutputs(topics).records(IncidentChanged(...) or CommandResult(...))

- :class:`~flows.events.WindowClosed`: ``vitals`` (:func:`models.windows.vital_record`),
  key ``<district>/<kind>``;
- :class:`~flows.events.IndicatorUpdate`: ``vitals`` (``IndicatorRecord.record``), key
  ``<district>/indicator:<indicator>``;
- :class:`~flows.events.AlertRaised`: ``alerts`` (``Alert.record`` and ``departments``), key
  the alert id;
- :class:`~flows.events.Refused`: the dead-letter topic (original bytes, headers of
  :mod:`connectors.dead_letters`), the reading's key;
- :class:`~flows.events.IncidentChanged`: ``incidents`` and each routed department's dispatch
  queue (the event record and ``incident``), key the incident id;
- :class:`~alerts.commands.CommandResult`: ``command_results``, key the command id.
"""

from __future__ import annotations

from typing import Any

import orjson

from alerts.commands import CommandResult
from alerts.lifecycle import Incident, IncidentEvent
from connectors.dead_letters import dead_letter_headers
from connectors.kafka import KafkaRecord
from flows.events import AlertRaised, IncidentChanged, IndicatorUpdate, Refused, WindowClosed
from models.windows import vital_record
from settings.config import KafkaTopics

__all__ = [
    "IncidentOutputs", "alert_record", "dead_letter_record", "vitals_record",
]


def vitals_record(item: WindowClosed | IndicatorUpdate) -> KafkaRecord:
    """The ``vitals`` record of a closed window or of an indicator record."""
    if type(item) is WindowClosed:
        window = item.window
        record = vital_record(window, item.unit, item.late, emitted_at=item.emitted_at)
        return KafkaRecord(window.key.encode(), orjson.dumps(record))
    assert isinstance(item, IndicatorUpdate)
    indicator = item.record
    return KafkaRecord(indicator.key, orjson.dumps(indicator.record(emitted_at=item.emitted_at)))


def alert_record(item: AlertRaised) -> KafkaRecord:
    """The ``alerts`` record of a routed alert: its wire record with the ``departments`` it
    routes to last (so a department's dispatchers see the raw alerts of their incidents)."""
    alert = item.alert
    record = alert.record(emitted_at=item.emitted_at)
    record["departments"] = alert.departments
    return KafkaRecord(alert.id.encode(), orjson.dumps(record))


def dead_letter_record(item: Refused) -> KafkaRecord:
    """The dead letter of a reading the flow refused (original bytes, ``source`` flow)."""
    headers = dead_letter_headers(item.reason, item.detail, mqtt_topic=item.mqtt_topic,
                                  received_at=item.at, source="flow")
    return KafkaRecord(item.key, item.payload, headers=headers)


class IncidentOutputs:
    """How incident events and command answers become KafkaRecords, and on which topics
    (records name their :attr:`~connectors.kafka.KafkaRecord.topic`; None = ``incidents``)."""

    def __init__(self, topics: KafkaTopics) -> None:
        self.topics = topics

    def records(self, item: IncidentChanged | CommandResult) -> list[KafkaRecord]:
        """The records of one output of the incident step."""
        if type(item) is IncidentChanged:
            return self.event_records(item.event, item.incident)
        return [self.result_record(item)]

    def event_records(self, event: IncidentEvent, incident: Incident) -> list[KafkaRecord]:
        """The ``incidents`` record of ``event``, then one per department's dispatch queue
        (key = incident id, value = the event record plus ``"incident"``, the incident after
        it: what the recorder stores and departments consume). A transfer also goes to the
        department it took the incident from."""
        key = event.incident_id.encode()
        value = orjson.dumps({**event.to_record(), "incident": incident.to_record()})
        records = [KafkaRecord(key, value)]
        departments = list(incident.departments)
        left = event.details.get("from") if event.action == "transfer" else None
        if left and left not in departments:  # the department it was taken from learns so
            departments.append(left)
        records += [KafkaRecord(key, value, topic=self.topics.dispatch(department))
                    for department in departments]
        return records

    def result_record(self, result: Any) -> KafkaRecord:
        """The ``command_results`` record of a CommandResult, keyed by command id."""
        return KafkaRecord(result.command_id.encode(), orjson.dumps(result.to_record()),
                           topic=self.topics.command_results)
