"""How ``/api/v1`` and ``/ngsi-ld/v1`` mask what they serve: the feed's rules, with stored alerts
routed as their incidents would be.

    WebServer(..., storage=storage, view=api_view(settings))

A stored alert has no ``departments`` (the flow routes incidents, not alerts), so a dispatcher's
view of one would be empty; :func:`api_view` routes it first with ``incidents.routing``
(:func:`alerts.routing.route`), then applies :func:`alerts.access.view` as the feed does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from alerts.access import view
from alerts.routing import route
from models.claims import Claims
from settings.config import Settings

__all__ = ["api_view"]


def api_view(settings: Settings) -> Callable[[Claims, Mapping[str, Any]], dict[str, Any] | None]:
    """``view`` for the public APIs of the deployment configured by ``settings``."""
    routing = settings.incidents.routing

    def api(claims: Claims, message: Mapping[str, Any]) -> dict[str, Any] | None:
        if message.get("type") == "alert" and "departments" not in message:
            departments = route(routing, district=str(message.get("district")),
                                kinds=(str(message.get("kind")),),
                                severity=str(message.get("severity") or "warning"),
                                rules=(str(message.get("rule")),))
            message = {**message, "departments": list(departments)}
        return view(claims, message)

    return api
