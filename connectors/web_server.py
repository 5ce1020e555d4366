"""The dashboard's web server: the static web application, ``/config.json`` and the API, over
HTTP, on uvicorn (an ASGI server) running :mod:`connectors.web_app` on its own thread.

    with WebServer(settings, DashboardSettings(port=0), static_dir=web_root()) as web:
        print(web.url)                     # http://127.0.0.1:54321/ (port 0: a free port)

    serve_dashboard(settings, DashboardSettings(), static_dir=web_root())  # until SIGINT/SIGTERM

The browser gets everything from here (no CDN, no map tiles: the page draws the districts from
the polygons in ``/config.json``, see :mod:`connectors.web_config`) and then connects to the
push feed itself, at the URL that ``/config.json`` names. Only files under ``static_dir`` are
served, with a Content-Security-Policy that lets the page load nothing from elsewhere; the API's
OpenAPI document is at ``/openapi.json``. uvicorn keeps connections alive between requests;
requests are logged at debug level, without their query strings.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from connectors.api_answers import MessageView
from connectors.audit_log import AuditLog
from connectors.http_api import IncidentApi
from connectors.http_thread import ThreadedHttp
from connectors.open_data import OpenData
from connectors.storage import Storage
from connectors.tokens import Claims
from connectors.web_app import (
    CONTENT_SECURITY_POLICY,
    AckPages,
    HistoryQuery,
    HistoryView,
    ReportDesk,
    build_app,
)
from connectors.web_config import WILDCARDS, DashboardSettings, config_document
from connectors.web_geo import DeviceList
from models.errors import ConnectorError
from settings.config import Settings

__all__ = [
    "CONTENT_SECURITY_POLICY", "DashboardSettings", "HistoryQuery", "HistoryView", "WebServer",
    "config_document", "serve_dashboard",
]

log = logging.getLogger(__name__)



class WebServer:
    """The dashboard's HTTP server on ``dashboard.host``/``port``, serving ``static_dir``.

    With ``history`` it also answers ``GET /api/history?district=D&name=N[&source=readings|
    indicators][&since=1h][&until=now]``: a district's series of a kind or an indicator at a
    resolution chosen from the range (raw, 1 min, 1 h, 1 day), for charts of the last hours.
    With ``api`` it answers the dispatch API under ``/api/`` (:mod:`connectors.http_api`),
    checking tokens with ``authenticate``; ``history_view`` (alerts.access.history_view) masks
    a series by the caller's role. With ``open_data`` it serves ``/open-data/``
    (:mod:`connectors.open_data`); with ``audit`` every successful read of the API is recorded
    (:mod:`connectors.audit_log`). ``devices`` (a registry's) is what ``GET /api/devices``
    lists for the map; ``GET /api/geo/districts`` draws the districts
    (:mod:`connectors.web_geo`). With ``reports`` it takes reports filed from the page's form
    (``POST /api/reports``). With ``storage`` it also serves ``/api/v1`` and
    ``/ngsi-ld/v1`` from that database, each item masked by ``view`` (alerts.access.view, or a
    wrapper of it) as the feed masks its messages.
    """

    def __init__(
        self,
        settings: Settings,
        dashboard: DashboardSettings,
        *,
        static_dir: Path,
        history: HistoryQuery | None = None,
        api: IncidentApi | None = None,
        authenticate: Callable[[str], Claims] | None = None,
        history_view: HistoryView | None = None,
        open_data: OpenData | None = None,
        audit: AuditLog | None = None,
        devices: DeviceList | None = None,
        storage: Callable[[], Storage] | None = None,
        view: MessageView | None = None,
        clock: Callable[[], float] = time.time,
        ack: AckPages | None = None,
        reports: ReportDesk | None = None,
    ) -> None:
        self.settings = settings
        self.dashboard = dashboard
        self.history = history
        self.api = api
        self.authenticate = authenticate
        self.history_view = history_view
        self.open_data = open_data
        self.audit = audit
        self.ack = ack
        self.reports = reports
        self.devices = devices
        self.storage = storage
        self.view = view
        self.clock = clock
        self.static_dir = Path(static_dir).resolve()
        if not (self.static_dir / "index.html").is_file():
            msg = f"no index.html in {self.static_dir} (is the package installed with its data?)"
            raise ConnectorError("dashboard", str(self.static_dir), msg)
        self.port = dashboard.port
        self._http: ThreadedHttp | None = None

    @property
    def url(self) -> str:
        """The page's URL (with the bound port)."""
        host = self.dashboard.host
        host = "127.0.0.1" if host in WILDCARDS else host
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.dashboard.tls_certfile else "http"
        return f"{scheme}://{host}:{self.port}/"

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Bind and serve on a background thread; ConnectorError if the port is taken."""
        address = f"{self.dashboard.host}:{self.dashboard.port}"
        self._http = ThreadedHttp("dashboard", host=self.dashboard.host, port=self.dashboard.port)
        self.port = self._http.bind(address)
        try:
            self._http.serve(build_app(self), server_name="cityheart-dashboard", address=address,
                             ssl_certfile=self.dashboard.tls_certfile,
                             ssl_keyfile=self.dashboard.tls_keyfile)
        except ConnectorError:
            self.close()
            raise
        log.debug("dashboard: serving %s from %s", self.url, self.static_dir)

    def close(self) -> None:
        """Stop serving (requests under way get 2 s to finish) and release the port."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def resolve(self, path: str) -> Path | None:
        """The file under ``static_dir`` that URL ``path`` names, or None (never outside it)."""
        relative = unquote(path).lstrip("/") or "index.html"
        candidate = (self.static_dir / relative).resolve()
        if not candidate.is_relative_to(self.static_dir) or not candidate.is_file():
            return None
        return candidate


def serve_dashboard(
    settings: Settings,
    dashboard: DashboardSettings,
    *,
    static_dir: Path,
    history: HistoryQuery | None = None,
    api: IncidentApi | None = None,
    authenticate: Callable[[str], Claims] | None = None,
    history_view: HistoryView | None = None,
    open_data: OpenData | None = None,
    audit: AuditLog | None = None,
    ack: AckPages | None = None,
    devices: DeviceList | None = None,
    storage: Callable[[], Storage] | None = None,
    view: MessageView | None = None,
    reports: ReportDesk | None = None,
) -> None:
    """Serve the dashboard until SIGINT or SIGTERM; log and print ``dashboard: <url>`` once up.

    Call it from the main thread (it installs signal handlers, and restores them on return).
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with WebServer(settings, dashboard, static_dir=static_dir, history=history, api=api,
                       authenticate=authenticate, history_view=history_view,
                       open_data=open_data, audit=audit, ack=ack, devices=devices,
                       storage=storage, view=view, reports=reports) as web:
            log.info("dashboard: %s", web.url)
            print(f"dashboard: {web.url}", flush=True)
            while not stop.wait(0.5):
                pass
            log.info("dashboard: stopping")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
