"""/ngsi-ld/v1 against real PostgreSQL: read by FIWARE's own client (filip, in its own virtual
environment) and by plain HTTP: entities, type queries, q, geo-queries, the temporal interface,
representations, and the same masking as /api/v1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlencode

import orjson
import pytest

from settings.config import Settings
from tests.support.open_api import city_server, fetch, token

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
FILIP_PYTHON = ROOT / ".venv-filip" / "bin" / "python"
HARBOUR_AIR = "urn:ngsi-ld:AirQualityObserved:harbour"


@pytest.fixture
def city(base_settings: Settings, database_url: str) -> Iterator[SimpleNamespace]:
    with city_server(base_settings, database_url) as running:
        yield running


def ngsi(city: SimpleNamespace, path: str, who: str | None = "operator",
         accept: str = "application/ld+json", **params: str) -> tuple[int, dict, object]:
    query = f"?{urlencode(params)}" if params else ""
    status, headers, body = fetch(city.url, f"/ngsi-ld/v1{path}{query}",
                                  token=token(who) if who else None, accept=accept)
    return status, headers, orjson.loads(body)


def test_filip_reads_entities_queries_and_history(city: SimpleNamespace) -> None:
    assert FILIP_PYTHON.exists(), "no .venv-filip: run `bash scripts/setup.sh test`"
    probe = subprocess.run(
        [str(FILIP_PYTHON), str(ROOT / "tests" / "support" / "filip_probe.py"), city.url,
         token("operator")], capture_output=True, text=True, timeout=120, check=False)
    assert probe.returncode == 0, probe.stderr[-4000:]
    got = orjson.loads(probe.stdout)
    assert got["entity"] == {"id": HARBOUR_AIR, "type": "AirQualityObserved", "pm25": 53.0,
                             "location": [11.655, 48.14]}
    assert got["by_type"] == [HARBOUR_AIR, "urn:ngsi-ld:AirQualityObserved:old-town"]
    assert got["q"] == [HARBOUR_AIR]
    assert got["near"] == ["urn:ngsi-ld:NoiseLevelObserved:harbour"]
    assert got["within"] == ["urn:ngsi-ld:AirQualityObserved:old-town"]
    assert [d[0] for d in got["devices"]] == [
        "urn:ngsi-ld:Device:noise-harbour-0", "urn:ngsi-ld:Device:noise-old-town-0",
        "urn:ngsi-ld:Device:pm25-harbour-0", "urn:ngsi-ld:Device:pm25-harbour-1",
        "urn:ngsi-ld:Device:pm25-old-town-0", "urn:ngsi-ld:Device:pm25-old-town-1"]
    assert got["temporal"] == [51.0, 52.0, 53.0]   # the last three windows' means


def test_representations_context_and_pages(city: SimpleNamespace) -> None:
    status, headers, entity = ngsi(city, f"/entities/{quote(HARBOUR_AIR)}")
    assert status == 200 and headers["content-type"].startswith("application/ld+json")
    context_url = entity["@context"]
    assert context_url == f"{city.url}/ngsi-ld/v1/context.jsonld"
    status, headers, plain = ngsi(city, f"/entities/{quote(HARBOUR_AIR)}",
                                  accept="application/json")
    assert "@context" not in plain and f"<{context_url}>" in headers["link"]
    status, _, context = ngsi(city, "/context.jsonld", who=None)
    assert all(term in context["@context"] for term in entity if not term.startswith("@"))

    status, _, flat = ngsi(city, f"/entities/{quote(HARBOUR_AIR)}", options="keyValues",
                           attrs="pm25")
    assert {k: v for k, v in flat.items() if k != "@context"} == {
        "id": HARBOUR_AIR, "type": "AirQualityObserved", "pm25": 53.0}

    status, headers, page = ngsi(city, "/entities", type="Device", limit="4", offset="4",
                                 count="true")
    assert headers["ngsild-results-count"] == "6" and len(page) == 2
    status, _, by_iri = ngsi(city, "/entities", type=(
        "https://smartdatamodels.org/dataModel.Environment/NoiseLevelObserved"))
    assert [e["id"] for e in by_iri] == ["urn:ngsi-ld:NoiseLevelObserved:harbour",
                                         "urn:ngsi-ld:NoiseLevelObserved:old-town"]
    assert ngsi(city, "/entities", type="Parking")[2] == []

    status, _, problem = ngsi(city, "/entities/urn:ngsi-ld:AirQualityObserved:atlantis")
    assert status == 404 and problem["type"].endswith("/ResourceNotFound")
    status, _, problem = ngsi(city, "/entities", georel="near", geometry="Point",
                              coordinates="[11.6,48.1]")
    assert status == 400 and "maxDistance" in problem["detail"]


def test_temporal_interface_reads_history_by_time_relation(city: SimpleNamespace) -> None:
    path = f"/temporal/entities/{quote(HARBOUR_AIR)}"
    status, _, entity = ngsi(city, path, timerel="between", timeAt="2026-12-07T10:00:00Z",
                             endTimeAt="2026-12-07T10:30:00Z")
    assert status == 200
    assert [(i["value"], i["observedAt"]) for i in entity["pm25"]] == [
        (42.0, "2026-12-07T10:10:00.000Z"), (43.0, "2026-12-07T10:20:00.000Z"),
        (44.0, "2026-12-07T10:30:00.000Z")]
    status, _, values = ngsi(city, path, timerel="after", timeAt="2026-12-07T11:40:00Z",
                             options="temporalValues")
    assert values["pm25"]["values"] == [[52.0, "2026-12-07T11:50:00.000Z"],
                                        [53.0, "2026-12-07T12:00:00.000Z"]]
    status, _, listed = ngsi(city, "/temporal/entities", type="NoiseLevelObserved",
                             lastN="1", q='areaServed=="old-town"')
    assert [(e["id"], len(e["LAeq"])) for e in listed] == [
        ("urn:ngsi-ld:NoiseLevelObserved:old-town", 1)]
    status, _, problem = ngsi(city, path, timerel="during", timeAt="2026-12-07T10:00:00Z")
    assert status == 400 and "timerel" in problem["detail"]


def test_a_viewer_gets_no_devices_nor_alerts(city: SimpleNamespace) -> None:
    for who, expected in (("operator", {"AirQualityObserved", "Alert", "Device"}),
                          ("viewer", {"AirQualityObserved"})):
        found = ngsi(city, "/entities", who=who, type="AirQualityObserved,Alert,Device")[2]
        assert {e["type"] for e in found} == expected, who
    alerts = ngsi(city, "/entities", who=None, accept="application/json", type="Alert")
    assert alerts[2] == []
    status = fetch(city.url, "/ngsi-ld/v1/entities?type=Alert", token="forged")[0]
    assert status == 401

