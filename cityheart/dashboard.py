"""``cityheart dashboard``: the command-centre web application, served over HTTP.

    run_dashboard(settings, host="127.0.0.1", port=8766)   # until SIGINT/SIGTERM
    web_root()                                              # the static files it serves

The page itself lives in ``cityheart/web/`` (package data: plain ES modules, no build step) and
talks to the push feed directly; :mod:`connectors.web_server` serves it with ``/config.json``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from connectors.web_server import DashboardSettings, serve_dashboard
from models.config import Settings

__all__ = ["run_dashboard", "web_root"]


def web_root() -> Path:
    """The folder of the web application's static files (``cityheart/web``)."""
    return Path(str(resources.files("cityheart").joinpath("web")))


def run_dashboard(settings: Settings, *, host: str = "127.0.0.1", port: int = 8766) -> None:
    """Serve the dashboard on ``host:port`` until SIGINT or SIGTERM; print its URL once up."""
    serve_dashboard(settings, DashboardSettings(host=host, port=port), static_dir=web_root())
