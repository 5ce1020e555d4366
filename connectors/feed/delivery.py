"""Delivery policies of the push feed, pure: a server's per-client Outbox, a client's Deduper.

    outbox = Outbox(limit=1000)           # one per connected client
    outbox.push_control(subscribed_bytes)
    outbox.extend(replay)                 # the replay never counts against the limit
    if not outbox.push(message):          # live messages
        ...                               # overflowed: send error "resync", disconnect
    payload = outbox.pop()                # one message's JSON, or None
    frames, count = outbox.take(65_536)   # or: queued messages as websocket frames, joined

A slow client must never slow the others, and must never silently miss an alert. So while its
queue is full, a new vital replaces the queued vital of the same (district, kind) (a screen only
needs the latest); anything else that does not fit overflows the queue: the queue is dropped and
the client is told to ``resync`` (reconnect and resume with ``since`` = the last seq it got).

:class:`Deduper` lets a client that resubscribed after the feed restarted (new epoch, new seqs)
drop what it already showed: alerts by id, vitals by (district, kind) and window end.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from typing import Any

from connectors.feed.protocol import FeedMessage, text_frame

__all__ = ["Deduper", "Outbox"]


class Outbox:
    """A bounded, ordered queue of serialised messages waiting to go to one client (each
    kept as its JSON and as its websocket frame, which data messages carry framed once)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            msg = f"outbox limit must be at least 1, got {limit}"
            raise ValueError(msg)
        self.limit = limit
        self.overflowed = False
        self.coalesced = 0
        self._items: OrderedDict[int, tuple[bytes, bytes, Any]] = OrderedDict()
        self._ticket_of: dict[Any, int] = {}
        self._next = 0
        self._bonus = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, message: FeedMessage) -> bool:
        """Queue a live message; False if the queue overflowed (now or before)."""
        if self.overflowed:
            return False
        if len(self._items) < self.limit + self._bonus:
            self._append(message.payload, message.frame, self._coalesce_key(message))
            return True
        key = self._coalesce_key(message)
        if key is not None and key in self._ticket_of:
            del self._items[self._ticket_of.pop(key)]
            self._append(message.payload, message.frame, key)
            self.coalesced += 1
            return True
        self.overflowed = True
        self.clear()
        return False

    def extend(self, messages: Iterable[FeedMessage]) -> None:
        """Queue a replay; it may exceed the limit, which grows until the replay is sent."""
        for message in messages:
            self._append(message.payload, message.frame, self._coalesce_key(message))
            self._bonus += 1

    def push_control(self, payload: bytes, *, replace: str | None = None) -> None:
        """Queue a control message; with ``replace``, it supersedes a queued one of that name."""
        key = ("control", replace) if replace is not None else None
        if key is not None and key in self._ticket_of:
            del self._items[self._ticket_of.pop(key)]
        self._append(payload, text_frame(payload), key)

    def pop(self) -> bytes | None:
        """The next payload to send, or None when the queue is empty."""
        if not self._items:
            return None
        return self._pop()[0]

    def take(self, max_bytes: int) -> tuple[bytes, int]:
        """The next queued messages as websocket frames joined for one socket write (as many as
        fit in ``max_bytes``, or the first alone if it does not) and how many (``b"", 0``: none)."""
        items, ticket_of = self._items, self._ticket_of
        frames: list[bytes] = []
        size = 0
        while items:
            ticket, item = items.popitem(last=False)
            _, frame, key = item
            if frames and size + len(frame) > max_bytes:
                items[ticket] = item
                items.move_to_end(ticket, last=False)
                break
            if key is not None and ticket_of.get(key) == ticket:
                del ticket_of[key]
            frames.append(frame)
            size += len(frame)
        self._bonus = max(0, self._bonus - len(frames))
        return b"".join(frames), len(frames)

    def _pop(self) -> tuple[bytes, bytes]:
        ticket, (payload, frame, key) = self._items.popitem(last=False)
        if key is not None and self._ticket_of.get(key) == ticket:
            del self._ticket_of[key]
        if self._bonus:
            self._bonus -= 1
        return payload, frame

    def clear(self) -> None:
        """Drop everything queued (a new subscription replaces the old one's backlog)."""
        self._items.clear()
        self._ticket_of.clear()
        self._bonus = 0

    def _append(self, payload: bytes, frame: bytes, key: Any) -> None:
        self._next += 1
        self._items[self._next] = (payload, frame, key)
        if key is not None:
            self._ticket_of[key] = self._next

    @staticmethod
    def _coalesce_key(message: FeedMessage) -> Any:
        return ("vital", message.district, message.kind) if message.type == "vital" else None


class Deduper:
    """Remembers what a client delivered, to drop it if a restarted feed sends it again.

    Vitals per (district, kind) only move forward: one whose ``window_end`` is not after the
    last delivered one is stale. Alerts are known by ``id``; the last ``remember`` ids are kept.
    Messages without those fields always pass.
    """

    def __init__(self, remember: int = 10_000) -> None:
        self._window_end: dict[tuple[Any, Any], str] = {}
        self._ids: set[Any] = set()
        self._order: deque[Any] = deque()
        self._remember = remember

    def fresh(self, message: Mapping[str, Any]) -> bool:
        """Whether ``message`` is new to this client; records it if so."""
        if message.get("type") == "vital":
            end = message.get("window_end")
            if not isinstance(end, str):
                return True
            key = (message.get("district"), message.get("kind"))
            seen = self._window_end.get(key)
            if seen is not None and end <= seen:
                return False
            self._window_end[key] = end
            return True
        alert_id = message.get("id")
        if message.get("type") != "alert" or alert_id is None:
            return True
        if alert_id in self._ids:
            return False
        self._ids.add(alert_id)
        self._order.append(alert_id)
        if len(self._order) > self._remember:
            self._ids.discard(self._order.popleft())
        return True
