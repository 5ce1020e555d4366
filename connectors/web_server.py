"""The dashboard's web server: the static web application and ``/config.json``, over HTTP.

    with WebServer(settings, DashboardSettings(port=0), static_dir=web_root()) as web:
        print(web.url)                     # http://127.0.0.1:54321/ (port 0: a free port)

    serve_dashboard(settings, DashboardSettings(), static_dir=web_root())  # until SIGINT/SIGTERM

The browser gets everything from here (no CDN, no map tiles: the page draws the districts from
the polygons in ``/config.json``) and then connects to the push feed itself, at the URL that
``/config.json`` names. Only files under ``static_dir`` are served, with a Content-Security-Policy
that lets the page load nothing from elsewhere. The server runs on its own thread
(:class:`http.server.ThreadingHTTPServer`); requests are logged at debug level.

``/config.json``::

    {"city": {"name", "timezone"},
     "districts": [{"id", "name", "centroid": [lon, lat], "polygon": [[lon, lat], ...]}],
     "kinds": {"pm25": {"name", "unit", "interval_s",
                        "thresholds": {"direction", "stat", "warning", "critical"}}},
     "indicators": {"traffic": {"levels": ["free", "slow", ...]}, ...},
     "departments": [{"id", "name", "sla_ack_s", "sla_resolve_s"}],   # for the incident board
     "window_s": 10.0,
     "feed": {"url": "ws://127.0.0.1:8765/feed", "backlog": 2000},
     "signin": {"issuer", "client_id", "scope", "token"} | null}   # connectors.web_signin
"""

from __future__ import annotations

import logging
import mimetypes
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from connectors.http_api import ApiRequest, IncidentApi, answer, caller
from connectors.tokens import Claims
from connectors.web_signin import content_security_policy, signin_document
from models.errors import CityheartError, ConfigError, ConnectorError
from models.history import parse_time
from models.indicators import crowd, noise, power, traffic, water
from models.indicators.score import SCORE_LEVELS
from models.vitals.compute import HEALTH_LEVELS
from settings.config import Settings
from settings.indicators import INDICATORS

__all__ = ["DashboardSettings", "HistoryQuery", "WebServer", "config_document", "serve_dashboard"]

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""Everything comes from this server; only the feed's websocket may be elsewhere."""

_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
          ".html": "text/html", ".svg": "image/svg+xml", ".json": "application/json",
          ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain"}
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")

INDICATOR_LEVELS: dict[str, tuple[str, ...]] = {
    "traffic": traffic.LEVELS,
    "noise": noise.LEVELS,
    "water_level": water.LEVELS,
    "water_pressure": water.PRESSURE_LEVELS,
    "power": power.LEVELS,
    "crowd": crowd.LEVELS,
    "device_health": HEALTH_LEVELS,
    "score": SCORE_LEVELS,
}
"""Each indicator's level names, healthiest first (the AQI's come as a level number)."""


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """Where the dashboard listens, and the feed URL to give browsers if not the feed's own.

    ``feed_url`` is for a feed reached through a proxy or another address than
    ``settings.feed.url``; None gives the feed's URL (with the page's host name when the feed
    listens on every interface).
    """

    host: str = "127.0.0.1"
    port: int = 8766
    feed_url: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("dashboard", "port", f"{self.port} is not a TCP port (0-65535)")
        if self.feed_url is not None and urlsplit(self.feed_url).scheme not in ("ws", "wss"):
            msg = f"{self.feed_url!r} is not a ws:// or wss:// URL"
            raise ConfigError("dashboard", "feed_url", msg)


def config_document(
    settings: Settings, dashboard: DashboardSettings, *, page_host: str | None = None
) -> dict[str, Any]:
    """What the page needs to know about the city and where the feed is (``/config.json``)."""
    return {
        "city": {"name": settings.city.name, "timezone": settings.city.timezone},
        "districts": [
            {"id": d.id, "name": d.name, "centroid": list(d.centroid),
             "polygon": [list(point) for point in d.polygon]}
            for d in settings.districts
        ],
        "kinds": {
            kind_id: {
                "name": kind.name,
                "unit": kind.unit,
                "interval_s": kind.interval_s,
                "thresholds": kind.thresholds.model_dump(mode="json"),
            }
            for kind_id, kind in settings.kinds.items()
        },
        "indicators": {
            name: {"levels": list(INDICATOR_LEVELS.get(name, ()))} for name in INDICATORS
        },
        "departments": [
            {"id": d.id, "name": d.name, "sla_ack_s": d.sla_ack_s,
             "sla_resolve_s": d.sla_resolve_s}
            for d in settings.incidents.departments
        ],
        "window_s": settings.flow.window_s,
        "feed": {"url": _feed_url(settings, dashboard, page_host),
                 "backlog": settings.feed.backlog},
        "signin": signin_document(settings.auth.oidc),
    }


def _feed_url(settings: Settings, dashboard: DashboardSettings, page_host: str | None) -> str:
    if dashboard.feed_url is not None:
        return dashboard.feed_url
    feed = settings.feed
    if feed.host in _WILDCARDS and page_host:
        host = urlsplit(f"//{page_host}").hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{feed.port}{feed.path}"
    return feed.url


HistoryQuery = Callable[[str, str, str, float, float], dict[str, Any]]
"""(district, name, source, since, until) -> a JSON-ready series, for ``GET /api/history``."""

HistoryView = Callable[[Claims, dict[str, Any]], dict[str, Any]]
"""(caller, series) -> the series as the caller's role may see it."""


class WebServer:
    """The dashboard's HTTP server on ``dashboard.host``/``port``, serving ``static_dir``.

    With ``history`` it also answers ``GET /api/history?district=D&name=N[&source=readings|
    indicators][&since=1h][&until=now]``: a district's series of a kind or an indicator at a
    resolution chosen from the range (raw, 1 min, 1 h, 1 day), for charts of the last hours.
    With ``api`` it answers the dispatch API under ``/api/`` (:mod:`connectors.http_api`),
    checking tokens with ``authenticate``; ``history_view`` (alerts.access.history_view) masks
    a series by the caller's role.
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.dashboard = dashboard
        self.history = history
        self.api = api
        self.authenticate = authenticate
        self.history_view = history_view
        self.clock = clock
        self.static_dir = Path(static_dir).resolve()
        if not (self.static_dir / "index.html").is_file():
            msg = f"no index.html in {self.static_dir} (is the package installed with its data?)"
            raise ConnectorError("dashboard", str(self.static_dir), msg)
        self.port = dashboard.port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's URL (with the bound port)."""
        host = self.dashboard.host
        host = "127.0.0.1" if host in _WILDCARDS else host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

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
        handler = type("Handler", (_Handler,), {"app": self})
        try:
            self._httpd = ThreadingHTTPServer((self.dashboard.host, self.dashboard.port), handler)
        except OSError as exc:
            address = f"{self.dashboard.host}:{self.dashboard.port}"
            msg = f"cannot listen: {exc.strerror or exc}"
            raise ConnectorError("dashboard", address, msg) from exc
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
            name="dashboard-http", daemon=True,
        )
        self._thread.start()
        log.debug("dashboard: serving %s from %s", self.url, self.static_dir)

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def resolve(self, path: str) -> Path | None:
        """The file under ``static_dir`` that URL ``path`` names, or None (never outside it)."""
        relative = unquote(path).lstrip("/") or "index.html"
        candidate = (self.static_dir / relative).resolve()
        if not candidate.is_relative_to(self.static_dir) or not candidate.is_file():
            return None
        return candidate


class _Handler(BaseHTTPRequestHandler):
    app: WebServer
    server_version = "cityheart-dashboard"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if not path.startswith("/api/"):
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain", b"GET only here\n", True)
            return
        self._api(body=True)

    def _api(self, *, body: bool) -> None:
        url = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(HTTPStatus.BAD_REQUEST, "application/json",
                       b'{"error": "invalid", "detail": "a bad Content-Length"}', body)
            return
        data = self.rfile.read(min(length, 1 << 20)) if length > 0 else b""
        request = ApiRequest(self.command, url.path, url.query,
                             self.headers.get("Authorization"), data)
        status, document = answer(request, self.app.api, authenticate=self.app.authenticate,
                                  auth_required=self.app.settings.auth.required)
        self._send(status, "application/json", orjson.dumps(document), body)

    def _answer(self, *, body: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/config.json":
            document = config_document(
                self.app.settings, self.app.dashboard, page_host=self.headers.get("Host")
            )
            self._send(HTTPStatus.OK, "application/json", orjson.dumps(document), body)
            return
        if path == "/api/history":
            self._history(body)
            return
        if path.startswith("/api/"):
            self._api(body=body)
            return
        file = self.app.resolve(path)
        if file is None:
            text = f"no such page: {path}\n".encode()
            self._send(HTTPStatus.NOT_FOUND, "text/plain", text, body)
            return
        content_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
        self._send(HTTPStatus.OK, content_type or "application/octet-stream",
                   file.read_bytes(), body)

    def _history(self, body: bool) -> None:
        def answer(status: HTTPStatus, document: Any) -> None:
            self._send(status, "application/json", orjson.dumps(document), body)

        if self.app.history is None:
            answer(HTTPStatus.NOT_FOUND, {"error": "no history database is configured"})
            return
        url = urlsplit(self.path)
        claims = caller(ApiRequest(self.command, url.path, url.query,
                                   self.headers.get("Authorization")),
                        authenticate=self.app.authenticate,
                        auth_required=self.app.settings.auth.required)
        if isinstance(claims, tuple):
            answer(*claims)
            return
        query = parse_qs(url.query)

        def one(name: str, default: str | None = None) -> str | None:
            return query.get(name, [default])[0]

        district, name = one("district"), one("name")
        source = one("source", "readings") or "readings"
        if not district or not name or source not in ("readings", "indicators"):
            answer(HTTPStatus.BAD_REQUEST, {
                "error": "district and name are required; source is readings or indicators"})
            return
        now = self.app.clock()
        try:
            since = parse_time(one("since", "1h") or "1h", now=now)
            until = parse_time(one("until", "now") or "now", now=now)
            document = self.app.history(district, name, source, since, until)
            if self.app.history_view is not None:
                document = self.app.history_view(claims, document)
        except ValueError as exc:
            answer(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except CityheartError as exc:
            log.warning("dashboard: history unavailable: %s", exc)
            answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
        else:
            answer(HTTPStatus.OK, document)

    def _send(self, status: HTTPStatus, content_type: str, data: bytes, body: bool) -> None:
        textual = content_type.startswith("text/") or content_type.endswith(("json", "+xml"))
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8" if textual
                         else content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Security-Policy",
                         content_security_policy(self.app.settings.auth.oidc))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        # the request line may carry ?token=...: log it without its query
        line = (format % args).replace(self.path, urlsplit(self.path).path)
        log.debug("dashboard: %s %s", self.address_string(), line)


def serve_dashboard(
    settings: Settings,
    dashboard: DashboardSettings,
    *,
    static_dir: Path,
    history: HistoryQuery | None = None,
    api: IncidentApi | None = None,
    authenticate: Callable[[str], Claims] | None = None,
    history_view: HistoryView | None = None,
) -> None:
    """Serve the dashboard until SIGINT or SIGTERM; log and print ``dashboard: <url>`` once up.

    Call it from the main thread (it installs signal handlers, and restores them on return).
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with WebServer(settings, dashboard, static_dir=static_dir, history=history, api=api,
                       authenticate=authenticate, history_view=history_view) as web:
            log.info("dashboard: %s", web.url)
            print(f"dashboard: {web.url}", flush=True)
            while not stop.wait(0.5):
                pass
            log.info("dashboard: stopping")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
