"""A derived-only grant never returns a value (issue 23), through every interface of the
dashboard: /api/v1, NGSI-LD, the dashboard's API and history (the feed: test_feed_grants).

Real PostgreSQL holding the small city of tests/support/open_api.py (the harbour's AQI reaches
101 in its last window, the old town's stays near 50).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from settings.config import Settings
from tests.support.open_api import city_server, fetch, token

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

GRANTS = {
    "resident-app": {"detail": "derived", "questions": [
        {"id": "air-above-warning", "indicator": "aqi", "at_least": 101}]},
    "harbour-noise": {"channels": ["vitals"], "detail": "raw", "districts": ["harbour"],
                      "kinds": ["noise"], "fields": ["district", "kind", "mean"]},
}
VALUES = {"value", "mean", "min", "max", "last", "count", "level", "score", "threshold",
          "components", "devices", "device_id", "aqi", "observedValue"}


@pytest.fixture
def city(base_settings: Settings, database_url: str) -> Iterator[SimpleNamespace]:
    with city_server(base_settings, database_url, grants=GRANTS) as running:
        yield running


def get(city: SimpleNamespace, path: str, grant: str) -> tuple[int, Any]:
    status, _, body = fetch(city.url, path, token=token("consumer", grant=grant))
    return status, orjson.loads(body) if body else None


def keys(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set(document).union(*(keys(v) for v in document.values()))
    if isinstance(document, list):
        return set().union(*(keys(v) for v in document)) if document else set()
    return set()


def test_a_derived_grant_gets_answers_and_never_a_value_anywhere(city: SimpleNamespace) -> None:
    seen = {}
    for path in ("/api/v1/vitals", "/api/v1/indicators", "/api/v1/alerts", "/api/v1/incidents",
                 "/api/v1/history/readings?kind=pm25", "/api/v1/history/indicators?indicator=aqi",
                 "/api/v1/devices", "/api/v1/kpis", "/ngsi-ld/v1/entities?type=AirQualityObserved",
                 "/ngsi-ld/v1/entities?type=Device", "/ngsi-ld/v1/temporal/entities"
                 "?type=AirQualityObserved", "/api/incidents", "/api/kpi",
                 "/api/history?district=harbour&name=pm25", "/api/devices"):
        status, document = get(city, path, "resident-app")
        seen[path] = status
        if status == 200:
            assert not keys(document) & VALUES, (path, keys(document) & VALUES)
    answers = get(city, "/api/v1/indicators", "resident-app")[1]["items"]
    assert {(a["district"], a["answer"]) for a in answers} == {("harbour", True),
                                                               ("old-town", False)}
    assert seen["/api/history?district=harbour&name=pm25"] == 403
    assert seen["/api/devices"] == 403 and seen["/api/kpi"] == 403


def test_a_raw_grant_reads_only_its_district_kind_and_fields(city: SimpleNamespace) -> None:
    status, vitals = get(city, "/api/v1/vitals", "harbour-noise")
    assert status == 200
    assert [sorted(v) for v in vitals["items"]] == [["district", "kind", "mean", "seq", "time",
                                                     "type"]] or all(
        set(v) <= {"district", "kind", "mean", "type", "seq", "time"} for v in vitals["items"])
    assert {(v["district"], v["kind"]) for v in vitals["items"]} == {("harbour", "noise")}
    assert get(city, "/api/history?district=old-town&name=noise", "harbour-noise")[0] == 403
    status, series = get(city, "/api/history?district=harbour&name=noise", "harbour-noise")
    assert status == 200 and series["points"]
