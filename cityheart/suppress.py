"""``cityheart suppress``: maintenance windows at run time, through the dispatch API.

    cityheart suppress add --district harbour --for 2h --reason "pump station maintenance"
    cityheart suppress add --district harbour --device wl-7 --kind water_level \\
        --until 2026-12-08T06:00:00Z --id pump-works
    cityheart suppress list [--json]
    cityheart suppress end pump-works

A window silences its districts (or only some devices or kinds there) until its end: alerts
there open no incident and incidents there do not escalate; every incident it covers records it
in its timeline. No restart: the flow applies it at once. The token comes from ``--token`` or
``CITYHEART_TOKEN`` (operators add and end windows); exit codes: 0 done, 1 refused or failed
(the reason on stderr), 2 a bad argument.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import orjson

from connectors.api_client import ApiClient
from settings.config import Settings

__all__ = ["WHAT", "run_suppress"]

WHAT = ("add", "list", "end")


def run_suppress(
    settings: Settings, what: str, window_id: str | None = None, *, token: str | None,
    api: str | None = None, districts: Sequence[str] = (), devices: Sequence[str] = (),
    kinds: Sequence[str] = (), start: str | None = None, until: str | None = None,
    duration: str | None = None, reason: str | None = None, as_json: bool = False,
) -> int:
    """Add, list or end windows; print the result; return the exit code."""
    if what not in WHAT:
        print(f"error: {what!r} is not one of {', '.join(WHAT)}", file=sys.stderr)
        return 2
    if what == "end" and not window_id:
        print("error: end takes the window's id (cityheart suppress list shows them)",
              file=sys.stderr)
        return 2
    if what == "add" and (until is None) == (duration is None):
        print("error: add takes --until TIME or --for DURATION (e.g. 2h)", file=sys.stderr)
        return 2
    client = ApiClient(api or settings.dashboard.url, token=token)
    if what == "list":
        status, document = client.get("/api/suppressions")
    elif what == "end":
        status, document = client.post(f"/api/suppressions/{quote(str(window_id), safe='')}/end",
                                       {})
    else:
        body = {"id": window_id, "districts": list(districts), "devices": list(devices),
                "kinds": list(kinds), "start": start, "end": until, "for": duration,
                "reason": reason}
        status, document = client.post("/api/suppressions",
                                        {k: v for k, v in body.items() if v not in (None, [])})
    if status not in (200, 201):
        print(f"error: {document.get('error')} ({status}): {document.get('detail')}",
              file=sys.stderr)
        return 1
    if as_json:
        print(orjson.dumps(document).decode())
    elif what == "list":
        for window in document["windows"]:
            print(_line(window))
        if not document["windows"]:
            print("no maintenance windows")
    else:
        incidents = ", ".join(document.get("incidents") or []) or "none"
        print(f"{_line(document['window'])}\n  incidents covered: {incidents}")
    return 0


def _line(window: dict[str, Any]) -> str:
    where = ",".join(window.get("districts") or [])
    narrower = [*(window.get("devices") or []), *(window.get("kinds") or [])]
    where += f" ({', '.join(narrower)})" if narrower else ""
    source = f"  [{window['source']}]" if window.get("source") else ""
    return (f"{window['id']}  {window['start']} -> {window['end']}  {where}  "
            f"{window.get('reason') or ''}{source}").rstrip()
