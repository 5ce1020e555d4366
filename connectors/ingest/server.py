"""The HTTP ingest server: :mod:`connectors.ingest.app` on uvicorn, on a thread of its own.

    with IngestServer(settings, keys_path=Path("ingest-keys.yaml")) as server:
        print(server.url)                  # http://127.0.0.1:54321/ingest (port 0: a free one)

    serve_ingest(settings, keys_path=...)  # until SIGINT/SIGTERM; prints "ingest: <url>"

It is a process of its own (``cityheart ingest``), not a route of the dashboard: it holds a
Kafka producer, its sources authenticate with keys rather than people's tokens, and a
department's bulk upload then costs the dashboard nothing (and each scales on its own).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import TracebackType

from connectors.http_thread import ThreadedHttp
from connectors.ingest.app import build_app
from connectors.ingest.bodies import senml_decoder
from connectors.ingest.intake import Intake
from connectors.ingest.keys import KeysFile
from connectors.kafka import create_topics
from connectors.notify import Notifier
from models.errors import ConnectorError
from models.senml import PackParser
from settings.config import Settings
from settings.params import reading_parser

__all__ = ["IngestServer", "serve_ingest"]

log = logging.getLogger(__name__)


class IngestServer:
    """``POST /ingest`` on ``ingest.host``/``port``, producing with an :class:`Intake`."""

    def __init__(self, settings: Settings, *, keys_path: Path) -> None:
        self.settings = settings
        self.port = settings.ingest.port
        self.intake = Intake(settings)
        self.keys = KeysFile(keys_path)
        packs = PackParser(reading_parser(settings),
                           max_pack_bytes=settings.ingest.max_body_bytes)
        self._senml = senml_decoder(packs, time.time)
        self._http: ThreadedHttp | None = None

    @property
    def url(self) -> str:
        """The endpoint's URL (with the bound port)."""
        return self.settings.ingest.model_copy(update={"port": self.port}).url

    def __enter__(self) -> IngestServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        """Bind, then serve on a background thread; ConnectorError if the port is taken."""
        host = self.settings.ingest.host.strip("[]")
        address = f"{host}:{self.port}"
        self._http = ThreadedHttp("ingest", host=host, port=self.port)
        self.port = self._http.bind(address)
        self.intake.start()
        app = build_app(self.settings, self.intake, self.keys, senml=self._senml)
        try:
            self._http.serve(app, server_name="cityheart-ingest", address=address)
        except ConnectorError:
            self.close()
            raise

    def close(self) -> None:
        """Stop serving (requests under way get 2 s), deliver what is queued, free the port."""
        if self._http is not None:
            self._http.close()
            self._http = None
        self.intake.stop()


def serve_ingest(
    settings: Settings, *, keys_path: Path, notifier: Notifier | None = None
) -> None:
    """Serve until SIGINT or SIGTERM; print ``ingest: <url>`` and say READY=1 once up."""
    topics = settings.kafka.topics
    create_topics(settings.kafka.bootstrap,
                  [topics.readings, topics.dead_letter, topics.rejected, topics.reports],
                  settings.kafka.partitions)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with IngestServer(settings, keys_path=keys_path) as server:
            log.info("ingest: %s (keys in %s)", server.url, keys_path)
            print(f"ingest: {server.url}", flush=True)
            (notifier or Notifier(None)).ready()
            while not stop.wait(0.5):
                pass
            log.info("ingest: stopping")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
