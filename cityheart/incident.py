"""``cityheart incident ID ACTION``: act on one incident through the dispatch API, as a role.

    cityheart incident inc-1a2b ack --comment "crew on the way"
    cityheart incident inc-1a2b dispatch --team water-crew-3
    cityheart incident inc-1a2b resolve --outcome false_alarm --comment "sensor fouled"
    cityheart incident inc-1a2b show            # the incident and its timeline

The token comes from ``--token`` or ``CITYHEART_TOKEN`` (``cityheart token`` issues one); the
API is the dashboard's (``dashboard:`` in config.yaml) unless ``--api`` names another. The
action goes through the flow like one taken in the page, with the same permissions. Exit
codes: 0 done, 1 refused or failed (the reason on stderr), 2 a bad argument.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote

import orjson

from alerts.lifecycle import ACTIONS as LIFECYCLE_ACTIONS
from alerts.lifecycle import OUTCOMES
from cityheart.services.dispatch import ACTION_ALIASES
from connectors.api_client import ApiClient
from models.choices import refusal
from settings.config import Settings

__all__ = ["ACTIONS", "run_incident"]

ACTIONS = (*ACTION_ALIASES, *LIFECYCLE_ACTIONS, "show")


def run_incident(
    settings: Settings, incident_id: str, action: str, *, token: str | None,
    api: str | None = None, comment: str | None = None, team: str | None = None,
    outcome: str | None = None, as_json: bool = False,
) -> int:
    """Do ``action`` on ``incident_id`` (or show it); print the result; return the exit code."""
    if action not in ACTIONS:
        print(f"error: action {action!r} is not one of {', '.join(ACTIONS)}", file=sys.stderr)
        return 2
    if outcome is not None and (reason := refusal([outcome], OUTCOMES, "--outcome")):
        print(f"error: {reason}", file=sys.stderr)
        return 2
    client = ApiClient(api or settings.dashboard.url, token=token)
    path = f"/api/incidents/{quote(incident_id, safe='')}"
    if action == "show":
        status, document = client.get(path)
    else:
        body = {"action": action, "comment": comment, "team": team, "outcome": outcome}
        status, document = client.post(f"{path}/actions",
                                       {k: v for k, v in body.items() if v is not None})
    if status != 200:
        print(f"error: {document.get('error')} ({status}): {document.get('detail')}",
              file=sys.stderr)
        return 1
    if as_json:
        print(orjson.dumps(document).decode())
    elif action == "show":
        print(_incident_line(document["incident"]))
        for event in document["events"]:
            print("  " + _event_line(event))
    else:
        print(_incident_line(document["incident"]))
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
