"""``cityheart incident ID ACTION``: act on one incident through the dispatch API, as a role.

    cityheart incident inc-1a2b ack --comment "crew on the way"
    cityheart incident inc-1a2b dispatch --team water-crew-3
    cityheart incident inc-1a2b resolve --outcome false_alarm --comment "sensor fouled"
    cityheart incident inc-1a2b show            # the incident and its timeline
    cityheart incident create --kind water_level --title "Water over the quay" \
        --severity critical --district harbour --reporter "harbour master (phone)"
    cityheart incident inc-1a2b assign --to wei
    cityheart incident inc-1a2b transfer --department grid-operator --comment "power cut"
    cityheart incident inc-1a2b add_department --department operations --reason "road closed"
    cityheart incident inc-1a2b link --with inc-9f8e     # merge --with: a duplicate of it
    cityheart incident inc-1a2b cap             # the CAP 1.2 message (XML) of the incident
    cityheart incident inc-1a2b devices [--radius 500m]   # devices in its circle (or radius)

The token comes from ``--token`` or ``CITYHEART_TOKEN`` (``cityheart token`` issues one); the
API is the dashboard's (``dashboard:`` in config.yaml) unless ``--api`` names another. The
action goes through the flow like one taken in the page, with the same permissions. Exit
codes: 0 done, 1 refused or failed (the reason on stderr), 2 a bad argument. ``devices`` reads
``GET /api/v1/incidents/{id}/devices``: the devices whose newest position is within the
incident's circle (or ``--radius`` of its centre), one a line (``--json``: one object a line).
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from alerts.lifecycle import ACTIONS as LIFECYCLE_ACTIONS
from alerts.lifecycle import OUTCOMES
from cityheart.services.dispatch import ACTION_ALIASES
from connectors.api_client import ApiClient
from models.choices import refusal
from settings.config import Settings

__all__ = ["ACTIONS", "run_create", "run_incident"]

ACTIONS = (*ACTION_ALIASES, *LIFECYCLE_ACTIONS, "show", "cap", "devices")


def run_incident(
    settings: Settings, incident_id: str, action: str, *, token: str | None,
    api: str | None = None, comment: str | None = None, team: str | None = None,
    outcome: str | None = None, target: str | None = None, from_department: str | None = None,
    as_json: bool = False, radius: str | None = None,
) -> int:
    """Do ``action`` on ``incident_id`` (or show it); print the result; return the exit code.

    ``target`` is what a handover names: the person assigned, the department transferred or
    added to, the incident linked or merged with."""
    if action not in ACTIONS:
        print(f"error: action {action!r} is not one of {', '.join(ACTIONS)}", file=sys.stderr)
        return 2
    if outcome is not None and (reason := refusal([outcome], OUTCOMES, "--outcome")):
        print(f"error: {reason}", file=sys.stderr)
        return 2
    client = ApiClient(api or settings.dashboard.url, token=token)
    if action == "devices":
        return _devices(client, incident_id, radius, as_json)
    path = f"/api/incidents/{quote(incident_id, safe='')}"
    if action in ("show", "cap"):
        status, document = client.get(path if action == "show" else f"{path}/cap")
    else:
        body = {"action": action, "comment": comment, "team": team, "outcome": outcome,
                "target": target, "from_department": from_department}
        status, document = client.post(f"{path}/actions",
                                       {k: v for k, v in body.items() if v is not None})
    if status != 200:
        print(f"error: {document.get('error')} ({status}): {document.get('detail')}",
              file=sys.stderr)
        return 1
    if as_json:
        print(orjson.dumps(document).decode())
    elif action == "cap":
        print(document["xml"], end="")
    elif action == "show":
        print(_incident_line(document["incident"]))
        for event in document["events"]:
            print("  " + _event_line(event))
    elif document.get("incident") is None:  # handed over: no longer the caller's to see
        print(f"{incident_id}  {action} done; it is no longer routed to you")
    else:
        print(_incident_line(document["incident"]))
    return 0


def _devices(client: ApiClient, incident_id: str, radius: str | None, as_json: bool) -> int:
    """Print the devices near ``incident_id``, every page of them."""
    params = {"limit": "1000", **({"radius": radius} if radius else {})}
    path = f"/api/v1/incidents/{quote(incident_id, safe='')}/devices"
    while True:
        status, document = client.get(f"{path}?{urlencode(params)}")
        if status != 200:
            print(f"error: {document.get('error')} ({status}): {document.get('detail')}",
                  file=sys.stderr)
            return 2 if status == 400 else 1
        for device in document["items"]:
            print(orjson.dumps(device).decode() if as_json else _device_line(device))
        if not document.get("next_cursor"):
            return 0
        params["cursor"] = document["next_cursor"]


def _device_line(device: dict[str, Any]) -> str:
    at = f"{device['lat']:.6f},{device['lon']:.6f}" if device.get("lat") is not None else "-"
    return (f"{device['device_id']:32} {device['district']:16} {device['kind']:14} "
            f"{device.get('value', '')} {device.get('unit', '')}  last {device['last_seen']}  "
            f"{at}")


def run_create(
    settings: Settings, report: dict[str, Any], *, token: str | None, api: str | None = None,
    as_json: bool = False,
) -> int:
    """Open an incident from ``report`` (kind, title, severity, district or lat/lon, ...);
    print the new incident; return the exit code."""
    client = ApiClient(api or settings.dashboard.url, token=token)
    status, document = client.post("/api/incidents",
                                    {k: v for k, v in report.items() if v is not None})
    if status != 201:
        print(f"error: {document.get('error')} ({status}): {document.get('detail')}",
              file=sys.stderr)
        return 1
    print(orjson.dumps(document).decode() if as_json else _incident_line(document["incident"]))
    return 0


def _incident_line(incident: dict[str, Any]) -> str:
    actions = ", ".join(incident.get("allowed_actions") or []) or "none"
    return (f"{incident['id']}  {incident.get('state')}  {incident.get('severity')}  "
            f"{incident.get('district')}  {','.join(incident.get('departments') or [])}  "
            f"{incident.get('title') or ''}  (you may: {actions})")


def _event_line(event: dict[str, Any]) -> str:
    comment = f"  \"{event['comment']}\"" if event.get("comment") else ""
    actor = event.get("actor") or "-"
    return f"{event.get('ts')}  #{event.get('sequence')}  {event.get('action')}  {actor}{comment}"
