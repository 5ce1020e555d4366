"""The MQTT-to-Kafka bridge for tests: a real Bridge serving on a thread.

    with serving_bridge(settings) as bridge:
        ...                       # publish over MQTT, read the readings topic
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from connectors.bridge import Bridge
from settings.config import Settings

__all__ = ["serving_bridge"]


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
