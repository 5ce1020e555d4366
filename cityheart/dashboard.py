"""``cityheart dashboard``: the command-centre web application, served over HTTP.

    run_dashboard(settings, host="127.0.0.1", port=8766)   # until SIGINT/SIGTERM
    web_root()                                              # the static files it serves

The page itself lives in ``cityheart/web/`` (package data: plain ES modules, no build step) and
talks to the push feed directly; :mod:`connectors.web_server` serves it with ``/config.json``.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.web_server import DashboardSettings, HistoryQuery, serve_dashboard
from models.config import Settings

__all__ = ["history_query", "run_dashboard", "web_root"]


def web_root() -> Path:
    """The folder of the web application's static files (``cityheart/web``)."""
    return Path(str(resources.files("cityheart").joinpath("web")))


def history_query(settings: Settings) -> HistoryQuery:
    """``/api/history``'s query on the ``database:`` of ``settings``, connecting on first use
    (so the page works while the database is still starting or away)."""
    lock = threading.Lock()
    opened: list[Storage] = []

    def query(district: str, name: str, source: str, since: float, until: float) -> dict:
        with lock:
            if not opened:
                options = StorageOptions.from_database(settings.database)
                opened.append(Storage.open(options, migrate_schema=False))
            storage = opened[0]
        series = storage.history.series(district, name, source=source, since=since, until=until)
        return {"district": district, "name": name, "source": source,
                "resolution": series.resolution, "points": series.records()}

    return query


def run_dashboard(settings: Settings, *, host: str = "127.0.0.1", port: int = 8766) -> None:
    """Serve the dashboard on ``host:port`` until SIGINT or SIGTERM; print its URL once up."""
    serve_dashboard(
        settings,
        DashboardSettings(host=host, port=port),
        static_dir=web_root(),
        history=history_query(settings),
    )
