"""The websocket push feed: Kafka ``vitals`` and ``alerts`` to subscribed operator screens.

The ``vitals`` topic carries window records (feed type ``vital``) and indicator records (type
``indicator``, district ``"city"`` for the whole city); both are on the ``vitals`` channel.

    async with FeedServer(settings) as feed:      # port 0 in settings picks a free port
        print(feed.url)                           # ws://127.0.0.1:54321/feed
        ...

    run_feed(settings)                            # until SIGINT/SIGTERM; prints "feed: ws://..."

The server reads both topics from the beginning (explicit assignment, no consumer group) on a
worker thread, catches up with what they held at start, then serves ``settings.feed.path`` (any
other path gets HTTP 404, except ``/asyncapi.json``: the protocol as an AsyncAPI document). Each
record becomes one numbered message, serialised once
(:class:`connectors.feed.protocol.FeedLog`), filtered and masked once per audience (subscription
and view) and written with one socket write per chunk of records to every client of that
audience that keeps up (:class:`connectors.feed.fanout.Fanout`). A client that does not keep up
gets it through its own bounded :class:`connectors.feed.delivery.Outbox` and writer task, so a
slow client only ever delays itself; one that falls too far behind on alerts is told to
``resync`` and disconnected.

Protocol: on connect the server sends ``hello``; after a subscribe op it sends ``subscribed``,
the replay, then live messages with no gap and no duplicate (replay and registration happen
in one step of the event loop, between two Kafka batches). A ``heartbeat`` goes out every
``heartbeat_s``; websocket pings close dead connections.

Authentication (``connectors.feed.auth``): given ``authenticate`` and ``view``, the server
checks a token presented as ``?token=...`` or in a subscribe op, refuses a bad one with an
``error`` (code ``unauthorized``) and closes that connection (1008), and masks every data
message by the client's role. A client without a token is an operator unless
``settings.auth.required``. Given ``may_subscribe`` too, a subscribe op naming a channel the
role may see nothing of is answered with ``forbidden_channel`` (the connection stays open).
Refusals are logged without the token.

Abuse: each connection may send ``ops_burst`` ops at once and ``ops_per_s`` sustained; the
first op over that gets a ``rate_limited`` error and the connection is closed (1008). A frame
over :data:`MAX_FRAME_BYTES` closes the connection (1009). Neither touches other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from connectors.audit_log import AuditLog
from connectors.feed.asyncapi import asyncapi
from connectors.feed.auth import (
    Authenticate,
    MaskCache,
    MaySubscribe,
    View,
    admit,
    allowed_channels,
    check_channels,
    quiet_logger,
    split_token,
    token_in_path,
)
from connectors.feed.delivery import Outbox
from connectors.feed.fanout import Fanout, view_key
from connectors.feed.fanout import FeedClientState as _Client
from connectors.feed.protocol import (
    REPORTS,
    FeedError,
    FeedLog,
    FeedMessage,
    Subscription,
    error_message,
    heartbeat_message,
    hello_message,
    parse_request,
    subscribed_message,
)
from connectors.kafka import create_topics, tail_consumer
from connectors.metrics import FEED_CLIENTS, FEED_MESSAGES_SENT, FEED_SLOW_CLIENTS
from connectors.rate_limit import RateLimiter
from connectors.tokens import Claims
from models.errors import ConnectorError
from models.timefmt import iso
from models.vitals.records import CITY
from settings.config import Settings
from settings.indicators import INDICATORS

__all__ = ["Digest", "FeedServer", "run_feed"]

log = logging.getLogger(__name__)

BATCH = 500
"""Most records taken from Kafka in one poll."""
DISPATCH_CHUNK = 500
"""Records dispatched between two chances for client writers to run: a whole poll, so a
client that keeps up gets a poll's messages in one socket write (with 1,000 clients and the
demo's window close of ~780 messages, a third of the CPU of chunks of 100)."""
POLL_S = 0.1
"""How long one poll waits for records (also how long shutting down may wait for it)."""
ASYNCAPI_PATH = "/asyncapi.json"
"""Where the feed serves its AsyncAPI document (``connectors.feed.asyncapi``)."""
LISTEN_BACKLOG = 1024
"""Connections the kernel may hold before the feed accepts them: an operations centre's clients
all reconnect at once after a restart; past asyncio's default of 100 the rest wait for SYN
retries, seconds each."""
MAX_FRAME_BYTES = 65_536
"""The largest frame a client may send (a subscribe op with a token is well under 8 KiB)."""
WRITE_BYTES = 262_144
"""Most bytes of queued messages a client's writer puts in one socket write."""
REPLAY_CACHE = 64
"""Distinct replays (subscription, since, view) kept between two new messages."""


class Digest(Protocol):
    """Something the feed computes from what it reads and publishes on its own ``channel``
    every ``interval_s`` (department KPIs from the incident events, for one)."""

    channel: str
    interval_s: float

    def observe(self, channel: str, value: bytes) -> None:
        """See one Kafka record of a feed channel (called on the feed's event loop: be quick)."""

    def records(self) -> list[bytes]:
        """The records to publish now (called on a worker thread)."""


def _now() -> str:
    return iso(time.time())


class FeedServer:
    """The push feed, bound to ``settings.feed`` host, port and path, fed from Kafka.

    ``outbox_limit`` is how many live messages may wait for one client before vitals are
    coalesced and alerts overflow it (keep it a few times :data:`BATCH`: one poll's records
    are queued at once); ``catchup_timeout_s`` bounds how long start waits to
    have read what the topics held (it serves anyway afterwards, with a warning).
    ``authenticate`` (a token's Claims, or TokenError) and ``view`` (alerts.access.view) turn
    on tokens and role masking; ``settings.auth.required`` then refuses clients without one.
    ``may_subscribe`` (alerts.access.may_subscribe) refuses channels a role may not see.
    ``digests`` (:class:`Digest`) publish what the feed computes from its records, such as
    the departments' KPIs on the ``kpis`` channel.
    ``ops_per_s`` and ``ops_burst`` bound the ops of one connection; ``clock`` (monotonic
    seconds) times them.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        heartbeat_s: float = 5.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        outbox_limit: int = 2000,
        catchup_timeout_s: float = 30.0,
        authenticate: Authenticate | None = None,
        view: View | None = None,
        may_subscribe: MaySubscribe | None = None,
        digests: Sequence[Digest] = (),
        ops_per_s: float = 2.0,
        ops_burst: int = 20,
        clock: Callable[[], float] = time.monotonic,
        audit: AuditLog | None = None,
        audit_every_s: float = 60.0,
    ) -> None:
        if settings.auth.required and (authenticate is None or view is None):
            msg = "auth.required is true but the feed was given no token check (set the secret)"
            raise ConnectorError("feed", f"{settings.feed.host}:{settings.feed.port}", msg)
        self.settings = settings
        self.authenticate = authenticate
        self._masks = MaskCache(view, 4 * settings.feed.backlog) if view is not None else None
        self.may_subscribe = may_subscribe
        self.digests = tuple(digests)
        self.ops_per_s = ops_per_s
        self.ops_burst = ops_burst
        self._clock = clock
        RateLimiter(ops_per_s, ops_burst)  # ValueError now, not at the first connection
        self.heartbeat_s = heartbeat_s
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.outbox_limit = outbox_limit
        self.catchup_timeout_s = catchup_timeout_s
        self.log = FeedLog(settings.feed.backlog)
        self.epoch = uuid.uuid4().hex[:12]
        self.port = settings.feed.port
        topics = settings.kafka.topics
        self._channel_of = {topics.vitals: "vitals", topics.alerts: "alerts",
                            topics.incidents: "incidents", topics.reports: REPORTS}
        # indicator records are filtered like vitals: district "city", kind = indicator name
        self._districts = [*settings.district_ids(), CITY]
        self._kinds = [*settings.kinds, *(i for i in INDICATORS if i not in settings.kinds)]
        self._clients: set[_Client] = set()
        self.audit = audit
        self.audit_every_s = audit_every_s
        self._fanout = Fanout(self._shown, on_sent=FEED_MESSAGES_SENT.inc,
                              on_read=self._audit_read if audit is not None else None)
        self._consumer: Consumer | None = None
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._targets: dict[tuple[str, int], int] = {}
        self._caught_up = asyncio.Event()
        self._replays: dict[tuple[Subscription, int | None, Any],
                            tuple[list[FeedMessage], dict[str, int]]] = {}
        self._replays_at = -1  # the last seq the cached replays were computed at

    @property
    def url(self) -> str:
        """The ws:// URL clients connect to (with the bound port)."""
        feed = self.settings.feed
        return f"ws://{feed.host}:{self.port}{feed.path}"

    @property
    def clients(self) -> int:
        """How many clients are connected now."""
        return len(self._clients)

    async def __aenter__(self) -> FeedServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the consumer, catch up with the topics, then accept connections."""
        self._consumer, self._targets = await asyncio.to_thread(self._open_consumer)
        if not self._targets:
            self._caught_up.set()
        self._tasks.append(asyncio.create_task(self._pump(), name="feed-pump"))
        try:
            await asyncio.wait_for(self._caught_up.wait(), self.catchup_timeout_s)
        except TimeoutError:
            log.warning(
                "feed: not caught up with Kafka after %g s (at seq %d); serving anyway",
                self.catchup_timeout_s,
                self.log.last_seq,
            )
        feed = self.settings.feed
        try:
            self._server = await serve(
                self._handle,
                feed.host,
                feed.port,
                process_request=self._check_path,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                compression=None,  # per-client deflate would undo "serialise once"
                backlog=LISTEN_BACKLOG,
                max_size=MAX_FRAME_BYTES,
                server_header="cityheart-feed",
                logger=quiet_logger("websockets.server"),  # no debug dumps: they carry tokens
            )
        except OSError as exc:
            await self.close()
            msg = f"cannot listen: {exc.strerror or exc}"
            raise ConnectorError("feed", f"{feed.host}:{feed.port}", msg) from exc
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="feed-heartbeats"))
        if self.audit is not None:
            self._tasks.append(asyncio.create_task(self._audit_reads(), name="feed-audit"))
        for digest in self.digests:
            self._tasks.append(asyncio.create_task(self._publish(digest),
                                                   name=f"feed-{digest.channel}"))
        log.debug("feed: serving %s from seq %d, epoch %s", self.url, self.log.last_seq, self.epoch)

    async def run_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; ConnectorError if reading Kafka failed meanwhile."""
        stopped = asyncio.create_task(stop.wait())
        pump = self._tasks[0]
        try:
            await asyncio.wait([stopped, pump], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if pump.done() and not stop.is_set():
            failure = pump.exception() if not pump.cancelled() else None
            msg = f"the feed stopped reading topics {list(self._channel_of)}: {failure!r}"
            raise ConnectorError("kafka", self.settings.kafka.bootstrap, msg)

    async def close(self) -> None:
        """Stop accepting, close every connection, stop reading Kafka."""
        self._closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in self._tasks:
            if task.get_name() != "feed-pump":  # heartbeats and digests sleep: wake them
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
            self._consumer = None

    # Kafka side

    def _open_consumer(self) -> tuple[Consumer, dict[tuple[str, int], int]]:
        """The consumer, and the end offset of every non-empty partition now (to catch up to)."""
        kafka = self.settings.kafka
        topics = list(self._channel_of)
        create_topics(kafka.bootstrap, topics, kafka.partitions)
        consumer = tail_consumer(kafka.bootstrap, topics, start="beginning")
        targets: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 10)
            except KafkaException as exc:
                consumer.close()
                msg = f"cannot read the end offset of topic {tp.topic!r}: {exc.args[0]}"
                raise ConnectorError("kafka", kafka.bootstrap, msg) from exc
            if high > 0:
                targets[(tp.topic, tp.partition)] = high
        return consumer, targets

    async def _pump(self) -> None:
        try:
            await self._pump_records()
        except Exception:
            log.exception("feed: stopped reading Kafka")
            raise

    async def _pump_records(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not self._closing:
            try:
                records = await asyncio.to_thread(consumer.consume, BATCH, POLL_S)
            except KafkaException as exc:
                log.error("feed: reading Kafka failed, retrying in 1 s: %s", exc.args[0])
                await asyncio.sleep(1.0)
                continue
            now = _now()
            for start in range(0, len(records), DISPATCH_CHUNK):
                batch: list[FeedMessage] = []
                for record in records[start : start + DISPATCH_CHUNK]:
                    batch += self._dispatch(record, now)
                self._offer(batch)  # one write per client per chunk
                await asyncio.sleep(0)  # let writers drain and requests in between chunks

    def _dispatch(self, record: Any, now: str) -> list[FeedMessage]:
        """The messages of one record (logged and numbered); none for a bad record."""
        if record.error() is not None:
            log.warning("feed: Kafka reports %s", record.error())
            return []
        topic, partition, offset = record.topic(), record.partition(), record.offset()
        try:
            messages = self.log.append_all(self._channel_of[topic], record.value() or b"", now)
        except FeedError as exc:
            log.warning("feed: skipping %s[%d]@%d: %s", topic, partition, offset, exc.detail)
            messages = []
        if messages:
            for digest in self.digests:
                digest.observe(self._channel_of[topic], record.value() or b"")
        target = self._targets.get((topic, partition))
        if target is not None and offset + 1 >= target:
            del self._targets[(topic, partition)]
            if not self._targets:
                self._caught_up.set()
        return messages

    def _offer(self, messages: Sequence[FeedMessage]) -> None:
        self._fanout.offer(messages)

    async def _publish(self, digest: Digest) -> None:
        """Every ``digest.interval_s``, its records as messages of its channel."""
        while not self._closing:
            try:
                values = await asyncio.to_thread(digest.records)
            except Exception:
                log.exception("feed: %s digest failed; trying again later", digest.channel)
                values = []
            now = _now()
            for value in values:
                try:
                    self._offer(self.log.append_all(digest.channel, value, now))
                except FeedError as exc:
                    log.warning("feed: skipping a %s record: %s", digest.channel, exc.detail)
            await asyncio.sleep(digest.interval_s)

    # websocket side

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == self.settings.feed.path:
            return None
        if path == ASYNCAPI_PATH:
            body = orjson.dumps(asyncapi(server=self.url, title=f"cityheart feed "
                                         f"({self.settings.city.name})"))
            headers = Headers([("Content-Type", "application/json"),
                               ("Content-Length", str(len(body)))])
            return Response(HTTPStatus.OK, "OK", headers, body)
        text = f"no feed at {path}; the feed is at {self.settings.feed.path}\n"
        return connection.respond(HTTPStatus.NOT_FOUND, text)

    async def _handle(self, ws: ServerConnection) -> None:
        client = _Client(ws, Outbox(self.outbox_limit), RateLimiter(self.ops_per_s,
                                                                     self.ops_burst, max_keys=2))
        token = token_in_path(ws.request.path) if ws.request is not None else None
        refusal = await self._admit(client, token) if token is not None else None
        client.admitted = client.admitted or not self.settings.auth.required
        if refusal is None:
            refusal = await self._serve(client)
        if refusal is not None:
            log.warning("feed: refused client %s (%s): %s", ws.remote_address, refusal.code,
                        refusal.detail)
            await self._refuse(ws, refusal)

    async def _refuse(self, ws: ServerConnection, refusal: FeedError) -> None:
        """Send the error, then close (1008); frames still coming in are read and dropped
        meanwhile, or a flooder's answer to the close would wait behind them until
        close_timeout."""
        discard = asyncio.create_task(_discard(ws))
        with contextlib.suppress(ConnectionClosed):
            await ws.send(error_message(refusal, time=_now()), text=True)
            await ws.close(1008, refusal.code)
        discard.cancel()
        await asyncio.gather(discard, return_exceptions=True)

    async def _serve(self, client: _Client) -> FeedError | None:
        """Talk to an admitted client until it leaves; the refusal if it sends a bad token or
        floods."""
        ws = client.ws
        hello = hello_message(
            server=f"cityheart feed ({self.settings.city.name})",
            epoch=self.epoch,
            last_seq=self.log.last_seq,
            time=_now(),
            channels=allowed_channels(self.may_subscribe, client.claims),
        )
        try:
            await ws.send(hello, text=True)
        except ConnectionClosed:
            return None
        writer = asyncio.create_task(self._write(client))
        self._clients.add(client)
        FEED_CLIENTS.inc()
        log.debug("feed: client %s connected", ws.remote_address)
        try:
            async for frame in ws:
                if not client.ops.allow("ops", self._clock()):
                    return self._flooding()
                token, frame = split_token(frame)
                if token is not None or not client.admitted:
                    if (refusal := await self._admit(client, token)) is not None:
                        return refusal
                self._on_request(client, frame)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            self._fanout.leave(client)
            FEED_CLIENTS.dec()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            log.debug("feed: client %s gone", ws.remote_address)
        return None

    async def _admit(self, client: _Client, token: Any) -> FeedError | None:
        """Take the claims of ``token`` (None: none given); the ``unauthorized`` error if bad.

        Checked on a worker thread: a provider's token may need its keys fetched over HTTP,
        which must not stall every other client.
        """
        try:
            client.claims = await asyncio.to_thread(admit, self.authenticate, token)
        except FeedError as exc:
            self._fanout.leave(client)
            return exc
        client.admitted = True
        return None

    def _flooding(self) -> FeedError:
        detail = (f"more than {self.ops_burst} ops at once or {self.ops_per_s:g} a second "
                  "from this connection; closing it")
        return FeedError("rate_limited", detail)

    def _on_request(self, client: _Client, frame: str | bytes) -> None:
        """Answer one op; replay and registration happen here with no await in between."""
        now = _now()
        try:
            request = parse_request(frame, districts=self._districts, kinds=self._kinds)
            self._check_channels(client, request.subscription)
            replay, districts = self._replay(client.claims, request.subscription, request.since)
        except FeedError as exc:
            client.outbox.push_control(error_message(exc, time=now))
            client.wake.set()
            return
        client.outbox.clear()
        client.outbox.push_control(
            subscribed_message(request, last_seq=self.log.last_seq, replay=len(replay), time=now)
        )
        client.outbox.extend(replay)
        if self.audit is not None and replay:
            self._audit_read(client, request.subscription, districts)
        self._fanout.join(client, request.subscription)
        client.wake.set()

    def _replay(self, claims: Claims | None, subscription: Subscription,
                since: int | None) -> tuple[list[FeedMessage], dict[str, int]]:
        """The replay for a subscribe op (as ``claims`` may see it) and its messages per
        district; computed once per (subscription, since, view) while no new message came
        in, since a thousand screens reconnecting at once ask for the same snapshot."""
        if self._replays_at != self.log.last_seq or len(self._replays) >= REPLAY_CACHE:
            self._replays.clear()
            self._replays_at = self.log.last_seq
        key = (subscription, since, view_key(claims))
        cached = self._replays.get(key)
        if cached is None:
            everything = self.log.replay_for(subscription, since)  # or FeedError: not cached
            replay = [m for m in (self._shown(claims, m) for m in everything) if m is not None]
            cached = self._replays[key] = (replay, _per_district(replay))
        return cached

    def _check_channels(self, client: _Client, subscription: Subscription) -> None:
        try:
            check_channels(self.may_subscribe, client.claims, subscription.channels)
        except FeedError as exc:
            who = client.claims.sub if client.claims is not None else None
            log.info("feed: client %s (sub %r): %s", client.ws.remote_address, who, exc.detail)
            raise

    def _shown(self, claims: Claims | None, message: FeedMessage) -> FeedMessage | None:
        """``message`` as a client with ``claims`` may see it (None: not at all)."""
        return message if self._masks is None else self._masks.shown(claims, message)

    async def _write(self, client: _Client) -> None:
        """Send what waits in the client's Outbox: its frames (framed once per message, not
        per client) joined into one socket write of up to :data:`WRITE_BYTES`, then websockets'
        flow control (``drain``) before the next. Bytes reach the socket before the writer
        awaits anything, so what Fanout writes directly afterwards comes after them."""
        ws, outbox = client.ws, client.outbox
        with contextlib.suppress(ConnectionClosed):
            while True:
                await client.wake.wait()
                client.wake.clear()
                if outbox.overflowed:
                    await self._drop_slow(client)
                    return
                while True:
                    frames, count = outbox.take(WRITE_BYTES)
                    if not count:
                        break
                    if ws.protocol.state is not State.OPEN:
                        return  # closing: its handler is about to end this task
                    ws.transport.write(frames)
                    FEED_MESSAGES_SENT.inc(count)
                    await ws.drain()

    async def _drop_slow(self, client: _Client) -> None:
        self._fanout.leave(client)
        detail = (
            f"client too slow: more than {self.outbox_limit} messages were waiting; reconnect "
            "and subscribe with since=<the last seq you received>"
        )
        log.warning("feed: dropping slow client %s", client.ws.remote_address)
        FEED_SLOW_CLIENTS.inc()
        await client.ws.send(error_message(FeedError("resync", detail), time=_now()), text=True)
        await client.ws.close(1013, "too slow, resync")

    def _audit_read(self, client: _Client, subscription: Subscription,
                    districts: dict[str, int]) -> None:
        if self.audit is not None:
            what = "feed:" + ",".join(sorted(subscription.channels) or ["all"])
            self.audit.record(client.claims, "feed", what, districts)

    async def _audit_reads(self) -> None:
        while True:
            await asyncio.sleep(self.audit_every_s)
            self._fanout.flush_reads()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            payload = heartbeat_message(last_seq=self.log.last_seq, time=_now())
            for client in self._clients:
                client.outbox.push_control(payload, replace="heartbeat")
                client.wake.set()


def _per_district(messages: Sequence[FeedMessage]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        counts[message.district] = counts.get(message.district, 0) + 1
    return counts


async def _discard(ws: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


def run_feed(
    settings: Settings,
    *,
    authenticate: Authenticate | None = None,
    view: View | None = None,
    may_subscribe: MaySubscribe | None = None,
    digests: Sequence[Digest] = (),
    audit: AuditLog | None = None,
) -> None:
    """Run the feed until SIGINT or SIGTERM; print ``feed: <url>`` once it accepts connections.

    ``authenticate``, ``view`` and ``may_subscribe`` turn on tokens, role masking and channel
    checks; ``digests`` publish what the feed computes itself (see :class:`FeedServer`);
    ``audit`` records what each client received.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(settings, authenticate, view, may_subscribe, digests,
                                         audit))


async def _serve_until_stopped(
    settings: Settings,
    authenticate: Authenticate | None,
    view: View | None,
    may_subscribe: MaySubscribe | None,
    digests: Sequence[Digest],
    audit: AuditLog | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FeedServer(
        settings, authenticate=authenticate, view=view, may_subscribe=may_subscribe,
        digests=digests, audit=audit,
    ) as feed:
        log.info("feed: %s", feed.url)
        print(f"feed: {feed.url}", flush=True)
        await feed.run_until(stop)
        log.info("feed: stopping")
