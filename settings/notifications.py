"""The ``notifications:`` section of config.yaml: channels, people, subscriptions, retries.

Frozen, validated pydantic models (no I/O). Secrets are never in the file: a channel names the
environment variable holding its secret (``secret_env``, ``password_env``), which the notifier
reads once when it starts::

    notifications:
      enabled: true
      link_base_url: https://ops.city.example/     # ack links (default: the dashboard's URL)
      channels:
        - {id: mail, type: email, host: smtp.city.example, port: 587, sender: ops@city.example,
           username: ops, password_env: CITYHEART_SMTP_PASSWORD}
        - {id: water-hook, type: webhook, url: https://water.example/hooks/cityheart,
           secret_env: CITYHEART_WEBHOOK_SECRET}
      people:
        - {id: ana, name: Ana Lima, contacts: {mail: ana@city.example},
           timezone: Europe/Lisbon, quiet_hours: {start: "22:00", end: "07:00"}}
      subscriptions:
        - {department: water-authority, channels: [water-hook]}          # the department's feed
        - {person: ana, departments: [water-authority], min_severity: critical}

Who gets what is :mod:`alerts.notify_rules`; escalation steps (``incidents.departments[].
escalation[].notify``) name targets too: ``oncall`` (the owner department's on-call person),
``oncall-next`` (the one after), a person id, or a channel id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import time
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from settings.incidents import IncidentSettings, Severity
from settings.oncall import OncallSchedule, check_zone

__all__ = [
    "EVENT_ACTIONS",
    "EventAction",
    "ONCALL_TARGETS",
    "Channel",
    "EmailChannel",
    "NotificationSettings",
    "Person",
    "QuietHours",
    "RetrySettings",
    "Subscription",
    "WebhookChannel",
    "notification_problems",
    "unreachable_targets",
]

_ID = r"^[a-z0-9][a-z0-9_.-]*$"
Id = Annotated[str, Field(pattern=_ID)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]

ONCALL_TARGETS = ("oncall", "oncall-next")
"""Escalation targets that name a department's on-call people rather than a person or channel."""

EventAction = Literal["open", "alert", "escalate", "acknowledge", "dispatch", "resolve", "close",
                      "reopen", "comment", "restore"]
EVENT_ACTIONS: tuple[str, ...] = get_args(EventAction)
"""The incident events a subscription may ask for."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookChannel(_Frozen):
    """POST the notification as JSON to ``url``, signed with HMAC-SHA256 under the secret in
    environment variable ``secret_env`` (none: unsigned)."""

    id: Id
    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    secret_env: EnvName | None = None
    timeout_s: Seconds = 5.0


class EmailChannel(_Frozen):
    """Send e-mail through the SMTP server at ``host``:``port`` (STARTTLS when the server offers
    it; ``starttls: required`` refuses a server that does not)."""

    id: Id
    type: Literal["email"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    sender: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    username: str | None = None
    password_env: EnvName | None = None
    starttls: Literal["auto", "required", "off"] = "auto"
    timeout_s: Seconds = 10.0


Channel = Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]


class QuietHours(_Frozen):
    """From ``start`` to ``end`` local time (``end`` before ``start``: over midnight), only
    notifications at or above ``min_severity`` go out."""

    start: time
    end: time
    min_severity: Severity = "emergency"

    @model_validator(mode="after")
    def _span(self) -> QuietHours:
        if self.start == self.end:
            msg = f"quiet hours start and end at {self.start.isoformat()}: an empty span"
            raise ValueError(msg)
        return self


class Person(_Frozen):
    """Someone who can be notified: ``contacts`` maps a channel id to their address there."""

    id: Id
    name: str = ""
    contacts: dict[Id, str] = Field(default_factory=dict)
    timezone: str | None = None
    quiet_hours: QuietHours | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class Subscription(_Frozen):
    """Who is told of which incident events.

    Either a ``department`` (events of incidents routed to it, sent to its ``channels``) or a
    ``person`` (events of incidents routed to ``departments``, any when empty, sent to each of
    their contacts). Filters: ``kinds`` (empty: all), ``min_severity``, ``events``.
    """

    department: Id | None = None
    person: Id | None = None
    channels: tuple[Id, ...] = ()
    departments: tuple[Id, ...] = ()
    kinds: tuple[str, ...] = ()
    min_severity: Severity = "warning"
    events: tuple[EventAction, ...] = ("open", "escalate")
    quiet_hours: QuietHours | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> Subscription:
        if (self.department is None) == (self.person is None):
            msg = "a subscription names a department or a person (exactly one)"
            raise ValueError(msg)
        if self.department is not None and not self.channels:
            msg = f"the subscription of department {self.department!r} names no channels"
            raise ValueError(msg)
        return self


class RetrySettings(_Frozen):
    """Delivery attempts and the backoff between them: ``initial_s``, x ``factor``, at most
    ``max_s``; a delivery that fails ``attempts`` times goes to the dead-letter list."""

    attempts: Annotated[int, Field(ge=1, le=100)] = 8
    initial_s: Seconds = 1.0
    factor: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 2.0
    max_s: Seconds = 300.0


class NotificationSettings(_Frozen):
    """Everything about telling people (see the module doc)."""

    enabled: bool = False
    link_base_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    link_secret_env: EnvName = "CITYHEART_NOTIFY_SECRET"
    link_ttl_s: Seconds = 86400.0
    state_dir: str = "var/notify"
    max_event_age_s: Seconds = 900.0
    channels: tuple[Channel, ...] = ()
    people: tuple[Person, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    retry: RetrySettings = RetrySettings()

    def person(self, person_id: str) -> Person | None:
        """The person with this id, if any."""
        return next((p for p in self.people if p.id == person_id), None)

    def channel(self, channel_id: str) -> WebhookChannel | EmailChannel | None:
        """The channel with this id, if any."""
        return next((c for c in self.channels if c.id == channel_id), None)


def notification_problems(
    notifications: NotificationSettings, oncall: Sequence[OncallSchedule],
    incidents: IncidentSettings, *, alert_kinds: Collection[str],
) -> list[tuple[str, str]]:
    """(dotted key, reason) for every reference of ``notifications`` and ``oncall`` that does
    not resolve (escalation targets: :func:`unreachable_targets`)."""
    problems: list[tuple[str, str]] = []
    departments = [d.id for d in incidents.departments]
    people = [p.id for p in notifications.people]
    channels = [c.id for c in notifications.channels]

    def check(key: str, values: Iterable[str], known: Collection[str], what: str) -> None:
        problems.extend((key, f"{v!r} is not a {what}; one of {sorted(known)}")
                        for v in values if v not in known)

    for where, ids in (("channels", channels), ("people", people)):
        for number, value in enumerate(ids):
            if ids.index(value) != number:
                problems.append((f"notifications.{where}[{number}].id", f"{value!r} is repeated"))
    for number, person in enumerate(notifications.people):
        check(f"notifications.people[{number}].contacts", person.contacts, channels, "channel id")
    for number, sub in enumerate(notifications.subscriptions):
        key = f"notifications.subscriptions[{number}]"
        check(f"{key}.department", [sub.department] if sub.department else [], departments,
              "department id")
        check(f"{key}.person", [sub.person] if sub.person else [], [*people, "oncall"],
              "person id (or oncall)")
        check(f"{key}.departments", sub.departments, departments, "department id")
        check(f"{key}.channels", sub.channels, channels, "channel id")
        check(f"{key}.kinds", sub.kinds, alert_kinds, "kind")
    seen: list[str] = []
    for number, schedule in enumerate(oncall):
        key = f"oncall[{number}]"
        check(f"{key}.department", [schedule.department], departments, "department id")
        if schedule.department in seen:
            problems.append((f"{key}.department", f"{schedule.department!r} has two schedules"))
        seen.append(schedule.department)
        check(f"{key}.rotation", schedule.rotation, people, "person id")
        check(f"{key}.overrides", [o.person for o in schedule.overrides], people, "person id")
    return problems


def unreachable_targets(
    notifications: NotificationSettings, incidents: IncidentSettings
) -> list[tuple[str, str]]:
    """(dotted key, target) for every escalation target that names no person, channel or
    on-call role: such a step pages nobody (the notifier says so when it starts; not refused,
    as ladders may name people before they have contacts here)."""
    targets = {*ONCALL_TARGETS, *(p.id for p in notifications.people),
               *(c.id for c in notifications.channels)}
    return [
        (f"incidents.departments[{d_number}].escalation[{s_number}].notify", target)
        for d_number, department in enumerate(incidents.departments)
        for s_number, step in enumerate(department.escalation)
        for target in step.notify if target not in targets
    ]
