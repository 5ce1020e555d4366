"""Who is told of an incident event, on which channel: pure, time and settings injected.

The notifier hands every incident event (with the incident after it) to :func:`decide`, which
returns the :class:`Notification` s to send, each with a deterministic ``id`` (the same event
always makes the same notifications: the idempotency key of their deliveries)::

    for note in decide(event, incident, rules):          # rules = NotifyRules.from_settings(s)
        send(note.channel, note.address, render(note))

Who:

- **subscriptions** (``notifications.subscriptions``) whose ``events``, ``kinds`` and
  ``min_severity`` match: a department's subscription sends to its channels when the incident is
  routed to it; a person's to each of their contacts (``person: oncall`` means the on-call
  person of each routed department that has a schedule). A person's quiet hours (or the
  subscription's) hold back what is below their ``min_severity``; the on-call person is paged
  whatever the hour.
- **escalation** (an ``escalate`` event): the step's ``notify`` targets, resolved at the event's
  time: ``oncall`` and ``oncall-next`` (the owner department's on-call person and the next one),
  a person id (their contacts), a channel id (that channel, for the owner department).

Events the notifier itself records (``notify``) make nothing. A target that resolves to nothing
(no schedule, a person without contacts) is reported in :attr:`Decision.unresolved`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.lifecycle import Incident, IncidentEvent
from alerts.oncall import now_and_next, who
from settings.incidents import severity_rank
from settings.notifications import NotificationSettings, Person, QuietHours, Subscription
from settings.oncall import OncallSchedule

__all__ = [
    "NOTIFY_ACTION",
    "Decision",
    "Notification",
    "NotifyRules",
    "decide",
    "in_quiet_hours",
    "notification_id",
    "render",
]

NOTIFY_ACTION = "notify"
"""The action of the incident events that record notifications (sent, delivered, failed)."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one address on one channel about one incident event."""

    id: str
    channel: str
    recipient: str
    """A person id, or a department id (a department's subscription)."""
    address: str | None
    """Where on the channel (an e-mail address); None: the channel's own (a webhook's URL)."""
    department: str
    """The department on whose behalf it is sent: its dispatchers may acknowledge."""
    reason: str
    """``subscription``, ``oncall`` or ``escalation``."""
    event: IncidentEvent
    incident: Incident

    def to_record(self, *, ack_url: str | None = None) -> dict[str, Any]:
        """The JSON body of the notification (what a webhook receives)."""
        incident = self.incident
        return {
            "id": self.id, "type": "incident_notification", "reason": self.reason,
            "recipient": self.recipient, "department": self.department,
            "event": self.event.to_record(),
            "incident": {"id": incident.id, "title": incident.title, "state": incident.state,
                         "severity": incident.severity, "kind": incident.kind,
                         "district": incident.district,
                         "departments": list(incident.departments)},
            "ack_url": ack_url,
        }


@dataclass(frozen=True, slots=True)
class NotifyRules:
    """What :func:`decide` needs of the settings."""

    notifications: NotificationSettings
    schedules: Mapping[str, OncallSchedule]
    city_timezone: str = "UTC"

    @classmethod
    def of(cls, notifications: NotificationSettings, oncall: Iterable[OncallSchedule],
           city_timezone: str = "UTC") -> NotifyRules:
        """Rules of these settings (``oncall`` keyed by department)."""
        return cls(notifications, {s.department: s for s in oncall}, city_timezone)


@dataclass(frozen=True, slots=True)
class Decision:
    """The notifications of one event, and the targets that resolved to nobody."""

    notifications: tuple[Notification, ...] = ()
    unresolved: tuple[str, ...] = field(default=())


def notification_id(event_id: str, channel: str, recipient: str, address: str | None) -> str:
    """The deterministic id of a notification (the idempotency key of its deliveries)."""
    key = "\x1f".join((event_id, channel, recipient, address or ""))
    return "ntf-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def in_quiet_hours(quiet: QuietHours, *, at: float, timezone: str) -> bool:
    """Whether ``at`` falls in ``quiet`` (local to ``timezone``; may span midnight)."""
    local = datetime.fromtimestamp(at, ZoneInfo(timezone)).time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def decide(event: IncidentEvent, incident: Incident, rules: NotifyRules) -> Decision:
    """The notifications ``event`` (with ``incident`` after it) makes (see the module doc)."""
    if event.action == NOTIFY_ACTION:
        return Decision()
    found: list[Notification] = []
    unresolved: list[str] = []
    for sub in rules.notifications.subscriptions:
        if _matches(sub, event, incident):
            found += _subscribed(sub, event, incident, rules, unresolved)
    if event.action == "escalate":
        department = str(event.details.get("department") or _first(event.departments))
        for target in event.details.get("notify") or ():
            notes = _target(str(target), department, event, incident, rules, "escalation")
            if not notes:
                unresolved.append(str(target))
            found += notes
    unique = {note.id: note for note in reversed(found)}  # the first of each id stays
    return Decision(tuple(n for n in found if unique.get(n.id) is n), tuple(unresolved))


def render(note: Notification, *, ack_url: str | None) -> tuple[str, str]:
    """A notification's subject and plain text."""
    incident, event = note.incident, note.event
    what = {"open": "new incident", "escalate": "ESCALATED, not acknowledged",
            "reopen": "reopened"}.get(event.action, event.action)
    subject = f"[{incident.severity.upper()}] {incident.title} ({what})"
    lines = [
        f"Incident {incident.id}: {incident.title}",
        f"District: {incident.district}   Kind: {', '.join(incident.kinds) or incident.kind}",
        f"Severity: {incident.severity}   State: {incident.state}",
        f"Departments: {', '.join(incident.departments)}",
        f"Event: {event.action} by {event.actor} at {event.to_record()['ts']}",
    ]
    if event.action == "escalate":
        lines.append(f"Escalation step {event.details.get('level')}: "
                     f"{event.details.get('name')}, unacknowledged for "
                     f"{event.details.get('unacknowledged_s')} s")
    if ack_url:
        lines += ["", f"Acknowledge: {ack_url}"]
    return subject, "\n".join(lines) + "\n"


def _first(departments: Sequence[str]) -> str:
    return departments[0] if departments else ""


def _matches(sub: Subscription, event: IncidentEvent, incident: Incident) -> bool:
    return (
        event.action in sub.events
        and (not sub.kinds or any(kind in sub.kinds for kind in incident.kinds or
                                  (incident.kind,)))
        and severity_rank(incident.severity) >= severity_rank(sub.min_severity)
    )


def _subscribed(
    sub: Subscription, event: IncidentEvent, incident: Incident, rules: NotifyRules,
    unresolved: list[str],
) -> list[Notification]:
    departments = [d for d in incident.departments
                   if not sub.departments or d in sub.departments]
    if sub.department is not None:
        if sub.department not in incident.departments:
            return []
        return [_note(event, incident, channel, sub.department, None, sub.department,
                      "subscription") for channel in sub.channels]
    if not departments:
        return []
    if sub.person == "oncall":
        found: list[Notification] = []
        for department in departments:
            if department in rules.schedules:
                found += _target("oncall", department, event, incident, rules, "oncall")
        return found
    person = rules.notifications.person(str(sub.person))
    if person is None:
        unresolved.append(str(sub.person))
        return []
    quiet = sub.quiet_hours or person.quiet_hours
    zone = person.timezone or rules.city_timezone
    if quiet is not None and in_quiet_hours(quiet, at=event.ts, timezone=zone) \
            and severity_rank(incident.severity) < severity_rank(quiet.min_severity):
        return []
    return _contacts(person, departments[0], event, incident, "subscription")


def _target(
    target: str, department: str, event: IncidentEvent, incident: Incident, rules: NotifyRules,
    reason: str,
) -> list[Notification]:
    settings = rules.notifications
    if target in ("oncall", "oncall-next"):
        schedule = rules.schedules.get(department)
        if schedule is None:
            return []
        if target == "oncall":
            person_id: str | None = who(schedule, event.ts)
        else:
            following = now_and_next(schedule, at=event.ts)[1]
            person_id = following.person if following else None
        person = settings.person(person_id) if person_id else None
        return [] if person is None else _contacts(person, department, event, incident, reason)
    person = settings.person(target)
    if person is not None:
        return _contacts(person, department, event, incident, reason)
    if settings.channel(target) is not None:
        return [_note(event, incident, target, department, None, department, reason)]
    return []


def _contacts(
    person: Person, department: str, event: IncidentEvent, incident: Incident, reason: str
) -> list[Notification]:
    return [_note(event, incident, channel, person.id, address, department, reason)
            for channel, address in person.contacts.items()]


def _note(
    event: IncidentEvent, incident: Incident, channel: str, recipient: str, address: str | None,
    department: str, reason: str,
) -> Notification:
    return Notification(notification_id(event.id, channel, recipient, address), channel,
                        recipient, address, department, reason, event, incident)
