"""A TCP relay on loopback that a test can cut, as a network failure would.

    with FeedThread(settings, heartbeat_s=0.2) as feed, CuttableRelay(feed.port) as relay:
        url = f"ws://127.0.0.1:{relay.port}{settings.feed.path}"
        ...                       # clients connect through the relay
        relay.cut()               # every relayed connection drops, as on a dead network
        relay.cut(refuse=True)    # ... and new ones are refused until relay.reopen()
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["CuttableRelay"]


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
