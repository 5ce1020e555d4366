"""The Kafka producer of a component that answers a request only once Kafka confirmed its
records (the HTTP ingest, the dashboard's report form), with its delivery reports served on a
thread of its own::

    deliveries = Deliveries(settings, name="ingest", on_failure=note)
    deliveries.start()
    deliveries.producer.produce(...)   # its on_delivered callbacks run on that thread
    deliveries.stop()                  # delivers what is queued, then stops serving

A record Kafka has not confirmed within ``ingest.delivery_timeout_s`` fails, so a request that
gave up (and is retried by its sender) is not joined later by its first attempt's copy. A
delivery failure is logged and given to ``on_failure``; the requests waiting on those records
time out and their senders may try again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from connectors.kafka import ReliableProducer
from models.errors import ConnectorError
from settings.config import Settings

__all__ = ["Deliveries"]

log = logging.getLogger(__name__)


class Deliveries:
    """A producer (``settings``' Kafka, or the one given) and the thread serving its reports."""

    def __init__(self, settings: Settings, *, name: str,
                 producer: ReliableProducer | None = None,
                 on_failure: Callable[[str], object] | None = None) -> None:
        self.producer = producer or ReliableProducer(
            settings.kafka.bootstrap, linger_ms=5,
            delivery_timeout_ms=int(settings.ingest.delivery_timeout_s * 1000))
        self._name = name
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve delivery reports on a thread of its own."""
        self._thread = threading.Thread(target=self._serve, name=f"{self._name}-kafka",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Deliver what is queued (for at most ``timeout`` s), then stop serving reports."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        try:
            self.producer.flush(timeout)
        except ConnectorError as exc:
            log.error("%s: %s", self._name, exc)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.producer.poll(0.05)
            except ConnectorError as exc:
                log.error("%s: %s", self._name, exc)
                if self._on_failure is not None:
                    self._on_failure(str(exc))
                self.producer.failures.clear()
