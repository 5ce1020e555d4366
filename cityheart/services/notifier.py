"""The notifier: reads incident events, decides who is told, sends, records what happened.

    cityheart notifier            # one process; `cityheart up` runs it when notifications.enabled

It reads the ``incidents`` topic from its checkpoint (``<state_dir>/incidents.json``, the
dispatch queue reader of :mod:`connectors.dispatch.consumer`, so each event is handled once in
effect and nothing is missed across a restart), hands each event to
:func:`alerts.notify_rules.decide` and each resulting notification to the
:class:`~connectors.notifications.outbox.Outbox`, which retries and dead-letters. Escalation
events come from the flow's escalation timer, so the same path pages the on-call people.

Every notification is recorded in its incident's timeline through the flow (the one writer of
incident events): a ``notify`` command on the ``commands`` topic becomes a ``notify`` event with
``status`` ``sent`` (queued), then ``delivered`` or ``failed`` (dead-lettered). A notification's
acknowledgement link (signed, see :mod:`cityheart.services.ack_links`) acknowledges the incident
as its recipient; that ``acknowledge`` event names the notification.

Events older than ``notifications.max_event_age_s`` when read (a first start over a long log)
are not notified.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import orjson

from alerts.commands import Command, notify_command
from alerts.lifecycle import Incident, IncidentEvent
from alerts.notify_rules import Notification, NotifyRules, decide, render
from connectors.dispatch.consumer import DispatchConsumer
from connectors.kafka import ReliableProducer
from connectors.notifications.channels import Message, build_channels
from connectors.notifications.outbox import Outbox
from connectors.notifications.signing import link_token
from connectors.notify import Notifier as Readiness
from settings.config import Settings
from settings.notifications import unreachable_targets

__all__ = ["ACK_PATH", "NotifierService", "run_notifier"]

log = logging.getLogger(__name__)

ACK_PATH = "ack"
"""Where acknowledgement links point, under ``notifications.link_base_url``."""

Recorder = Callable[[Command], None]


class NotifierService:
    """Turns incident event records into notifications and records their fate (module doc)."""

    def __init__(
        self, settings: Settings, *, outbox: Outbox, record: Recorder,
        link_secret: str | None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.rules = NotifyRules.of(settings.notifications, settings.oncall,
                                    settings.city.timezone)
        self.outbox = outbox
        self._record = record
        self._secret = link_secret
        self._clock = clock
        base = settings.notifications.link_base_url or settings.dashboard.url
        self._base = base if base.endswith("/") else f"{base}/"   # .../city -> .../city/ack
        self.sent = 0

    def handle(self, record: dict[str, Any]) -> None:
        """One record of the ``incidents`` topic (an event with the incident after it)."""
        try:
            event = IncidentEvent.from_record(record)
            incident = Incident.from_record(record["incident"])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("notifier: skipped an unreadable incident record %s: %s",
                        record.get("id"), exc)
            return
        age = self._clock() - event.ts
        if age > self.settings.notifications.max_event_age_s:
            log.debug("notifier: event %s is %.0f s old: not notified", event.id, age)
            return
        decision = decide(event, incident, self.rules)
        for target in decision.unresolved:
            log.warning("notifier: %s of incident %s: target %r reaches nobody", event.action,
                        incident.id, target)
        for note in decision.notifications:
            self._send(note)

    def _send(self, note: Notification) -> None:
        ack_url = self.ack_url(note)
        subject, text = render(note, ack_url=ack_url)
        message = Message(note.id, note.channel, note.address, subject, text,
                          note.to_record(ack_url=ack_url))
        if not self.outbox.submit(message):
            return
        self.sent += 1
        self._status(message, "sent", {"reason": note.reason, "event": note.event.id,
                                       "level": note.event.details.get("level")})

    def ack_url(self, note: Notification) -> str | None:
        """The signed link acknowledging ``note``'s incident as its recipient (None: no
        secret configured, or the incident is no longer open)."""
        if not self._secret or note.incident.state != "open":
            return None
        claims = {"incident_id": note.incident.id, "district": note.incident.district,
                  "sub": note.recipient, "department": note.department,
                  "notification": note.id}
        expires = self._clock() + self.settings.notifications.link_ttl_s
        token = link_token(self._secret, claims, expires_at=expires)
        return urljoin(self._base, f"{ACK_PATH}?t={token}")

    def outcome(self, message: Message, status: str, details: dict[str, Any]) -> None:
        """The outbox's report: record ``delivered`` or ``failed``."""
        self._status(message, status, details)

    def _status(self, message: Message, status: str, extra: Mapping[str, Any]) -> None:
        incident = message.body.get("incident") or {}
        details = {"notification": message.id, "status": status, "channel": message.channel,
                   "recipient": message.body.get("recipient"), "address": message.address,
                   **{k: v for k, v in extra.items() if v is not None}}
        command = notify_command(str(incident.get("id")), str(incident.get("district")),
                                 details, at=self._clock(),
                                 command_id=f"{message.id}:{status}:{details.get('attempts', 0)}")
        try:
            self._record(command)
        except Exception:
            log.exception("notifier: could not record %s of %s", status, message.id)


def kafka_recorder(producer: ReliableProducer, topic: str) -> Recorder:
    """Records commands on ``topic`` (keyed by incident id, as the dispatch API does)."""
    lock = threading.Lock()

    def record(command: Command) -> None:
        with lock:
            producer.produce(topic, orjson.dumps(command.to_record()),
                             key=command.incident_id.encode())
            producer.poll(0)

    return record


def run_notifier(
    settings: Settings, *, environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the notifier until SIGINT/SIGTERM (or ``stop``); the exit code."""
    env = os.environ if environ is None else environ
    notifications = settings.notifications
    secrets = {name: env[name] for name in _secret_names(settings) if name in env}
    channels = build_channels(notifications.channels, secrets=secrets)
    for key, target in unreachable_targets(notifications, settings.incidents):
        log.warning("notifier: %s names %r, neither a person, a channel nor oncall/oncall-next:"
                    " that step pages nobody", key, target)
    link_secret = env.get(notifications.link_secret_env) or None
    if link_secret is None:
        log.warning("notifier: %s is not set: notifications carry no acknowledgement link",
                    notifications.link_secret_env)
    state_dir = Path(notifications.state_dir)
    topics = settings.kafka.topics
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=0)
    outbox = Outbox(channels, state_dir, retry=notifications.retry)
    service = NotifierService(settings, outbox=outbox,
                              record=kafka_recorder(producer, topics.commands),
                              link_secret=link_secret)
    outbox.on_outcome = service.outcome
    stop = stop or threading.Event()
    previous = _on_signals(stop)
    consumer = DispatchConsumer(settings.kafka.bootstrap, topics.incidents,
                                state_dir / "incidents.json")
    try:
        with consumer:
            outbox.start()
            Readiness.from_environ(os.environ).ready()
            log.info("notifier: %d channels, %d subscriptions, %d on-call schedules",
                     len(channels), len(notifications.subscriptions), len(settings.oncall))
            consumer.run(service.handle, stop=stop)
    finally:
        outbox.close()
        producer.flush(10)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _secret_names(settings: Settings) -> set[str]:
    names = {settings.notifications.link_secret_env}
    for channel in settings.notifications.channels:
        names |= {getattr(channel, n) for n in ("secret_env", "password_env")
                  if getattr(channel, n, None)}
    return names


def _on_signals(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)}
