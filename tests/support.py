"""Helpers the tests share: config files for child processes, reading whole topics, a bridge."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from connectors.bridge import Bridge
from settings.config import Settings


def write_config(settings: Settings, path: Path) -> Path:
    """Write ``settings`` as a config.yaml a child process (``cityheart ... --config``) can load."""
    import yaml

    from settings.loader import dump

    path.write_text(yaml.safe_dump(dump(settings), sort_keys=False))
    return path


ROOT = Path(__file__).resolve().parent.parent


def shipped_config(path: Path = ROOT / "config.yaml") -> dict:
    """The shipped config.yaml with its city file merged in and every default spelled out, as
    one mapping, for tests that change a key or two."""
    from settings.loader import dump, load

    return dump(load(path, env={}))


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list:
    """Read ``topic`` from the start until ``expected`` records arrived or ``timeout`` passed."""
    import time

    from connectors.kafka import tail_consumer

    consumer = tail_consumer(bootstrap, [topic])
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.1):
                if message.error() is None:
                    records.append(message)
    finally:
        consumer.close()
    return records


class FeedRecorder:
    """A real websocket client that subscribes to the feed and keeps every message it receives.

        with FeedRecorder(url, channels=["alerts"]) as feed:
            alert = feed.wait_for(lambda m: m["type"] == "alert", timeout=30)
    """

    def __init__(self, url: str, *, channels: list[str] | None = None,
                 districts: list[str] | None = None, kinds: list[str] | None = None) -> None:
        import threading

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


@contextlib.contextmanager
def serving_bridge(settings: Settings) -> Iterator[Bridge]:
    """A real Bridge serving on a thread, as ``cityheart bridge`` runs it; stopped on exit."""
    stop = threading.Event()
    bridge = Bridge(settings)
    bridge.start()
    server = threading.Thread(target=bridge.serve, args=(stop,), daemon=True)
    server.start()
    try:
        yield bridge
    finally:
        stop.set()
        server.join(10)
        bridge.stop()
