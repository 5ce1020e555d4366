"""The dashboard's /api/history: a district's series from PostgreSQL, for charts."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest
from pydantic import SecretStr

from alerts.access import history_view
from cityheart.dashboard import history_query, web_root
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.storage.rows import reading_row
from connectors.web_server import DashboardSettings, WebServer
from models.readings import Reading
from settings.config import Settings

pytestmark = pytest.mark.timeout(60)

NOW = 1_795_669_200.0


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def test_history_endpoint_serves_stored_readings(base_settings: Settings,
                                                 database_url: str) -> None:
    settings = base_settings.model_copy(update={"database": base_settings.database.model_copy(
        update={"url": SecretStr(database_url), "embedded": False})})
    with Storage.open(StorageOptions(url=database_url)) as storage:
        storage.writer("readings").write([
            reading_row(Reading("pm-1", "harbour", "pm25", value, "ug/m3", NOW - 600 + 60 * i))
            for i, value in enumerate([10.0, 20.0, 30.0])
        ])
    web = WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                    history=history_query(settings), clock=lambda: NOW)
    with web:
        status, series = get(f"{web.url}api/history?district=harbour&name=pm25&since=1h")
        assert status == 200
        assert series["resolution"] == "raw"
        assert [p["value"] for p in series["points"]] == [10.0, 20.0, 30.0]
        status, error = get(f"{web.url}api/history?name=pm25")
        assert status == 400 and "district" in error["error"]
        status, error = get(f"{web.url}api/history?district=harbour&name=pm25&since=later")
        assert status == 400 and "later" in error["error"]


@pytest.mark.services
def test_without_a_database_the_endpoint_says_so(base_settings: Settings) -> None:
    with WebServer(base_settings, DashboardSettings(port=0), static_dir=web_root()) as web:
        status, error = get(f"{web.url}api/history?district=harbour&name=pm25")
    assert status == 404 and "no history database" in error["error"]


def test_history_checks_tokens_and_shows_viewers_no_device_ids(
    base_settings: Settings, database_url: str,
) -> None:
    import time

    from connectors.tokens import issue_token, verify_token

    secret = "history-secret-0123456789-0123456"
    settings = base_settings.model_copy(update={
        "database": base_settings.database.model_copy(
            update={"url": SecretStr(database_url), "embedded": False}),
        "auth": base_settings.auth.model_copy(update={"required": True}),
    })
    with Storage.open(StorageOptions(url=database_url)) as storage:
        storage.writer("readings").write([
            reading_row(Reading("pm-7", "harbour", "pm25", 12.0, "ug/m3", NOW - 300))])

    def token(role: str) -> str:
        return issue_token(role=role, sub=role, secret=secret, now=time.time(), ttl_s=600)

    web = WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                    history=history_query(settings), clock=lambda: NOW,
                    authenticate=lambda t: verify_token(t, secret=secret, now=time.time()),
                    history_view=history_view)
    path = "api/history?district=harbour&name=pm25&since=1h"
    with web:
        status, refused = get(f"{web.url}{path}")
        assert status == 401 and refused["error"] == "unauthorized"
        status, _ = get(f"{web.url}{path}&token={token('viewer')}x")
        assert status == 401
        status, operator = get(f"{web.url}{path}&token={token('operator')}")
        assert status == 200 and operator["points"][0]["device_id"] == "pm-7"
        status, viewer = get(f"{web.url}{path}&token={token('viewer')}")
        assert status == 200 and [p["value"] for p in viewer["points"]] == [12.0]
        assert "pm-7" not in orjson.dumps(viewer).decode()
