"""Warnings to the public: an incident as a CAP 1.2 message (OASIS Common Alerting Protocol).

Pure: the incident, its events and the city's districts in, the XML out::

    message = cap_message(incident, events, districts=settings.districts, names=names,
                          sender="cityheart@san-francisco")
    message.identifier, message.msg_type, message.references, message.xml

An incident's messages follow its events. While it has only its ``open`` event it is an
``Alert``; after any other event it is an ``Update`` (resolved as confirmed: ``responseType``
``AllClear``, urgency ``Past``) or a ``Cancel`` (resolved as a false alarm, or merged into
another incident), whose ``<references>`` name the original ``Alert``
(``sender,identifier,sent``). The identifier is ``<incident id>-<event number>``, so the same
incident at the same event is always the same message; ``sent`` is the time of that event.

The area is the incident's district: its name, its boundary as a ``<polygon>`` and, when the
incident was reported at a position, a ``<circle>`` of :data:`CIRCLE_KM` around it. Severity
maps warning/critical/emergency to Moderate/Severe/Extreme; the category comes from the kind
(:data:`CATEGORIES`, else ``Other``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from alerts.incidents import DisplayNames
from alerts.lifecycle import Incident, IncidentEvent

__all__ = ["CAP_NAMESPACE", "CATEGORIES", "CIRCLE_KM", "CapMessage", "cap_message",
           "cap_time"]

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
CIRCLE_KM = 0.5
"""The radius of the circle around a reported position, in km."""
CATEGORIES = {
    "pm25": "Env", "pm10": "Env", "no2": "Env", "o3": "Env", "so2": "Env", "co": "Env",
    "aqi": "Env", "aqi_instant": "Env", "noise": "Env",
    "rainfall": "Met", "water_level": "Met", "temperature": "Met", "humidity": "Met",
    "wind": "Met", "traffic": "Transport", "traffic_speed": "Transport", "power": "Infra",
    "power_load": "Infra", "water_pressure": "Infra", "device_health": "Infra",
    "crowd": "Safety", "crowd_density": "Safety",
}
_SEVERITY = {"warning": "Moderate", "critical": "Severe", "emergency": "Extreme"}
_URGENCY = {"warning": "Expected", "critical": "Immediate", "emergency": "Immediate"}


@dataclass(frozen=True, slots=True)
class CapMessage:
    """One CAP message: its identifier, type, the messages it references and its XML."""

    identifier: str
    sent: str
    msg_type: str
    references: str | None
    xml: str


def cap_time(ts: float) -> str:
    """A CAP ``dateTime``: whole seconds, the zone as ``+00:00`` (CAP allows no ``Z``)."""
    return datetime.fromtimestamp(ts, UTC).replace(microsecond=0).isoformat()


def cap_message(
    incident: Incident, events: Iterable[IncidentEvent], *, districts: Sequence[Any],
    names: DisplayNames | None = None, sender: str = "cityheart", language: str = "en-US",
) -> CapMessage:
    """The CAP 1.2 message of ``incident`` as its last event left it (see the module doc).

    ``districts`` are the city's (``id``, ``name``, ``polygon`` of [lon, lat] points).
    """
    names = names or DisplayNames()
    by_sequence = {e.sequence: e for e in events}
    opened = by_sequence.get(1)
    opened_at = opened.ts if opened is not None else incident.opened_at
    last = by_sequence.get(incident.sequence)
    sent = cap_time(last.ts if last is not None else incident.updated_at)
    identifier = _identifier(incident.id, incident.sequence)
    msg_type, references = "Alert", None
    if incident.sequence > 1:
        cancelled = incident.merged_into is not None or incident.outcome == "false_alarm"
        msg_type = "Cancel" if cancelled else "Update"
        references = f"{sender},{_identifier(incident.id, 1)},{cap_time(opened_at)}"
    alert = ET.Element("alert", xmlns=CAP_NAMESPACE)
    for tag, text in (("identifier", identifier), ("sender", sender), ("sent", sent),
                      ("status", "Actual"), ("msgType", msg_type), ("scope", "Public")):
        ET.SubElement(alert, tag).text = text
    if references is not None:
        ET.SubElement(alert, "references").text = references
    ET.SubElement(alert, "incidents").text = incident.id
    alert.append(_info(incident, districts, names, language))
    xml = ET.tostring(alert, encoding="unicode", xml_declaration=False)
    return CapMessage(identifier, sent, msg_type, references,
                      '<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n")


def _identifier(incident_id: str, sequence: int) -> str:
    return f"{incident_id}-{sequence}"


def _info(incident: Incident, districts: Sequence[Any], names: DisplayNames,
          language: str) -> ET.Element:
    info = ET.Element("info")
    all_clear = incident.state in ("resolved", "closed") and incident.outcome == "confirmed"
    fields = [("language", language), ("category", CATEGORIES.get(incident.kind, "Other")),
              ("event", names.kind(incident.kind))]
    if all_clear:
        fields.append(("responseType", "AllClear"))
    fields += [("urgency", "Past" if not incident.active else _URGENCY[incident.severity]),
               ("severity", _SEVERITY[incident.severity]), ("certainty", "Observed"),
               ("senderName", "cityheart"), ("headline", incident.title[:160])]
    if incident.description:
        fields.append(("description", incident.description))
    for tag, text in fields:
        ET.SubElement(info, tag).text = text
    info.append(_area(incident, districts, names))
    return info


def _area(incident: Incident, districts: Sequence[Any], names: DisplayNames) -> ET.Element:
    area = ET.Element("area")
    ET.SubElement(area, "areaDesc").text = names.district(incident.district)
    district = next((d for d in districts if d.id == incident.district), None)
    if district is not None:
        ring = [f"{lat:.6f},{lon:.6f}" for lon, lat in district.polygon]
        ET.SubElement(area, "polygon").text = " ".join(ring)
    if incident.lat is not None and incident.lon is not None:
        ET.SubElement(area, "circle").text = f"{incident.lat:.6f},{incident.lon:.6f} {CIRCLE_KM:g}"
    return area
