"""What the anomaly detectors learn from people: incidents resolved as false alarms. Pure.

The flow reads its own ``incidents`` topic back and turns each record into, at most, one
:class:`DetectorFeedback` for the district's detectors::

    feedback = detector_feedback(record)   # None: nothing for the detectors
    feedback.false_alarm                   # True: mute similar deviations; False: undo that

- an anomaly incident (a rule ``anomaly.<kind>``) resolved or closed with outcome
  ``false_alarm`` says: the alerts of its detectors between its first and last alert were
  normal for those series;
- the same incident reopened takes that back.

Threshold rules are not detectors: their false alarms are counted in the KPIs, not learnt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alerts.lifecycle import to_epoch

__all__ = ["ANOMALY_RULE_PREFIX", "DetectorFeedback", "detector_feedback"]

ANOMALY_RULE_PREFIX = "anomaly."


@dataclass(frozen=True, slots=True)
class DetectorFeedback:
    """A false alarm (or its withdrawal) for some detectors of one district."""

    district: str
    incident_id: str
    detectors: tuple[str, ...]
    since: float
    until: float
    false_alarm: bool


def detector_feedback(record: Mapping[str, Any]) -> DetectorFeedback | None:
    """The feedback an ``incidents`` topic record carries for anomaly detectors, if any."""
    action = record.get("action")
    incident = record.get("incident")
    if action not in ("resolve", "close", "reopen") or not isinstance(incident, Mapping):
        return None
    detectors = tuple(str(d) for d in incident.get("detectors") or ())
    rules = incident.get("rules") or ()
    if not detectors or not any(str(r).startswith(ANOMALY_RULE_PREFIX) for r in rules):
        return None
    outcome = (record.get("details") or {}).get("outcome") or incident.get("outcome")
    false_alarm = action != "reopen"
    if false_alarm and outcome != "false_alarm":
        return None
    try:
        since = to_epoch(incident.get("first_alert_at"))
        until = to_epoch(incident.get("last_alert_at"))
    except (TypeError, ValueError):
        return None
    if since is None or until is None:
        return None
    return DetectorFeedback(str(incident.get("district")), str(incident.get("id")), detectors,
                            since, until, false_alarm)
