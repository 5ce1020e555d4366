"""The incident/dispatch stack the dispatch tests share, and a pollution episode to feed it.

    with dispatch_stack(settings, database_url, tmp_path, authenticate=check) as stack:
        raise_pollution(stack.settings)      # an alert, then an incident, in industrial-east
        ...                                  # HTTP calls to stack.url (the dispatch API)

The flow and the recorder run as the child processes production runs (their logs and config
in ``tmp_path``); the command bus, the dispatch API and the dashboard's server (with history
and the report form's own producer) run in this process; with ``feed=True`` the push feed
too, with the same tokens and role masking (its URL in ``stack.feed``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

from alerts.access import history_view, view
from cityheart.dashboard import history_query, web_root
from cityheart.runtime.servers import spawn
from cityheart.services.api_view import api_view
from cityheart.services.dispatch import DispatchService
from cityheart.services.report_filing import ReportFiling
from connectors.command_bus import CommandBus
from connectors.ingest.reports import ReportSender
from connectors.kafka import KafkaRecord
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.tokens import Claims
from connectors.web_server import DashboardSettings, WebServer
from models.reading_batch import ReadingBatch
from models.readings import Reading
from settings.config import Settings
from tests.support.config import write_config
from tests.support.feed import FeedThread
from tests.support.kafka import produce

__all__ = ["dispatch_stack", "raise_pollution"]


@contextmanager
def dispatch_stack(settings: Settings, database_url: str, tmp_path: Path, *,
                   authenticate: Callable[[str], Claims], feed: bool = False,
                   clock: Callable[[], float] = time.time) -> Iterator[SimpleNamespace]:
    """Run the stack on this test's topics and database; yield what a test talks to.

    The namespace has ``url`` (the dashboard, with the API under ``api/``), ``settings``,
    ``storage`` (the recorder's database, opened here), ``config`` (the children's config file),
    ``logs`` (the folder with the children's logs) and ``feed`` (the feed's URL, or None).
    ``clock`` is the dispatch API's: the time of the actions people take through it.
    """
    storage = Storage.open(StorageOptions(url=database_url))  # the schema, as the recorder does
    config = write_config(settings, tmp_path / "config.yaml")
    env = {**os.environ, "CITYHEART_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
           "CITYHEART_DATABASE_URL": database_url}
    children = [
        spawn(name, [sys.executable, "-m", "cityheart", name, "--config", str(config)], env=env,
              log_path=tmp_path / f"{name}.log")
        for name in ("flow", "recorder")
    ]
    topics = settings.kafka.topics
    bus = CommandBus(settings.kafka.bootstrap, topics.commands, topics.command_results)
    bus.start()
    service = DispatchService(settings, storage=lambda: storage, bus=bus, timeout=30,
                              clock=clock)
    sender = ReportSender(settings)
    web = WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                    history=history_query(settings, lambda: storage), api=service,
                    authenticate=authenticate, history_view=history_view,
                    storage=lambda: storage, view=api_view(settings),
                    reports=ReportFiling(sender.intake))
    try:
        with ExitStack() as servers:
            servers.enter_context(sender)
            feed_url = None
            if feed:
                server = servers.enter_context(FeedThread(
                    settings, heartbeat_s=1.0, authenticate=authenticate, view=view))
                feed_url = f"ws://127.0.0.1:{server.port}{settings.feed.path}"
            web.start()
            yield SimpleNamespace(url=web.url, settings=settings, storage=storage,
                                  config=config, logs=tmp_path, feed=feed_url)
    finally:
        web.close()
        bus.close()
        for child in children:
            child.stop()
        storage.close()


def raise_pollution(settings: Settings, district: str = "industrial-east", *,
                    devices: str = "pm25-ie", start: float | None = None) -> None:
    """PM2.5 far over the critical level in ``district`` (in the 10-s window that begins at
    ``start``, by default 30 s ago; from the devices ``<devices>-0`` to ``-2``): an alert, then
    an incident."""
    start = (time.time() // 10) * 10 - 30 if start is None else start
    readings = [Reading(f"{devices}-{n}", district, "pm25", value, "ug/m3", start + 5 + n)
                for n, value in enumerate((180.0, 200.0, 220.0))]
    produce(settings.kafka.bootstrap,
            [KafkaRecord(None, ReadingBatch.of(readings).encode())],
            topic=settings.kafka.topics.readings)
