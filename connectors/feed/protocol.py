"""The push feed's protocol and memory, Sans-I/O: no sockets, no Kafka, no clock.

``connectors.feed.server`` moves bytes around these pieces, as websockets' ``asyncio/`` moves
bytes around its ``protocol.py``::

    log = FeedLog(backlog=2000)
    message = log.append("vitals", record_value, time="2026-11-26T05:00:10.000Z")
    message.seq, message.payload          # 1, b'{"type":"vital","seq":1,"time":...,"district":...}'

    request = parse_request(frame, districts=["old-town"], kinds=["pm25"])  # or FeedError
    replay = log.replay_for(request.subscription, request.since)  # or FeedError("resync")
    if request.subscription.matches(message): ...

A data message is the Kafka record's fields flattened under ``type`` ("vital" from the vitals
topic, "indicator" for the vitals topic's indicator records, marked ``"record": "indicator"``,
"alert" from alerts), ``seq`` (1, 2, 3, ... per feed server) and ``time`` (when the feed
received it). It is serialised once, here, and the same bytes go to every client. The
``vitals`` channel carries both vitals and indicators; an indicator's ``kind`` is its indicator
name (``aqi``, ``noise``, ...) and its ``district`` may be ``"city"``, so the district and kind
filters work on indicators too. The ``incidents`` channel turns each record of the incidents
topic (an event and the incident after it) into two messages: ``incident_event`` (the event,
with its incident's ``district`` and ``kind``) then ``incident`` (the incident record); it also
carries a ``report`` message for each record of the reports topic (a report from people or
systems, :mod:`models.reports`). The
``kpis`` channel carries ``kpi`` messages the feed computes itself (a department's KPIs, with
``district`` "city" and ``kind`` the department id; the latest per department is in the
snapshot).

The client's subscribe op::

    {"op": "subscribe", "channels": ["vitals", "alerts"], "districts": [...], "kinds": [...],
     "since": <seq or null>, "batch": false}

Empty or absent lists mean all. ``since=null`` asks for a snapshot (the latest vital per district
and kind, the latest indicator per district and indicator, the latest record of every incident
not closed, plus the alerts and reports still in the backlog); ``since=N`` resumes: every
message after N, or a ``resync`` error when the backlog no longer reaches back to N.

``"batch": true`` lets the feed put live data messages that leave together (one Kafka poll's
share) into one ``batch`` frame, ``{"type": "batch", "messages": [...]}``, in seq order: a
screen that takes the whole city reads a few frames a second instead of hundreds
(:func:`batch_frame`). The replay and messages sent to a client that fell behind still come one
per frame, so a batch client reads both.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson

from models.choices import refusal
from models.errors import CityheartError

__all__ = [
    "CHANNELS",
    "ERROR_CODES",
    "REPORTS",
    "FeedError",
    "FeedLog",
    "FeedMessage",
    "Subscribe",
    "Subscription",
    "error_message",
    "heartbeat_message",
    "hello_message",
    "parse_request",
    "batch_frame",
    "subscribed_message",
    "text_frame",
]

CHANNELS = ("vitals", "alerts", "incidents", "kpis")
"""The feed's channels, named after the Kafka topics they carry."""

INCIDENT_MEMORY = 2000
"""How many incidents (the latest record of each, not closed) a feed keeps for snapshots."""

_TYPE_OF_CHANNEL = {"vitals": "vital", "alerts": "alert", "incidents": "incident_event",
                    "kpis": "kpi"}
_CHANNEL_OF_TYPE = {"vital": "vitals", "indicator": "vitals", "alert": "alerts",
                    "incident_event": "incidents", "incident": "incidents",
                    "report": "incidents", "kpi": "kpis"}
REPORTS = "reports"
"""What :meth:`FeedLog.append_all` takes for a record of the reports topic: it is a ``report``
message on the ``incidents`` channel."""
_SNAPSHOT_TYPES = ("vital", "indicator", "kpi")
_RESERVED = ("type", "seq", "time")
_LIST_FIELDS = ("channels", "districts", "kinds")

ERROR_CODES = (
    "invalid_json",
    "not_an_object",
    "unknown_op",
    "unknown_field",
    "wrong_type",
    "unknown_channel",
    "unknown_district",
    "unknown_kind",
    "resync",
    "invalid_record",
    "unauthorized",
    "forbidden_channel",
    "rate_limited",
)
"""Every code an ``error`` message or a FeedError may carry."""


class FeedError(CityheartError):
    """Raised when a client's request or a Kafka record cannot be handled by the feed.

    ``code`` is one of :data:`ERROR_CODES`; ``detail`` names the field and the value. The server
    sends both to the client as ``{"type": "error", "error": code, "detail": detail}``.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"feed error ({self.code}): {self.detail}"


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One data message: its seq, what it is about, and its JSON serialised once, both bare
    (``payload``) and as the websocket frame every client is sent (``frame``)."""

    seq: int
    type: str
    district: str
    kind: str
    payload: bytes
    frame: bytes = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", text_frame(self.payload))

    @property
    def key(self) -> tuple[str, str]:
        """(district, kind): the key vitals are coalesced by."""
        return (self.district, self.kind)


@dataclass(frozen=True, slots=True)
class Subscription:
    """Which data messages a client wants; an empty set means all."""

    channels: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    batch: bool = False
    """Whether live messages may come grouped in ``batch`` frames."""

    def matches(self, message: FeedMessage | Mapping[str, Any]) -> bool:
        """Whether ``message`` (a FeedMessage or a decoded feed message) passes every filter."""
        type_: Any
        district: Any
        kind: Any
        if isinstance(message, FeedMessage):
            type_, district, kind = message.type, message.district, message.kind
        else:
            type_, district, kind = (message.get(k) for k in ("type", "district", "kind"))
        return (
            (not self.channels or _CHANNEL_OF_TYPE.get(type_) in self.channels)
            and (not self.districts or district in self.districts)
            and (not self.kinds or kind in self.kinds)
        )


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A parsed subscribe op: what to send, and from where (``since=None``: a snapshot)."""

    subscription: Subscription
    since: int | None = None

    def as_op(self) -> dict[str, Any]:
        """The JSON-ready op a client sends for this request."""
        sub = self.subscription
        return {
            "op": "subscribe",
            "channels": sorted(sub.channels),
            "districts": sorted(sub.districts),
            "kinds": sorted(sub.kinds),
            "since": self.since,
            "batch": sub.batch,
        }


def parse_request(
    frame: str | bytes,
    *,
    districts: Collection[str] | None = None,
    kinds: Collection[str] | None = None,
) -> Subscribe:
    """Parse a client's frame into a Subscribe, or raise FeedError naming the field.

    When ``districts`` or ``kinds`` are given, ids outside them are refused, so a typo fails
    loudly instead of subscribing to silence.
    """
    try:
        op = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise FeedError("invalid_json", f"the request is not valid JSON: {exc}") from None
    if not isinstance(op, dict):
        msg = f"the request must be a JSON object, got {type(op).__name__}"
        raise FeedError("not_an_object", msg)
    if op.get("op") != "subscribe":
        msg = f"op {op.get('op')!r} is not one of ['subscribe']"
        raise FeedError("unknown_op", msg)
    for name in op:
        if name not in ("op", "since", "batch", *_LIST_FIELDS):
            msg = (f"field {name!r} is not one of ['batch', 'channels', 'districts', 'kinds', "
                   "'op', 'since']")
            raise FeedError("unknown_field", msg)
    lists = {name: _string_set(op, name) for name in _LIST_FIELDS}
    _known(lists["channels"], CHANNELS, "channel")
    _known(lists["districts"], districts, "district")
    _known(lists["kinds"], kinds, "kind")
    since = op.get("since")
    if since is not None and (type(since) is not int or since < 0):
        msg = f"field 'since' must be a seq (an integer >= 0) or null, got {since!r}"
        raise FeedError("wrong_type", msg)
    batch = op.get("batch", False)
    if type(batch) is not bool:
        msg = f"field 'batch' must be true or false, got {batch!r}"
        raise FeedError("wrong_type", msg)
    return Subscribe(Subscription(**lists, batch=batch), since)


def _string_set(op: Mapping[str, Any], name: str) -> frozenset[str]:
    value = op.get(name)
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        msg = f"field {name!r} must be a list of strings, got {value!r}"
        raise FeedError("wrong_type", msg)
    return frozenset(value)


def _known(values: frozenset[str], known: Collection[str] | None, what: str) -> None:
    if known is None:
        return
    msg = refusal(values, known, what)
    if msg is not None:
        code = f"unknown_{what}"
        raise FeedError(code, msg)


class FeedLog:
    """Turns Kafka records into numbered feed messages and remembers what a client may ask for.

    Keeps the last ``backlog`` messages (for resuming with ``since``) and the latest vital per
    (district, kind) and indicator per (district, indicator) (for the snapshot a new screen
    needs), whatever their age.
    """

    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self._recent: deque[FeedMessage] = deque(maxlen=backlog)
        self._latest: dict[tuple[str, str, str], FeedMessage] = {}
        self._incidents: dict[str, FeedMessage] = {}
        self.last_seq = 0

    def append_all(self, channel: str, value: bytes, time: str) -> list[FeedMessage]:
        """The messages one record of ``channel`` makes (two for an incident record; a record
        of the reports topic, ``channel`` :data:`REPORTS`, is one ``report`` message)."""
        if channel == REPORTS:
            return [self._add("report", _record(value), time)]
        if channel != "incidents":
            return [self.append(channel, value, time)]
        event = _record(value, fields=())
        incident = event.pop("incident", None)
        if not isinstance(incident, dict):
            msg = f"incident event {value[:80]!r} carries no incident record"
            raise FeedError("invalid_record", msg)
        where = {"district": incident.get("district"), "kind": incident.get("kind")}
        first = self._add("incident_event", {**event, **where}, time)
        second = self._add("incident", incident, time)
        incident_id = str(incident.get("id"))
        self._incidents.pop(incident_id, None)
        if incident.get("state") != "closed":
            self._incidents[incident_id] = second
            while len(self._incidents) > INCIDENT_MEMORY:
                del self._incidents[next(iter(self._incidents))]
        return [first, second]

    def append(self, channel: str, value: bytes, time: str) -> FeedMessage:
        """Number and serialise one record of ``channel``; FeedError if it is not a record."""
        type_ = _TYPE_OF_CHANNEL.get(channel)
        if type_ is None:
            msg = f"channel {channel!r} is not one of {list(CHANNELS)}"
            raise FeedError("unknown_channel", msg)
        record = _record(value)
        if type_ == "vital" and record.get("record") == "indicator":
            type_ = "indicator"
        return self._add(type_, record, time)

    def _add(self, type_: str, record: dict[str, Any], time: str) -> FeedMessage:
        for name in ("district", "kind"):
            if not isinstance(record.get(name), str):
                msg = f"{type_} record has no string field {name!r}"
                raise FeedError("invalid_record", msg)
        seq = self.last_seq + 1
        body: dict[str, Any] = {"type": type_, "seq": seq, "time": time}
        for name, field in record.items():
            if name not in _RESERVED:
                body[name] = field
        message = FeedMessage(seq, type_, record["district"], record["kind"], orjson.dumps(body))
        self.last_seq = seq
        self._recent.append(message)
        if type_ in _SNAPSHOT_TYPES:
            self._latest[(type_, message.district, message.kind)] = message
        return message

    @property
    def oldest_seq(self) -> int:
        """The seq of the oldest message still in the backlog (last_seq + 1 when it is empty)."""
        return self._recent[0].seq if self._recent else self.last_seq + 1

    def replay_for(self, subscription: Subscription, since: int | None) -> list[FeedMessage]:
        """What a client subscribing now gets before live messages, in seq order.

        ``since=None``: the latest vital per (district, kind), indicator per (district,
        indicator), and the alerts and reports in the backlog.
        ``since=N``: every message after N; FeedError("resync") if the backlog no longer holds
        them all, or if N is ahead of this feed (a client of an earlier run of the feed).
        """
        if since is None:
            latest = (m for m in self._latest.values() if subscription.matches(m))
            incidents = (m for m in self._incidents.values() if subscription.matches(m))
            alerts = (m for m in self._recent
                      if m.type in ("alert", "report") and subscription.matches(m))
            return sorted([*latest, *incidents, *alerts], key=lambda m: m.seq)
        if since > self.last_seq:
            msg = (
                f"since={since} is ahead of this feed's last seq {self.last_seq} (the feed "
                "restarted?); subscribe with since=null for a snapshot"
            )
            raise FeedError("resync", msg)
        if since < self.oldest_seq - 1:
            msg = (
                f"since={since} is older than the backlog, which starts at seq "
                f"{self.oldest_seq}; subscribe with since=null for a snapshot"
            )
            raise FeedError("resync", msg)
        start = since - self.oldest_seq + 1
        return [m for m in islice(self._recent, start, None) if subscription.matches(m)]


def _record(value: bytes, fields: tuple[str, ...] = ("district", "kind")) -> dict[str, Any]:
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        msg = f"record {value[:80]!r} is not valid JSON: {exc}"
        raise FeedError("invalid_record", msg) from None
    if not isinstance(record, dict):
        msg = f"record {value[:80]!r} is not a JSON object"
        raise FeedError("invalid_record", msg)
    for name in fields:
        if not isinstance(record.get(name), str):
            msg = f"record {value[:80]!r} has no string field {name!r}"
            raise FeedError("invalid_record", msg)
    return record


def hello_message(
    *, server: str, epoch: str, last_seq: int, time: str, channels: Collection[str] = CHANNELS
) -> bytes:
    """The first message on every connection: who is talking, and where the feed is at.

    ``epoch`` changes when the feed restarts; seqs of another epoch mean nothing here.
    ``channels`` are those this client may subscribe to (all of them unless its token's role
    sees less), in :data:`CHANNELS` order.
    """
    return orjson.dumps(
        {
            "type": "hello",
            "time": time,
            "server": server,
            "epoch": epoch,
            "channels": [c for c in CHANNELS if c in channels],
            "last_seq": last_seq,
        }
    )


def batch_frame(payloads: list[bytes]) -> bytes:
    """One websocket frame holding ``payloads`` (serialised data messages, in seq order) as a
    ``batch`` message: ``{"type":"batch","messages":[...]}``; the bytes are joined, not parsed."""
    return text_frame(b'{"type":"batch","messages":[' + b",".join(payloads) + b"]}")


def subscribed_message(request: Subscribe, *, last_seq: int, replay: int, time: str) -> bytes:
    """The answer to a subscribe op; ``replay`` messages up to ``last_seq`` follow, then live."""
    return orjson.dumps(
        {
            "type": "subscribed",
            "time": time,
            **{k: v for k, v in request.as_op().items() if k != "op"},
            "last_seq": last_seq,
            "replay": replay,
        }
    )


def error_message(error: FeedError, *, time: str) -> bytes:
    """An ``error`` message carrying a FeedError's code and detail."""
    return orjson.dumps(
        {"type": "error", "time": time, "error": error.code, "detail": error.detail}
    )


def heartbeat_message(*, last_seq: int, time: str) -> bytes:
    """A liveness message; every message up to ``last_seq`` the client wants was sent before it."""
    return orjson.dumps({"type": "heartbeat", "time": time, "last_seq": last_seq})


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, unfragmented websocket text frame (RFC 6455 section 5.2),
    as a server sends it: the feed turns compression off, so the same bytes are right for
    every client and a message is framed once, not once per client."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload
