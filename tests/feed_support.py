"""Helpers the push-feed tests share: the real feed in a thread, a network you can cut, records.

    with FeedThread(settings, heartbeat_s=0.2) as feed, CuttableRelay(feed.port) as relay:
        url = f"ws://127.0.0.1:{relay.port}{settings.feed.path}"
        ...                       # clients connect through the relay
        relay.cut()               # every relayed connection drops, as on a dead network
        relay.cut(refuse=True)    # ... and new ones are refused until relay.reopen()

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
from connectors.kafka import ReliableProducer
from settings.config import Settings

__all__ = ["CuttableRelay", "FeedThread", "produce"]


def produce(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> None:
    """Write ``(channel, key, value)`` records to the ``vitals``/``alerts`` topics and flush."""
    topics = {"vitals": settings.kafka.topics.vitals, "alerts": settings.kafka.topics.alerts}
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=5)
    for channel, key, value in records:
        producer.produce(topics[channel], value, key=key)
    producer.flush(15)


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


class CuttableRelay:
    """A TCP relay on a free loopback port to ``target_port`` whose connections the test can
    cut, as a network failure would (no close frames), and that can refuse new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.refusing = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> CuttableRelay:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.refusing = True
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def cut(self, *, refuse: bool = False) -> None:
        """Drop every relayed connection now; with ``refuse``, drop new ones too."""
        self.refusing = refuse
        self._loop.call_soon_threadsafe(self._drop)

    def reopen(self) -> None:
        """Relay new connections again after ``cut(refuse=True)``."""
        self.refusing = False

    def _drop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._relay, "127.0.0.1", 0)

    async def _shutdown(self) -> None:
        self._server.close()
        self._drop()
        for task in self._relays:
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                     self.target_port)
            except OSError:  # nothing listens behind the relay: like a dead network
                writer.transport.abort()
                return
            self._writers.update((writer, up_writer))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            self._writers.difference_update((writer, up_writer))
        finally:
            self._relays.discard(task)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except OSError:
        pass
    finally:
        dst.transport.abort()
