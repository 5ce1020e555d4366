"""``cityheart dashboard``: the command-centre web application and the dispatch API, over HTTP.

    run_dashboard(settings, host="127.0.0.1", port=8766)   # until SIGINT/SIGTERM
    web_root()                                              # the static files it serves

The page itself lives in ``cityheart/web/`` (package data: plain ES modules, no build step) and
talks to the push feed directly; :mod:`connectors.web_server` serves it with ``/config.json``,
``/api/history`` (charts), the dispatch API (:mod:`cityheart.services.dispatch`: incidents,
actions, KPIs), reports filed from the page (:mod:`cityheart.services.report_filing`, produced
to the ``reports`` topic), ``/api/v1`` and ``/ngsi-ld/v1`` (masked by
``cityheart.services.api_view.api_view``), ``/open-data/``, all reading the ``database:`` of
config.yaml, connected on first use (so the page works while the database is still starting or
away), and ``/api/devices`` for the map from the device registry
(``mqtt.device_auth.registry``), read again on each request.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from alerts.access import history_view
from cityheart.devices import load_registry
from cityheart.services.ack_links import AckLinks
from cityheart.services.api_view import api_view
from cityheart.services.dispatch import DispatchService
from cityheart.services.report_filing import ReportFiling
from cityheart.token import feed_auth
from connectors.audit_log import AuditLog
from connectors.command_bus import CommandBus
from connectors.ingest.reports import ReportSender
from connectors.open_data import OpenData
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.web_geo import DeviceList
from connectors.web_server import DashboardSettings, HistoryQuery, serve_dashboard
from models.errors import ConnectorError
from settings.config import Settings

__all__ = ["history_query", "lazy_storage", "registry_devices", "run_dashboard", "web_root"]

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


def registry_devices(settings: Settings, path: Path) -> DeviceList:
    """``/api/devices``'s list: the active devices of the registry at ``path`` (none while it
    is missing), with ``lat``/``lon`` where the registry has them."""

    def devices() -> list[dict[str, Any]]:
        found = []
        for device in load_registry(settings, path).active():
            entry: dict[str, Any] = {"id": device.id, "district": device.district,
                                     "kind": device.kind}
            lat, lon = getattr(device, "lat", None), getattr(device, "lon", None)
            if lat is not None and lon is not None:
                entry["lat"], entry["lon"] = lat, lon
            found.append(entry)
        return found

    return devices


def run_dashboard(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 8766,
    registry: Path | None = None, open_data_keys: Path | None = None,
    revoked: Path | None = None, audit_dir: Path | None = None,
) -> None:
    """Serve the dashboard on ``host:port`` until SIGINT or SIGTERM; print its URL once up.

    ``registry``: the device registry file the map's devices come from; ``open_data_keys``
    the open-data key file (``open_data.keys_file``; with ``open_data.enabled`` the dashboard
    serves ``/open-data/``); ``revoked`` the revoked tokens; ``audit_dir`` where reads are
    recorded (all relative to config.yaml's directory when the CLI resolves them).
    """
    storage = lazy_storage(settings)
    audit = AuditLog(audit_dir or Path(settings.auth.audit_dir), "dashboard")
    open_data = None
    if settings.open_data.enabled:
        keys = open_data_keys or Path(settings.open_data.keys_file)
        open_data = OpenData(settings, pool=lambda: storage().pool, keys=keys, audit=audit)
    authenticate, _view = feed_auth(settings, revoked=revoked)
    topics = settings.kafka.topics
    bus = CommandBus(settings.kafka.bootstrap, topics.commands, topics.command_results)
    # connect in the background: the page is served even while Kafka is away (actions then
    # answer 503 and connect again on the next one)
    threading.Thread(target=_connect, args=(bus,), name="command-bus", daemon=True).start()
    sender = ReportSender(settings)
    sender.start()
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
            open_data=open_data,
            audit=audit,
            ack=_ack_links(settings, bus),
            devices=None if registry is None else registry_devices(settings, registry),
            storage=storage,
            view=api_view(settings),
            reports=ReportFiling(sender.intake),
        )
    finally:
        sender.close()
        bus.close()


def _ack_links(settings: Settings, bus: CommandBus) -> AckLinks | None:
    """The notifications' acknowledgement links, when their secret is set (read here once)."""
    secret = os.environ.get(settings.notifications.link_secret_env)
    return AckLinks(secret, bus) if secret else None


def _connect(bus: CommandBus) -> None:
    try:
        bus.start()
    except ConnectorError as exc:
        log.warning("dashboard: incident actions wait for Kafka: %s", exc)
