"""What the dashboard page is told: where the dashboard listens and ``/config.json``.

    DashboardSettings(host="127.0.0.1", port=8766)       # port 0: a free port
    config_document(settings, dashboard, page_host="city.example:8766")

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

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.web_signin import signin_document
from models.errors import ConfigError
from models.indicators import crowd, noise, power, traffic, water
from models.indicators.score import SCORE_LEVELS
from models.vitals.compute import HEALTH_LEVELS
from settings.config import Settings
from settings.indicators import INDICATORS

__all__ = ["INDICATOR_LEVELS", "WILDCARDS", "DashboardSettings", "config_document"]

WILDCARDS = ("", "0.0.0.0", "::", "[::]")
"""Host names that mean "every interface"."""

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
    tls_certfile: str | None = None  # PEM certificate chain: HTTPS (uvicorn's ssl options)
    tls_keyfile: str | None = None

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
    if feed.host in WILDCARDS and page_host:
        host = urlsplit(f"//{page_host}").hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{feed.port}{feed.path}"
    return feed.url
