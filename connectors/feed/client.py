"""A client of the push feed for scripts and the CLI: data messages as dicts, across restarts.

    with FeedClient("ws://127.0.0.1:8765/feed", districts=["old-town"], kinds=["pm25"]) as feed:
        for message in feed.messages(timeout=60):     # stops after 60 s; None: forever
            print(message["type"], message["district"], message["seq"])

The client subscribes, remembers the last seq it got (from data messages and heartbeats) and, when
the connection drops, reconnects with exponential backoff and resumes with ``since=<last seq>``:
nothing is lost and nothing repeated. If the feed itself restarted (its ``hello`` names another
epoch, so old seqs mean nothing) or no longer holds that far back, it takes a fresh snapshot and
drops what it already delivered (:class:`connectors.feed.delivery.Deduper`).

It raises :class:`~models.errors.ConnectorError` naming the URL when it cannot connect within
``connect_timeout`` (the first time) or ``reconnect_timeout`` (later; None: keep trying), when
the server refuses the handshake (wrong path: HTTP 404), or when it refuses the subscription
or the ``token`` (sent as ``?token=...``; never part of ``url`` in errors and logs).
With ``fit_channels`` it asks only for those of ``channels`` the feed's ``hello`` offers (a
token's role may see fewer), instead of being refused with ``forbidden_channel``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import quote

import orjson
from websockets.exceptions import (
    ConnectionClosed,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.sync.client import ClientConnection, connect

from connectors.feed.auth import quiet_logger
from connectors.feed.delivery import Deduper
from connectors.feed.protocol import Subscribe, Subscription
from connectors.retry import backoff
from models.errors import ConnectorError

__all__ = ["FeedClient", "backoff", "is_retryable"]

log = logging.getLogger(__name__)

DATA_TYPES = ("vital", "indicator", "alert", "incident_event", "incident", "report", "kpi")


def is_retryable(exc: Exception) -> bool:
    """Whether connecting again may help: network errors and 5xx yes; 4xx, bad URIs no."""
    if isinstance(exc, InvalidStatus):
        return exc.response.status_code >= 500
    if isinstance(exc, InvalidURI):
        return False
    return isinstance(exc, (OSError, TimeoutError, ConnectionClosed, InvalidMessage, EOFError))


class FeedClient:
    """A subscription to the feed at ``url``; iterate :meth:`messages` for data messages."""

    def __init__(
        self,
        url: str,
        *,
        channels: Iterable[str] = (),
        districts: Iterable[str] = (),
        kinds: Iterable[str] = (),
        since: int | None = None,
        connect_timeout: float | None = 10.0,
        reconnect_timeout: float | None = None,
        open_timeout: float = 5.0,
        delays: Callable[[], Iterator[float]] = backoff,
        retryable: Callable[[Exception], bool] = is_retryable,
        dedupe: bool = True,
        token: str | None = None,
        fit_channels: bool = False,
    ) -> None:
        self.url = url
        self._connect_url = url if token is None else _with_token(url, token)
        self.subscription = Subscription(
            frozenset(channels), frozenset(districts), frozenset(kinds)
        )
        self._wanted = self.subscription.channels if fit_channels else None
        self.last_seq = since
        self.epoch: str | None = None
        self.connections = 0
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self.open_timeout = open_timeout
        self._delays = delays
        self._retryable = retryable
        self._deduper = Deduper() if dedupe else None
        self._ws: ClientConnection | None = None
        self._subscribed = False

    def __enter__(self) -> FeedClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (messages() reconnects if called again)."""
        if self._ws is not None:
            ws, self._ws = self._ws, None
            ws.close()

    def messages(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Data messages as they come; the iterator ends once ``timeout`` s have passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (message := self.next_message(deadline)) is not None:
            yield message

    def next_message(self, deadline: float | None = None) -> dict[str, Any] | None:
        """The next data message, or None if the monotonic ``deadline`` comes first."""
        while True:
            if self._ws is None and not self._open(deadline):
                return None
            assert self._ws is not None
            try:
                message = self._handle(self._ws.recv(timeout=_left(deadline)))
            except TimeoutError:
                return None
            except ConnectionClosed as exc:
                self._lost(exc)
                continue
            if message is not None:
                return message

    def _handle(self, frame: str | bytes) -> dict[str, Any] | None:
        message = orjson.loads(frame)
        type_ = message.get("type")
        if type_ in DATA_TYPES:
            self.last_seq = max(self.last_seq or 0, message["seq"])
            if self._deduper is not None and not self._deduper.fresh(message):
                return None
            return message  # type: ignore[no-any-return]
        if type_ == "subscribed":
            self._subscribed = True
        elif type_ == "heartbeat" and self._subscribed:
            self.last_seq = max(self.last_seq or 0, message["last_seq"])
        elif type_ == "error":
            self._on_error(message)
        return None

    def _on_error(self, message: dict[str, Any]) -> None:
        code, detail = message.get("error"), message.get("detail")
        if code == "resync" and not self._subscribed:
            log.warning("feed at %s cannot resume (%s); taking a fresh snapshot", self.url, detail)
            self._subscribe(None)
        elif code == "resync":
            log.warning("feed at %s dropped us as too slow; resuming", self.url)
        else:
            msg = f"the feed refused the subscription: {code}: {detail}"
            raise ConnectorError("feed", self.url, msg)

    def _lost(self, exc: ConnectionClosed) -> None:
        log.warning("feed at %s: connection lost (%s); reconnecting", self.url, exc)
        self._ws = None

    def _open(self, deadline: float | None) -> bool:
        """Connect, read hello, subscribe; retry with backoff. False if the deadline came."""
        window = self.connect_timeout if self.connections == 0 else self.reconnect_timeout
        give_up = None if window is None else time.monotonic() + window
        delays = self._delays()
        while True:
            try:
                self._handshake()
                return True
            except (WebSocketException, OSError, EOFError) as exc:
                self.close()
                if not self._retryable(exc):
                    raise ConnectorError("feed", self.url, _reason(exc)) from exc
                failure = exc
            delay = next(delays)
            now = time.monotonic()
            if give_up is not None and now + delay > give_up:
                msg = f"cannot connect within {window:g} s: {_reason(failure)}"
                raise ConnectorError("feed", self.url, msg) from failure
            if deadline is not None and now + delay > deadline:
                return False
            log.info("feed at %s: %s; retrying in %.1f s", self.url, _reason(failure), delay)
            time.sleep(delay)

    def _handshake(self) -> None:
        self._ws = connect(
            self._connect_url, open_timeout=self.open_timeout, compression=None, max_size=2**22,
            logger=quiet_logger("websockets.client"),  # no debug dumps: the URL has the token
        )
        hello = orjson.loads(self._ws.recv(timeout=self.open_timeout))
        if hello.get("type") == "error":  # refused at connect: a bad ?token=
            self._on_error(hello)
        offered = self._wanted and self._wanted.intersection(hello.get("channels") or ())
        if offered:  # none offered: ask anyway, and let the feed say why not
            self.subscription = dataclasses.replace(self.subscription, channels=offered)
        epoch = hello.get("epoch")
        since = self.last_seq
        if self.epoch is not None and epoch != self.epoch:
            log.info(
                "feed at %s restarted (epoch %s -> %s); resubscribing", self.url, self.epoch, epoch
            )
            since = None
        self.epoch = epoch
        self.connections += 1
        self._subscribe(since)

    def _subscribe(self, since: int | None) -> None:
        assert self._ws is not None
        self._subscribed = False
        if since is None:
            self.last_seq = None
        self._ws.send(orjson.dumps(Subscribe(self.subscription, since).as_op()), text=True)


def _with_token(url: str, token: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}token={quote(token, safe='')}"


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"the server refused the websocket handshake with HTTP {exc.response.status_code}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
