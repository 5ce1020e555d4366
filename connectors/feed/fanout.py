"""The push feed's fan-out: one message to every subscribed client, with work per audience.

An *audience* is the clients that share a subscription and a view (operators and anonymous
clients share one view; any other role sees what its role and department may see). For a
batch of messages (one chunk of a Kafka poll) the fan-out checks the filters and masks once
per audience, joins the audience's frames (each message is framed once, when it is made:
:attr:`~connectors.feed.protocol.FeedMessage.frame`) and writes them to each of its clients
that keeps up in a single socket write::

    fanout = Fanout(shown=masks.shown, on_sent=counter.inc)  # on_sent: messages written
    fanout.join(client, subscription)      # after the replay is queued in client.outbox
    fanout.offer(messages)                 # once per batch of new messages
    fanout.leave(client)                   # on disconnect, refusal or resync
    fanout.flush_reads()                   # now and then: on_read for what clients received

An audience whose subscription asked for ``batch`` gets its share as one ``batch`` frame
(:func:`~connectors.feed.protocol.batch_frame`, the payloads joined, not parsed again) instead of
one frame per message; what waits in a slow client's Outbox still goes one message per frame.

For the read audit each audience counts the messages of each district it was offered; a client
notes the counts when it joins, so what it received since is a difference taken when it
leaves or :meth:`flush_reads` runs (``on_read``): nothing is counted per client per message.

A client is written to directly only while it keeps up: nothing waits in its
:class:`~connectors.feed.delivery.Outbox` and its socket holds at most :data:`DIRECT_WRITE_LIMIT`
unsent bytes. Otherwise the batch goes into its Outbox and its own writer task sends it, so a
slow client meets the Outbox policy (vitals coalesced, ``resync`` on overflow) and never delays
the others. Order is kept: a batch goes direct only when nothing of that client is queued, and
a queued message's bytes reach the socket in the writer's write before it awaits anything.
The writer too sends what waits in one write of joined frames, not one ``send`` per message
(a thousand clients subscribing at once each get a snapshot of hundreds of messages).

Why not :func:`websockets.asyncio.server.broadcast`: it encodes and writes each message to
each client separately, one ``send()`` system call per message per client, which profiling
showed as most of the feed's time with 1,000 clients; it also writes whatever the client's
buffer holds, which would bypass the Outbox policy. Writing a client's whole batch at once
keeps one system call per client per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from connectors.feed.delivery import Outbox
from connectors.feed.protocol import FeedMessage, Subscription, batch_frame, text_frame
from connectors.rate_limit import RateLimiter
from connectors.tokens import Claims

__all__ = ["DIRECT_WRITE_LIMIT", "Fanout", "FeedClientState", "text_frame", "view_key"]

DIRECT_WRITE_LIMIT = 32_768
"""Unsent bytes a client's socket may hold and still be written to directly (websockets'
default high-water mark); above it, messages wait in the client's Outbox."""

Shown = Callable[[Claims | None, FeedMessage], FeedMessage | None]
"""A message as a client with these claims may see it (None: not at all)."""

OnRead = Callable[["FeedClientState", Subscription, dict[str, int]], object]
"""(client, its subscription, messages per district it was sent since it last reported)."""


@dataclass(eq=False)
class FeedClientState:
    """One connected client: its socket, its queue, its limits and what it asked for."""

    ws: ServerConnection
    outbox: Outbox
    ops: RateLimiter
    subscription: Subscription | None = None
    claims: Claims | None = None
    admitted: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    read_mark: dict[str, int] = field(default_factory=dict)
    """Its audience's offered counts when this client last reported what it read."""

    def offer(self, message: FeedMessage) -> None:
        """Queue ``message`` for the writer task and wake it."""
        self.outbox.push(message)
        self.wake.set()

    def keeping_up(self) -> bool:
        """Whether a message may be written to the socket now, ahead of nothing."""
        if len(self.outbox) or self.outbox.overflowed:
            return False
        transport = self.ws.transport
        return transport is not None and transport.get_write_buffer_size() <= DIRECT_WRITE_LIMIT


def view_key(claims: Claims | None) -> Any:
    """What decides how messages are masked for a client with ``claims``: clients with equal
    keys see the same bytes (operators and clients without a token share ``None``)."""
    if claims is None or claims.role == "operator":
        return None
    return claims.role, claims.department, claims.grant


@dataclass(eq=False)
class _Audience:
    subscription: Subscription
    claims: Claims | None
    members: set[FeedClientState] = field(default_factory=set)
    offered: dict[str, int] = field(default_factory=dict)  # messages per district, ever


class Fanout:
    """The subscribed clients grouped by audience; :meth:`offer` delivers new messages."""

    def __init__(self, shown: Shown, on_sent: Callable[[int], object] = lambda n: None,
                 on_read: OnRead | None = None) -> None:
        self._shown = shown
        self._on_sent = on_sent
        self._on_read = on_read
        self._audiences: dict[tuple[Subscription, Any], _Audience] = {}
        self._key_of: dict[FeedClientState, tuple[Subscription, Any]] = {}

    @property
    def audiences(self) -> int:
        """How many distinct (subscription, view) groups have clients now."""
        return len(self._audiences)

    def join(self, client: FeedClientState, subscription: Subscription) -> None:
        """Give ``client`` live messages of ``subscription`` from now on (replacing any)."""
        self.leave(client)
        client.subscription = subscription
        key = (subscription, view_key(client.claims))
        audience = self._audiences.get(key)
        if audience is None:
            audience = self._audiences[key] = _Audience(subscription, client.claims)
        audience.members.add(client)
        client.read_mark = dict(audience.offered)
        self._key_of[client] = key

    def leave(self, client: FeedClientState) -> None:
        """Stop sending live messages to ``client``."""
        client.subscription = None
        key = self._key_of.pop(client, None)
        if key is None:
            return
        audience = self._audiences[key]
        self._report(client, audience)
        audience.members.discard(client)
        if not audience.members:
            del self._audiences[key]

    def flush_reads(self) -> None:
        """Report to ``on_read`` what each client received since it last reported."""
        for audience in self._audiences.values():
            for client in audience.members:
                self._report(client, audience)

    def _report(self, client: FeedClientState, audience: _Audience) -> None:
        if self._on_read is None:
            return
        mark = client.read_mark
        read = {d: n - mark.get(d, 0) for d, n in audience.offered.items() if n > mark.get(d, 0)}
        client.read_mark = dict(audience.offered)
        if read:
            self._on_read(client, audience.subscription, read)

    def offer(self, messages: Sequence[FeedMessage]) -> None:
        """Deliver a batch of messages (in seq order) to every client whose subscription and
        view let them through: each audience's share is framed once and written to each of
        its clients that keeps up in one socket write."""
        shares: dict[_Audience, list[FeedMessage]] = {}
        for message in messages:
            for audience in self._audiences.values():
                if not audience.subscription.matches(message):
                    continue
                shown = self._shown(audience.claims, message)
                if shown is not None:
                    shares.setdefault(audience, []).append(shown)
        for audience, share in shares.items():
            if self._on_read is not None:
                offered = audience.offered
                for message in share:
                    offered[message.district] = offered.get(message.district, 0) + 1
            self._deliver(audience.members, share, batch=audience.subscription.batch)

    def _deliver(self, members: set[FeedClientState], share: list[FeedMessage], *,
                 batch: bool) -> None:
        frames: bytes | None = None
        written = 0
        for client in members:
            if not client.keeping_up():
                for message in share:
                    client.offer(message)
                continue
            if client.ws.protocol.state is not State.OPEN:
                continue  # closing: its handler is about to remove it
            if frames is None:  # once per audience: its share as frames, or one batch frame
                frames = (batch_frame([m.payload for m in share]) if batch
                          else b"".join([m.frame for m in share]))
            client.ws.transport.write(frames)
            written += len(share)
        if written:
            self._on_sent(written)

