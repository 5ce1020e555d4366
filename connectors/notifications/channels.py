"""Notification channels: a small protocol and a registry of channel types.

A channel delivers one :class:`Message` per call and says whether a failure is worth retrying;
the outbox (:mod:`connectors.notifications.outbox`) does the retrying. A channel type is a
factory from its settings (``notifications.channels[]``, chosen by ``type``) and the secrets
read at the edge::

    channels = build_channels(settings.notifications.channels, secrets=os.environ)
    channels["mail"].send(message)          # None, or raises DeliveryFailed(retryable=...)

    register_channel_type("sms", lambda config, secrets: SmsChannel(config, secrets))

The shipped types are ``webhook`` and ``email``; an SMS or chat gateway is a webhook, or a new
type registered the same way (with its settings model in :mod:`settings.notifications`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from models.errors import CityheartError

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelFactory",
    "DeliveryFailed",
    "Message",
    "build_channels",
    "register_channel_type",
]


@dataclass(frozen=True, slots=True)
class Message:
    """What a channel sends: ``id`` is the idempotency key (the notification's id)."""

    id: str
    channel: str
    address: str | None
    subject: str
    text: str
    body: Mapping[str, Any] = field(default_factory=dict)
    """The JSON document (a webhook posts it; e-mail sends ``text``)."""

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return {"id": self.id, "channel": self.channel, "address": self.address,
                "subject": self.subject, "text": self.text, "body": dict(self.body)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Message:
        """The message of a :meth:`to_record` dict."""
        return cls(str(record["id"]), str(record["channel"]), record.get("address"),
                   str(record.get("subject", "")), str(record.get("text", "")),
                   dict(record.get("body") or {}))


class DeliveryFailed(CityheartError):
    """Raised when a channel could not deliver a message: ``retryable`` says whether trying
    again later may work (a server down) or not (an address refused)."""

    def __init__(self, channel: str, target: str, reason: str, *, retryable: bool) -> None:
        super().__init__(channel, target, reason)
        self.channel = channel
        self.target = target
        self.reason = reason
        self.retryable = retryable

    def __str__(self) -> str:
        return f"channel {self.channel!r} could not deliver to {self.target}: {self.reason}"


class Channel(Protocol):
    """Delivers messages; one instance per configured channel."""

    id: str

    def send(self, message: Message) -> None:
        """Deliver ``message`` once; raise :class:`DeliveryFailed` when it did not arrive."""
        ...


ChannelFactory = Callable[[Any, Mapping[str, str]], Channel]
"""Builds a channel from its settings and the secrets (environment variables) it may read."""

CHANNEL_TYPES: dict[str, ChannelFactory] = {}
"""The channel types by ``type``; :func:`register_channel_type` adds one."""


def register_channel_type(name: str, factory: ChannelFactory) -> None:
    """Make ``type: name`` channels buildable (a later registration replaces an earlier one)."""
    CHANNEL_TYPES[name] = factory


def build_channels(configs: Iterable[Any], *, secrets: Mapping[str, str]) -> dict[str, Channel]:
    """One channel per config, by id; ValueError naming an unknown type and the known ones."""
    _register_shipped()
    channels: dict[str, Channel] = {}
    for config in configs:
        factory = CHANNEL_TYPES.get(config.type)
        if factory is None:
            msg = (f"channel {config.id!r} has type {config.type!r}, not one of "
                   f"{sorted(CHANNEL_TYPES)}")
            raise ValueError(msg)
        channels[config.id] = factory(config, secrets)
    return channels


def _register_shipped() -> None:
    from connectors.notifications.email import EmailSender
    from connectors.notifications.webhook import WebhookSender

    CHANNEL_TYPES.setdefault("webhook", WebhookSender.from_settings)
    CHANNEL_TYPES.setdefault("email", EmailSender.from_settings)
