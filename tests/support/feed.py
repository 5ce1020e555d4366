"""Helpers the push-feed tests share: the real feed in a thread, a client that records what it
gets, records to feed it.

    with FeedThread(settings, heartbeat_s=0.2) as feed:
        url = f"ws://127.0.0.1:{feed.port}{settings.feed.path}"
        with FeedRecorder(url, channels=["alerts"]) as client:
            alert = client.wait_for(lambda m: m["type"] == "alert", timeout=30)

    thread = FeedThread(settings)  # or by hand, so that a test can restart the feed
    thread.start(); thread.stop(); thread.start()

``produce`` writes ``(channel, key, value)`` records (channel "vitals" or "alerts") into the
test's own topics, as the flow does.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from connectors.feed.server import FeedServer
from connectors.kafka import KafkaRecord
from settings.config import Settings
from tests.support import kafka

__all__ = ["FeedRecorder", "FeedThread", "produce"]


def produce(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> None:
    """Write ``(channel, key, value)`` records to the ``vitals``/``alerts``/``reports`` topics
    and flush."""
    topics = {"vitals": settings.kafka.topics.vitals, "alerts": settings.kafka.topics.alerts,
              "reports": settings.kafka.topics.reports}
    kafka.produce(settings.kafka.bootstrap, [KafkaRecord(key, value, topic=topics[channel])
                                             for channel, key, value in records])


class FeedThread:
    """The real FeedServer (``options`` go to it) on its own thread and event loop.

    As a context manager it starts the feed and gives the running :class:`FeedServer`;
    ``start()`` and ``stop()`` do the same by hand, as often as a test needs (each start is a
    new server, with a new epoch, in ``server``).
    """

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.settings, self.options = settings, options
        self.server: FeedServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> FeedServer:
        self.start()
        assert self.server is not None
        return self.server

    def __exit__(self, *exc_info: object) -> None:
        if self.running:
            self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start a new feed server; return once it listens (or raise why it did not start)."""
        assert not self.running, "the feed is already running"
        ready = threading.Event()
        self.server, self._failure = None, None
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(60), "the feed did not start within 60 s"
        if self._failure is not None:
            self._thread.join(30)
            self._thread = None
            raise self._failure

    def stop(self) -> None:
        """Stop the feed server and wait for its thread to end."""
        assert self._loop is not None and self._stop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the feed did not stop within 30 s"
        self._thread = None

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:  # handed to the test thread
            self._failure = exc
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with FeedServer(self.settings, **self.options) as server:
            self.server = server
            ready.set()
            await self._stop.wait()


class FeedRecorder:
    """A real websocket client that subscribes to the feed and keeps every message it receives.

        with FeedRecorder(url, channels=["alerts"]) as feed:
            alert = feed.wait_for(lambda m: m["type"] == "alert", timeout=30)
    """

    def __init__(self, url: str, *, channels: list[str] | None = None,
                 districts: list[str] | None = None, kinds: list[str] | None = None) -> None:
        self.url = url
        self.messages: list[dict] = []
        self._subscription = {
            "op": "subscribe",
            "channels": channels or ["vitals", "alerts"],
            "districts": districts or [],
            "kinds": kinds or [],
            "since": None,
        }
        self._stop = threading.Event()
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FeedRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        import time

        import orjson
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        while not self._stop.is_set():
            try:
                with connect(self.url, open_timeout=5) as ws:
                    ws.send(orjson.dumps(self._subscription).decode())
                    while not self._stop.is_set():
                        try:
                            frame = ws.recv(timeout=0.2)
                        except TimeoutError:
                            continue
                        with self._arrived:
                            self.messages.append(orjson.loads(frame))
                            self._arrived.notify_all()
            except (OSError, ConnectionClosed):
                time.sleep(0.2)  # the feed is not up yet or restarted: connect again

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        """The first message matching ``predicate``, waiting up to ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                assert remaining > 0, (
                    f"no matching feed message within {timeout:g} s; "
                    f"got {len(self.messages)}: {self.messages[-5:]}"
                )
                self._arrived.wait(remaining)

    def wait_until(self, condition, timeout: float = 30.0) -> None:
        """Wait until ``condition(messages)`` is true."""
        import time

        deadline = time.monotonic() + timeout
        with self._arrived:
            while not condition(self.messages):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"condition not met within {timeout:g} s"
                self._arrived.wait(remaining)
