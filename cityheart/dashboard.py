"""``cityheart dashboard``: the command-centre web application and the dispatch API, over HTTP.

    run_dashboard(settings, host="127.0.0.1", port=8766)   # until SIGINT/SIGTERM
    web_root()                                              # the static files it serves

The page itself lives in ``cityheart/web/`` (package data: plain ES modules, no build step) and
talks to the push feed directly; :mod:`connectors.web_server` serves it with ``/config.json``,
``/api/history`` (charts), the dispatch API (:mod:`cityheart.services.dispatch`: incidents,
actions, KPIs), ``/api/v1`` and ``/ngsi-ld/v1`` (masked by
``cityheart.services.open_data.api_view``), all reading the ``database:`` of config.yaml,
connected on first use (so the page works while the database is still starting or away).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from alerts.access import history_view
from cityheart.services.dispatch import DispatchService
from cityheart.services.open_data import api_view
from cityheart.token import feed_auth
from connectors.command_bus import CommandBus
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.web_server import DashboardSettings, HistoryQuery, serve_dashboard
from models.errors import ConnectorError
from settings.config import Settings

__all__ = ["history_query", "lazy_storage", "run_dashboard", "web_root"]

log = logging.getLogger(__name__)


def web_root() -> Path:
    """The folder of the web application's static files (``cityheart/web``)."""
    return Path(str(resources.files("cityheart").joinpath("web")))


def lazy_storage(settings: Settings) -> Callable[[], Storage]:
    """The ``database:`` of ``settings``, opened on the first call and shared after."""
    lock = threading.Lock()
    opened: list[Storage] = []

    def storage() -> Storage:
        with lock:
            if not opened:
                options = StorageOptions.from_database(settings.database)
                opened.append(Storage.open(options, migrate_schema=False))
            return opened[0]

    return storage


def history_query(
    settings: Settings, storage: Callable[[], Storage] | None = None
) -> HistoryQuery:
    """``/api/history``'s query on the ``database:`` of ``settings``."""
    storage = storage or lazy_storage(settings)

    def query(district: str, name: str, source: str, since: float, until: float) -> dict:
        series = storage().history.series(district, name, source=source, since=since,
                                          until=until)
        return {"district": district, "name": name, "source": source,
                "resolution": series.resolution, "points": series.records()}

    return query


def run_dashboard(settings: Settings, *, host: str = "127.0.0.1", port: int = 8766) -> None:
    """Serve the dashboard on ``host:port`` until SIGINT or SIGTERM; print its URL once up."""
    storage = lazy_storage(settings)
    authenticate, _view = feed_auth(settings)
    topics = settings.kafka.topics
    bus = CommandBus(settings.kafka.bootstrap, topics.commands, topics.command_results)
    # connect in the background: the page is served even while Kafka is away (actions then
    # answer 503 and connect again on the next one)
    threading.Thread(target=_connect, args=(bus,), name="command-bus", daemon=True).start()
    try:
        serve_dashboard(
            settings,
            DashboardSettings(host=host, port=port,
                              tls_certfile=settings.dashboard.tls_certfile,
                              tls_keyfile=settings.dashboard.tls_keyfile),
            static_dir=web_root(),
            history=history_query(settings, storage),
            api=DispatchService(settings, storage=storage, bus=bus),
            authenticate=authenticate,
            history_view=history_view,
            storage=storage,
            view=api_view(settings),
        )
    finally:
        bus.close()


def _connect(bus: CommandBus) -> None:
    try:
        bus.start()
    except ConnectorError as exc:
        log.warning("dashboard: incident actions wait for Kafka: %s", exc)
