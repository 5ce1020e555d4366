"""Open data over HTTP (issue 23): a public catalogue, keyed downloads, revocation at once.

Real PostgreSQL and the real dashboard server; the rows are put in history as the recorder
would, then read back through ``/open-data/`` as a portal or a resident's app would.
"""

from __future__ import annotations

import csv
import io
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from cityheart.dashboard import lazy_storage, web_root
from connectors.audit_log import AuditLog, read_audit
from connectors.open_data import OpenData
from connectors.open_data_keys import add_key, revoke_key
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.storage.rows import reading_row
from connectors.web_server import DashboardSettings, WebServer
from models.audit import AuditEntry
from models.readings import Reading
from settings.config import Settings
from tests.support import wait_until

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


def with_database(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"database": settings.database.model_copy(
        update={"url": SecretStr(url), "embedded": False})})

NOW = datetime(2026, 12, 7, 17, 42, 10, tzinfo=UTC).timestamp()


def fetch(url: str, key: str | None = None) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _history(database_url: str) -> None:
    with Storage.open(StorageOptions(url=database_url)) as storage, \
            storage.pool.connection() as conn:
        for ts, district, value, level in [
            ("2026-12-07T15:00:10Z", "harbour", 40.0, "good"),
            ("2026-12-07T15:30:00Z", "harbour", 60.0, "moderate"),
            ("2026-12-07T16:00:00Z", "harbour", 80.0, "moderate"),  # ends the 15:00 hour
            ("2026-12-07T16:30:00Z", "harbour", 300.0, "hazardous"),  # not published yet
            ("2026-12-07T15:10:00Z", "old-town", 20.0, "good"),
        ]:
            conn.execute("INSERT INTO indicators (ts, district, indicator, value, level) "
                         "VALUES (%s, %s, 'aqi', %s, %s)", (ts, district, value, level))
        for i, (opened, district, kind, severity) in enumerate([
            ("2026-12-05T08:00:00Z", "harbour", "pm25", "critical"),
            ("2026-12-05T09:00:00Z", "harbour", "pm25", "warning"),
            ("2026-12-06T10:00:00Z", "old-town", "noise", "warning"),
        ]):
            conn.execute(
                "INSERT INTO incidents (id, state, severity, district, kind, title, opened_at, "
                "updated_at, record) VALUES (%s, 'open', %s, %s, %s, 'secret title', %s, %s, "
                "'{\"comment\": \"caller Jane Doe\"}')",
                (f"inc-{i}", severity, district, kind, opened, opened))
        storage.writer("readings").write([
            reading_row(Reading(device, "harbour", "pm25", 10.0, "ug/m3",
                                datetime(2026, 12, 6, 12, m, tzinfo=UTC).timestamp()))
            for device in ("pm-secret-1", "pm-secret-2") for m in range(3)])


@pytest.fixture
def site(base_settings: Settings, database_url: str, tmp_path: Path):
    _history(database_url)
    settings = with_database(base_settings, database_url)
    keys = tmp_path / "open-data-keys.yaml"
    storage = lazy_storage(settings)
    audit = AuditLog(tmp_path / "audit", "dashboard")
    open_data = OpenData(settings, pool=lambda: storage().pool, keys=keys, clock=lambda: NOW,
                         audit=audit)
    with WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                   open_data=open_data, clock=lambda: NOW) as web:
        yield web, keys


def test_the_catalogue_is_public_and_lists_every_dataset_with_its_coverage(site) -> None:
    web, _ = site
    status, headers, body = fetch(f"{web.url}open-data/catalog.jsonld")
    assert status == 200 and headers["Content-Type"].startswith("application/ld+json")
    catalogue = orjson.loads(body)
    by_id = {d["dct:identifier"]: d for d in catalogue["dcat:dataset"]}
    assert set(by_id) == {"aqi-hourly", "incidents-daily", "device-coverage-daily"}
    span = by_id["aqi-hourly"]["dct:temporal"]
    assert span["dcat:startDate"]["@value"].startswith("2026-12-07T15:00:10")
    # the newest hour published ended at 16:00 (an hour's delay), though history goes on
    assert span["dcat:endDate"]["@value"] == "2026-12-07T16:00:00Z"
    csv_url = next(d["dcat:downloadURL"]["@id"] for d in by_id["aqi-hourly"]["dcat:distribution"]
                   if d["dct:format"] == "CSV")
    assert csv_url == f"{web.url}open-data/datasets/aqi-hourly.csv"


def test_a_key_downloads_aggregates_and_never_ids_comments_or_names(site) -> None:
    web, keys = site
    key = add_key(keys, "river app", now=NOW)
    status, headers, body = fetch(f"{web.url}open-data/datasets/aqi-hourly.csv", key)
    assert status == 200, body
    assert headers["X-Period-Start"] == "2026-12-07T15:00:00Z"
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [(r["district"], r["aqi_mean"], r["aqi_max"], r["level"], r["windows"])
            for r in rows] == [("harbour", "60.0", "80.0", "moderate", "3"),
                               ("old-town", "20.0", "20.0", "good", "1")]
    # the download is in the read audit under the key's id, with its rows per district
    key_id = key.removeprefix("ohk_").split(".")[0]

    def audited() -> list[AuditEntry]:
        return list(read_audit(keys.parent / "audit", since=0, until=time.time() + 60))

    wait_until(audited, 10, "the download's audit entry")
    [entry] = audited()
    assert (entry.sub, entry.interface, entry.what, dict(entry.districts)) == (
        f"key:{key_id}", "open-data", "aqi-hourly.csv", {"harbour": 1, "old-town": 1})
    status, _, body = fetch(f"{web.url}open-data/datasets/incidents-daily.json"
                            "?from=2026-12-01T00:00:00Z", key)
    assert status == 200
    assert [(r["period_start"][:10], r["district"], r["kind"], r["incidents"], r["critical"])
            for r in orjson.loads(body)["rows"]] == [("2026-12-05", "harbour", "pm25", 2, 1),
                                                     ("2026-12-06", "old-town", "noise", 1, 0)]
    assert b"inc-" not in body and b"Jane" not in body and b"secret" not in body
    status, _, body = fetch(f"{web.url}open-data/datasets/device-coverage-daily.geojson"
                            "?from=2026-12-06T00:00:00Z", key)
    assert status == 200 and b"pm-secret" not in body
    feature = orjson.loads(body)["features"][0]
    assert feature["properties"]["devices"] == 2 and feature["properties"]["readings"] == 6
    assert feature["geometry"]["type"] == "Point"


def test_without_a_key_or_with_a_revoked_one_a_download_is_refused_at_once(site) -> None:
    web, keys = site
    url = f"{web.url}open-data/datasets/aqi-hourly.csv"
    status, _, body = fetch(url)
    assert status == 401 and b"X-API-Key" in body
    assert fetch(url, "ohk_00000000.forged")[0] == 401
    key = add_key(keys, "enterprise", now=NOW)
    assert fetch(url, key)[0] == 200
    revoke_key(keys, key.removeprefix("ohk_").split(".")[0], now=NOW)
    status, _, body = fetch(url, key)
    assert status == 403 and b"revoked" in body
    # an open-data key is no token for anything else the dashboard serves
    assert fetch(f"{web.url}api/incidents", key)[0] in (401, 404)


def test_a_key_over_its_rate_gets_429_with_retry_after(base_settings: Settings,
                                                       database_url: str, tmp_path: Path) -> None:
    settings = with_database(base_settings, database_url).model_copy(update={
        "open_data": base_settings.open_data.model_copy(update={"rate_per_minute": 2,
                                                                 "daily_quota": 3})})
    keys = tmp_path / "keys.yaml"
    storage = lazy_storage(settings)
    Storage.open(StorageOptions(url=database_url)).close()
    open_data = OpenData(settings, pool=lambda: storage().pool, keys=keys, clock=lambda: NOW)
    key = add_key(keys, "busy", now=NOW)
    with WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                   open_data=open_data) as web:
        url = f"{web.url}open-data/datasets/aqi-hourly.json"
        assert [fetch(url, key)[0] for _ in range(2)] == [200, 200]
        status, headers, body = fetch(url, key)
        assert status == 429 and "rate limit" in orjson.loads(body)["detail"]
        assert int(headers["Retry-After"]) > 0


def test_bad_requests_name_what_is_valid(site) -> None:
    web, keys = site
    key = add_key(keys, "dev", now=NOW)
    status, _, body = fetch(f"{web.url}open-data/datasets/readings.csv", key)
    assert status == 404 and b"aqi-hourly" in body
    status, _, body = fetch(f"{web.url}open-data/datasets/aqi-hourly.xlsx", key)
    assert status == 400 and b"csv, json, geojson" in body
    status, _, body = fetch(f"{web.url}open-data/datasets/aqi-hourly.csv?from=yesterday", key)
    assert status == 400 and b"ISO 8601" in body
    status, _, body = fetch(f"{web.url}open-data/datasets/aqi-hourly.csv"
                            "?from=2020-01-01T00:00:00Z", key)
    assert status == 400 and b"open_data.max_days" in body
