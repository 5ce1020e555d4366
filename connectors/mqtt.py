"""MQTT publishing over paho-mqtt 2.x: a configured client and a flow-controlled QoS 1 publisher.

    with MqttPublisher("mqtt://127.0.0.1:1883", "cityheart-sim-1") as publisher:
        publisher.publish("city/old-town/pm25/pm25-old-town-001", payload)   # QoS 1
        publisher.flush(10.0)                          # True once the broker acked everything
    print(publisher.published, publisher.acknowledged)

:class:`MqttPublisher` never has more than ``max_inflight`` QoS 1 messages unacknowledged (nor
more than the broker's MQTT v5 Receive Maximum): :meth:`~MqttPublisher.publish` blocks until a
PUBACK frees room. Without that limit paho would happily queue past its 16-bit message ids
(they wrap at 65,535) and a publisher with that many in flight would overwrite its own messages.
paho's network thread (``loop_start``) reconnects after a lost connection and re-sends every
unacknowledged QoS 1 message, so a broker restart loses nothing the publisher was still holding.

``on_acked(topic, payload)`` (called on paho's network thread) or ``keep_acked=True`` (the list
:attr:`MqttPublisher.acked_log`) lets tests and soak runs reconcile what the broker acknowledged.
paho's return codes are checked and turned into :class:`~models.errors.ConnectorError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, error_string
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from models.errors import ConnectorError

__all__ = [
    "PROTOCOLS",
    "SESSION_EXPIRY_S",
    "MqttClient",
    "MqttPublisher",
    "new_client",
    "parse_url",
    "protocol_of",
]

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
"""How long the broker keeps a persistent client's session while it is away (MQTT v5)."""

_STALL_WARN_S = 30.0

_QUEUED_OK = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
"""publish() results that leave a QoS > 0 message with paho, to be (re-)sent on connection."""


PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}
"""MQTT protocol versions by the name config.yaml uses (mqtt.protocol)."""


def protocol_of(name: str) -> MQTTProtocolVersion:
    """The paho protocol version for ``"5"`` or ``"3.1.1"``."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        msg = f"unknown MQTT protocol version {name!r}; use one of {sorted(PROTOCOLS)}"
        raise ValueError(msg) from None


def parse_url(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an ``mqtt://host:port`` or ``mqtts://host:port`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        msg = "not an mqtt://host:port URL"
        raise ConnectorError("mqtt", url, msg)
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        msg = f"bad port in URL: {exc}"
        raise ConnectorError("mqtt", url, msg) from exc
    return parts.hostname, port, tls


class MqttClient(Client):
    """paho's Client bound to one broker URL and session policy; :meth:`start` connects it."""

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        persistent: bool = False,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:
        v5 = protocol == MQTTProtocolVersion.MQTTv5
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if v5 else not persistent,
        )
        host, port, tls = parse_url(url)  # after paho's __init__, which its __del__ needs
        # paho's Client already has host, port, ...: ours are prefixed to stay clear of them
        self.broker_url = url
        self.broker_host = host
        self.broker_port = port
        self.broker_tls = tls
        self.persistent_session = persistent

    def start(self, *, timeout: float = 10.0, keepalive: int = 30) -> None:
        """Connect, start the network thread and wait for a successful CONNACK.

        Raises ConnectorError naming the URL if the broker cannot be reached, refuses us or
        does not answer within ``timeout`` seconds. Set ``on_connect`` before calling this;
        :meth:`start` wraps it to learn the outcome.
        """
        outcome: list[ReasonCode] = []
        answered = threading.Event()
        user_on_connect = self.on_connect

        def on_connect(client: Client, userdata: Any, flags: ConnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
            if not answered.is_set():
                outcome.append(reason)
                answered.set()
            if user_on_connect is not None:
                user_on_connect(client, userdata, flags, reason, properties)

        self.on_connect = on_connect
        self.connect_timeout = timeout
        try:
            self.connect(self.broker_host, self.broker_port, keepalive, **self._session_args())
        except OSError as exc:
            self.on_connect = user_on_connect
            msg = f"cannot connect: {exc}"
            raise ConnectorError("mqtt", self.broker_url, msg) from exc
        _check(self.loop_start(), "start the network thread", self.broker_url)
        answered.wait(timeout)
        self.on_connect = user_on_connect
        if outcome and not outcome[0].is_failure:
            return
        self.stop()
        if outcome:
            msg = f"refused the connection: {outcome[0]}"
        else:
            msg = f"no CONNACK within {timeout:g} s"
        raise ConnectorError("mqtt", self.broker_url, msg)

    def stop(self) -> None:
        """Disconnect and stop the network thread (no error if already disconnected)."""
        self.disconnect()
        self.loop_stop()

    def _session_args(self) -> dict[str, Any]:
        if self.protocol != MQTTProtocolVersion.MQTTv5:
            return {}
        properties = Properties(PacketTypes.CONNECT)
        properties.ReceiveMaximum = 65535
        if not self.persistent_session:
            return {"clean_start": True, "properties": properties}
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        return {"clean_start": False, "properties": properties}


def new_client(
    url: str,
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    persistent: bool = False,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    max_inflight: int = 1000,
) -> MqttClient:
    """A paho client for ``url`` (not yet connected: call its ``start()``).

    ``persistent`` keeps the broker session (subscriptions, queued QoS 1 messages) across
    disconnects: clean start off and a session expiry for v5, clean session off for v3.1.1.
    Reconnects back off from 1 s to 10 s. paho sends up to ``max_inflight`` QoS > 0 messages
    before it queues the rest (its default of 20 throttles a busy publisher); 0 means no limit,
    which is also the fastest: below its limit paho scans every unacknowledged message on each
    PUBACK, so a caller that bounds what it has in flight itself (MqttPublisher) passes 0.
    """
    client = MqttClient(url, client_id, persistent=persistent, protocol=protocol)
    if username:
        client.username_pw_set(username, password)
    if client.broker_tls:
        client.tls_set()
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    client.max_inflight_messages_set(max_inflight)
    return client


def _check(rc: MQTTErrorCode, action: str, url: str) -> None:
    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
        msg = f"cannot {action}: {error_string(rc)}"
        raise ConnectorError("mqtt", url, msg)


class MqttPublisher:
    """Publish at QoS 1 with at most ``max_inflight`` unacknowledged messages, reconnecting.

    Counters: ``published`` (handed to paho), ``acknowledged`` (PUBACK with success),
    ``rejected`` (PUBACK with an MQTT v5 failure reason: not re-sent), ``connects``.
    ``on_acked(topic, payload)`` runs on paho's network thread with the publisher's lock held:
    keep it short and never publish from it. ``persistent`` keeps the device's broker session
    across disconnects (see :func:`new_client`).
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        max_inflight: int = 1000,
        connect_timeout: float = 10.0,
        on_acked: Callable[[str, bytes], None] | None = None,
        keep_acked: bool = False,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        persistent: bool = False,
    ) -> None:
        if not 1 <= max_inflight <= 60000:
            msg = f"max_inflight must be between 1 and 60000 (message ids wrap), got {max_inflight}"
            raise ConnectorError("mqtt", url, msg)
        self.url = url
        self.published = 0
        self.acknowledged = 0
        self.rejected = 0
        self.connects = 0
        self.acked_log: list[tuple[str, bytes]] | None = [] if keep_acked else None
        self._max_inflight = max_inflight
        self._window = max_inflight
        self._connect_timeout = connect_timeout
        self._on_acked = on_acked
        self._cond = threading.Condition()
        self._pending: dict[int, tuple[str, bytes]] = {}
        self._early: dict[int, bool] = {}  # PUBACKs that beat publish() back: mid -> ok
        self._reserved = 0
        self._closing = False
        self._client = new_client(
            url, client_id, username=username, password=password, protocol=protocol,
            persistent=persistent,
            max_inflight=0,  # our window limits what is in flight; see new_client
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    # -- life cycle ---------------------------------------------------------------------------

    def connect(self) -> MqttPublisher:
        """Connect; ConnectorError naming the URL if that fails within the connect timeout."""
        self._client.start(timeout=self._connect_timeout)
        return self

    def __enter__(self) -> MqttPublisher:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def in_flight(self) -> int:
        """Messages handed to paho that the broker has not acknowledged yet."""
        with self._cond:
            return len(self._pending) + self._reserved

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until every message is acknowledged; whether they all are."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._reserved:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        """Disconnect and stop the network thread (unacknowledged messages are abandoned)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._client.stop()

    # -- publishing ---------------------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, timeout: float | None = None
    ) -> bool:
        """Hand one message to paho, first waiting for room if ``max_inflight`` are unacked.

        Returns False, without publishing, if no room came within ``timeout`` seconds (None:
        wait as long as it takes). Raises ConnectorError if paho refuses the message or the
        publisher is closed.
        """
        if qos == 0:
            info = self._client.publish(topic, payload, 0)
            _check(info.rc, f"publish to {topic!r}", self.url)
            self.published += 1
            return True
        if not self._reserve(topic, timeout):
            return False
        # paho takes its own lock inside publish() and holds it around on_publish, so we
        # must not hold ours here: a PUBACK may even arrive before we record the mid
        try:
            info = self._client.publish(topic, payload, qos)
        except ValueError as exc:
            self._release()
            msg = f"cannot publish to {topic!r}: {exc}"
            raise ConnectorError("mqtt", self.url, msg) from exc
        if info.rc not in _QUEUED_OK:
            self._release()
            _check(info.rc, f"publish to {topic!r}", self.url)
        with self._cond:
            self._reserved -= 1
            self.published += 1
            early = self._early.pop(info.mid, None)
            if early is None:
                self._pending[info.mid] = (topic, payload)
                return True
            if early:
                self._acked(topic, payload)
            self._cond.notify_all()
        return True

    def _reserve(self, topic: str, timeout: float | None) -> bool:
        """Take one in-flight slot, waiting up to ``timeout`` s; whether one was free."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._pending) + self._reserved >= self._window and not self._closing:
                wait = _STALL_WARN_S if deadline is None else deadline - time.monotonic()
                if wait <= 0:
                    return False
                if not self._cond.wait(min(wait, _STALL_WARN_S)) and deadline is None:
                    log.warning("no acknowledgement from MQTT broker %s for %g s with %d "
                                "messages in flight", self.url, _STALL_WARN_S, len(self._pending))
            if self._closing:
                msg = f"cannot publish to {topic!r}: the publisher is closed"
                raise ConnectorError("mqtt", self.url, msg)
            self._reserved += 1
        return True

    def _release(self) -> None:
        with self._cond:
            self._reserved -= 1
            self._cond.notify_all()

    def _acked(self, topic: str, payload: bytes) -> None:
        self.acknowledged += 1
        if self.acked_log is not None:
            self.acked_log.append((topic, payload))
        if self._on_acked is not None:
            try:
                self._on_acked(topic, payload)
            except Exception:
                log.exception("on_acked hook failed for MQTT topic %r", topic)

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_publish(self, client: Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties) -> None:
        with self._cond:
            entry = self._pending.pop(mid, None)
            if reason.is_failure:
                self.rejected += 1
                if self.rejected == 1 or self.rejected % 1000 == 0:
                    topic = entry[0] if entry else "?"
                    log.warning("MQTT broker %s rejected a message to %r: %s (%d rejected)",
                                self.url, topic, reason, self.rejected)
            if entry is None:
                self._early[mid] = not reason.is_failure
            elif not reason.is_failure:
                self._acked(*entry)
            self._cond.notify_all()

    def _on_connect(self, client: Client, userdata: Any, flags: ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.url, reason)
            return
        receive_maximum = getattr(properties, "ReceiveMaximum", None) if properties else None
        with self._cond:
            self.connects += 1
            self._window = min(self._max_inflight, receive_maximum or self._max_inflight)
            pending = len(self._pending)
            self._cond.notify_all()
        if self.connects > 1:
            log.info("reconnected to MQTT broker %s; re-sending %d unacknowledged messages",
                     self.url, pending)

    def _on_disconnect(self, client: Client, userdata: Any, flags: DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        if not self._closing:
            log.warning("lost the connection to MQTT broker %s (%s); reconnecting",
                        self.url, reason)
