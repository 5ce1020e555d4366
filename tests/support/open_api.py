"""A small city in PostgreSQL and a dashboard server over it, for the /api/v1 and NGSI-LD tests.

    with city_server(base_settings, database_url) as city:
        status, headers, body = fetch(city.url, "/api/v1/alerts", token=city.token("operator"))

The data is two hours before :data:`NOW`: pm25 (two devices) and noise (one device) readings in
old-town and harbour every minute, vitals and AQI every 10 minutes, three alerts and one
incident with two events (one a comment naming a person). Harbour's pm25 devices stand
:data:`HARBOUR_PM25` (100 m and 400 m east of its centroid, where the incident and alert a-1
are, the incident with a 200 m radius); the other devices have no position.
"""

from __future__ import annotations

import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import SecretStr

from alerts.access import history_view
from alerts.lifecycle import Incident, IncidentEvent
from cityheart.dashboard import history_query, web_root
from cityheart.services.api_view import api_view
from cityheart.services.dispatch import DispatchService
from cityheart.token import token_check
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.storage.rows import (
    alert_row,
    incident_event_row,
    incident_row,
    indicator_row,
    reading_row,
    vital_row,
)
from connectors.tokens import Claims, issue_token, verify_token
from connectors.web_server import DashboardSettings, WebServer
from models.readings import Reading
from models.timefmt import iso
from settings.config import Settings

NOW = 1_796_644_800.0  # 2026-12-07T12:00:00Z
START = NOW - 7200.0
SECRET = "open-api-secret-0123456789-abcdef"
DISTRICTS = ("old-town", "harbour")
INCIDENT = "inc-old-town-pm25-1"
HARBOUR = (48.14, 11.655)  # its centroid (lat, lon)
HARBOUR_PM25 = ((48.14, 11.65635), (48.14, 11.66039))  # ~100 m and ~400 m east of it


def fill(storage: Storage) -> None:
    """Store the small city (see module doc)."""
    readings, vitals, indicators = [], [], []
    for d, district in enumerate(DISTRICTS):
        for minute in range(120):
            ts = START + 60 * minute
            for n in range(2):
                at = HARBOUR_PM25[n] if district == "harbour" else (None, None)
                readings.append(Reading(f"pm25-{district}-{n}", district, "pm25",
                                        10.0 + d * 30 + minute / 10 + n, "ug/m3", ts, None,
                                        *at))
            readings.append(Reading(f"noise-{district}-0", district, "noise",
                                    50.0 + d * 10 + minute % 7, "dB", ts))
        for window in range(12):
            start = START + 600 * window
            for kind, mean, unit in (("pm25", 12.0 + d * 30 + window, "ug/m3"),
                                     ("noise", 52.0 + d * 10, "dB")):
                vitals.append({"window_start": iso(start), "window_end": iso(start + 600),
                               "district": district, "kind": kind, "unit": unit, "count": 10,
                               "mean": mean, "min": mean - 1, "max": mean + 1, "last": mean,
                               "devices": 2})
            indicators.append({"ts": iso(start + 600), "district": district, "indicator": "aqi",
                               "value": 40.0 + d * 50 + window, "level": "moderate"})
    storage.writer("readings").write([reading_row(r) for r in readings])
    storage.writer("vitals").write([vital_row(v) for v in vitals])
    storage.writer("indicators").write([indicator_row(i) for i in indicators])
    alerts = [
        {"id": "a-1", "rule": "threshold", "district": "harbour", "kind": "pm25",
         "severity": "critical", "value": 160.0, "threshold": 150.5, "ts": iso(NOW - 3000),
         "message": "pm25 above critical", "lat": HARBOUR[0], "lon": HARBOUR[1]},
        {"id": "a-2", "rule": "threshold", "district": "old-town", "kind": "noise",
         "severity": "warning", "value": 80.0, "threshold": 75.0, "ts": iso(NOW - 2000),
         "message": "noise above warning"},
        {"id": "a-3", "rule": "threshold", "district": "harbour", "kind": "water_level",
         "severity": "warning", "value": 3.1, "threshold": 3.0, "ts": iso(NOW - 1000),
         "message": "water level above warning"},
    ]
    storage.writer("alerts").write([alert_row(a) for a in alerts])
    incident = Incident(id=INCIDENT, district="harbour", rule="threshold", kind="pm25",
                        title="PM2.5 critical in Harbour", severity="critical",
                        departments=("environment-bureau",), opened_at=NOW - 3000,
                        updated_at=NOW - 2500, alert_count=1, alert_ids=("a-1",),
                        kinds=("pm25",), sequence=2, lat=HARBOUR[0], lon=HARBOUR[1],
                        radius_m=200.0)
    storage.writer("incidents").write([incident_row(incident.to_record())])
    events = [IncidentEvent(INCIDENT, 1, NOW - 3000, "flow", "open",
                            departments=("environment-bureau",),
                            details={"rule": "threshold", "severity": "critical"}),
              IncidentEvent(INCIDENT, 2, NOW - 2500, "ana", "comment",
                            comment="called Mr Smith at the harbour office",
                            departments=("environment-bureau",))]
    storage.writer("incident_events").write([incident_event_row(e.to_record()) for e in events])


@contextmanager
def city_server(base_settings: Settings, database_url: str,
                grants: dict[str, Any] | None = None) -> Iterator[SimpleNamespace]:
    """The dashboard's server over the small city, checking tokens signed with SECRET (with
    ``grants``, auth.grants as config.yaml has them, checked as ``cityheart dashboard`` does)."""
    settings = base_settings.model_copy(update={"database": base_settings.database.model_copy(
        update={"url": SecretStr(database_url), "embedded": False})})
    if grants is not None:
        settings = settings.model_copy(update={"auth": settings.auth.model_validate(
            {**settings.auth.model_dump(), "grants": grants})})
    with Storage.open(StorageOptions(url=database_url)) as storage:
        fill(storage)

        def verify(token: str) -> Claims:
            return verify_token(token, secret=SECRET, now=time.time())

        authenticate = verify if grants is None else token_check(
            settings, {"CITYHEART_TOKEN_SECRET": SECRET}, revoked=Path(
                tempfile.mkdtemp(prefix="cityheart-revoked-")) / "revoked.yaml")

        web = WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                        history=history_query(settings, lambda: storage),
                        history_view=history_view,
                        api=DispatchService(settings, storage=lambda: storage, bus=None,
                                            clock=lambda: NOW),
                        authenticate=authenticate, storage=lambda: storage,
                        view=api_view(settings), clock=lambda: NOW)
        with web:
            yield SimpleNamespace(url=web.url.rstrip("/"), settings=settings, token=token)


def token(role: str, department: str | None = None, grant: str | None = None) -> str:
    """A token of ``role`` (and ``department``, or a consumer's ``grant``) valid for an hour."""
    return issue_token(role=role, department=department, grant=grant, sub=f"{role}-1",
                       secret=SECRET, now=time.time(), ttl_s=3600)


def fetch(base: str, path: str, *, token: str | None = None, accept: str | None = None,
          method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """``method`` ``base + path``: status, headers (lower-case names), body."""
    request = urllib.request.Request(base + path, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
