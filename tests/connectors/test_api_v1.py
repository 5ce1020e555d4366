"""/api/v1 against real PostgreSQL: the served OpenAPI document is true (every route in it
answers, every answer matches its schema), pages are complete, formats and errors as documented,
and each role sees what the dashboard's API shows it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest
from jsonschema import Draft202012Validator

from settings.config import Settings
from tests.support.open_api import HARBOUR, INCIDENT, city_server, fetch, token

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def city(base_settings: Settings, database_url: str) -> Iterator[SimpleNamespace]:
    with city_server(base_settings, database_url) as running:
        yield running


class Contract:
    """Checks answers against the served OpenAPI document and remembers the routes checked."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: set[str] = set()

    def check(self, template: str, status: int, headers: dict[str, str], body: bytes,
              method: str = "get") -> Any:
        operation = self.document["paths"][template][method]
        response = operation["responses"].get(str(status))
        assert response is not None, f"{template} answered {status}, not in the document"
        media = headers["content-type"].split(";")[0]
        assert media in response["content"], f"{template} {status} gave {media}"
        parsed = body.decode() if media == "text/csv" else orjson.loads(body)
        Draft202012Validator(response["content"][media]["schema"]).validate(parsed)
        self.checked.add(template)
        return parsed


def get(city: SimpleNamespace, contract: Contract, template: str, path: str | None = None,
        who: str | None = "operator", accept: str | None = None, **params: Any) -> Any:
    query = f"?{urlencode(params)}" if params else ""
    status, headers, body = fetch(city.url, (path or template) + query,
                                  token=token(who) if who else None, accept=accept)
    return status, headers, contract.check(template, status, headers, body)


def test_every_route_of_the_served_openapi_document_answers_as_it_describes(
    city: SimpleNamespace,
) -> None:
    status, _, body = fetch(city.url, "/api/v1/openapi.json")
    assert status == 200
    document = orjson.loads(body)
    assert fetch(city.url, "/openapi.json")[2] == body
    contract = Contract(document)
    routes = list(document["paths"])
    assert len([r for r in routes if r.startswith(("/api/v1/", "/ngsi-ld/v1/"))]) >= 18

    _, _, page = get(city, contract, "/api/v1/districts")
    assert {d["id"] for d in page["items"]} >= {"old-town", "harbour"}
    _, headers, collection = get(city, contract, "/api/v1/districts", format="geojson")
    assert collection["type"] == "FeatureCollection"
    assert headers["content-type"].startswith("application/geo+json")
    template = "/api/v1/districts/{district_id}"
    _, _, one = get(city, contract, template, "/api/v1/districts/harbour")
    assert one["geometry"]["type"] == "Polygon"
    status, _, missing = get(city, contract, template, "/api/v1/districts/atlantis")
    assert status == 404 and "harbour" in missing["valid"]

    _, _, devices = get(city, contract, "/api/v1/devices", district="harbour")
    assert {d["device_id"] for d in devices["items"]} == {
        "pm25-harbour-0", "pm25-harbour-1", "noise-harbour-0"}
    _, _, vitals = get(city, contract, "/api/v1/vitals", kind="pm25")
    assert {(v["district"], v["mean"]) for v in vitals["items"]} == {
        ("old-town", 23.0), ("harbour", 53.0)}
    _, _, indicators = get(city, contract, "/api/v1/indicators", indicator="aqi")
    assert len(indicators["items"]) == 2
    for resolution, count in (("raw", 120 * 2), ("minute", 120), ("hour", 2)):
        _, _, series = get(city, contract, "/api/v1/history/readings", kind="pm25",
                           district="old-town", resolution=resolution, limit=1000,
                           **{"from": "2026-12-07T10:00:00Z", "to": "2026-12-07T12:00:00Z"})
        assert len(series["items"]) == count, resolution
    _, _, hourly = get(city, contract, "/api/v1/history/indicators", indicator="aqi",
                       district="harbour", resolution="hour", **{"from": "150m"})
    # values at 10:10 ... 11:50 (12:00 is not before "to"); from 09:30 starts at 09:00's bucket
    assert [(p["ts"], p["count"]) for p in hourly["items"]] == [
        ("2026-12-07T10:00:00.000Z", 5), ("2026-12-07T11:00:00.000Z", 6)]
    _, _, alerts = get(city, contract, "/api/v1/alerts")
    assert [a["id"] for a in alerts["items"]] == ["a-1", "a-2", "a-3"]
    _, _, incidents = get(city, contract, "/api/v1/incidents")
    assert [i["id"] for i in incidents["items"]] == [INCIDENT]
    _, _, incident = get(city, contract, "/api/v1/incidents/{incident_id}",
                         f"/api/v1/incidents/{INCIDENT}")
    assert incident["state"] == "open"
    _, _, events = get(city, contract, "/api/v1/incidents/{incident_id}/events",
                       f"/api/v1/incidents/{INCIDENT}/events")
    assert [e["action"] for e in events["items"]] == ["open", "comment"]
    template = "/api/v1/incidents/{incident_id}/devices"
    _, _, near = get(city, contract, template, f"/api/v1/incidents/{INCIDENT}/devices")
    assert [d["device_id"] for d in near["items"]] == ["pm25-harbour-0"]  # 100 m, not 400 m
    _, _, wider = get(city, contract, template, f"/api/v1/incidents/{INCIDENT}/devices",
                      radius="0.5km")
    assert [d["device_id"] for d in wider["items"]] == ["pm25-harbour-0", "pm25-harbour-1"]
    status, _, error = get(city, contract, template, f"/api/v1/incidents/{INCIDENT}/devices",
                           radius="5 miles")
    assert status == 400 and error["parameter"] == "radius" and "2km" in error["detail"]
    status, _, _ = get(city, contract, template, "/api/v1/incidents/inc-none/devices")
    assert status == 404
    at = f"{HARBOUR[0]},{HARBOUR[1]}"
    _, _, alerts = get(city, contract, "/api/v1/alerts", near=at, radius="1km")
    assert [a["id"] for a in alerts["items"]] == ["a-1"]
    _, _, incidents = get(city, contract, "/api/v1/incidents", within="harbour")
    assert [i["id"] for i in incidents["items"]] == [INCIDENT]
    _, _, incidents = get(city, contract, "/api/v1/incidents", within="old-town")
    assert incidents["items"] == []
    _, _, devices = get(city, contract, "/api/v1/devices", bbox="48.13,11.64,48.15,11.657")
    assert [d["device_id"] for d in devices["items"]] == ["pm25-harbour-0"]
    _, _, raw = get(city, contract, "/api/v1/history/readings", kind="pm25", near=at,
                    radius="150m", limit=1000, **{"from": "2026-12-07T10:00:00Z"})
    assert {r["device_id"] for r in raw["items"]} == {"pm25-harbour-0"}
    assert len(raw["items"]) == 120
    status, _, error = get(city, contract, "/api/v1/history/readings", kind="pm25", near=at,
                           radius="150m", resolution="hour")
    assert status == 400 and error["parameter"] == "resolution" and error["valid"] == ["raw"]
    status, _, error = get(city, contract, "/api/v1/alerts", within="atlantis")
    assert status == 400 and error["parameter"] == "within" and "harbour" in error["valid"]
    status, _, error = get(city, contract, "/api/v1/alerts", near=at)
    assert status == 400 and error["parameter"] == "near" and "radius" in error["detail"]
    status, _, error = get(city, contract, "/api/v1/incidents", who="viewer", within="harbour")
    assert status == 403 and "sees no positions" in error["detail"]  # they would leak
    status, _, _ = get(city, contract, "/api/v1/history/readings", who="viewer", kind="pm25",
                       near=at, radius="150m")
    assert status == 403
    _, _, kpis = get(city, contract, "/api/v1/kpis")
    assert {k["department"] for k in kpis["items"]} >= {"environment-bureau"}

    ngsi_entity = "urn:ngsi-ld:AirQualityObserved:harbour"
    get(city, contract, "/ngsi-ld/v1/context.jsonld", who=None)
    get(city, contract, "/ngsi-ld/v1/types")
    _, _, found = get(city, contract, "/ngsi-ld/v1/entities", type="AirQualityObserved")
    assert [e["id"] for e in found] == [ngsi_entity, "urn:ngsi-ld:AirQualityObserved:old-town"]
    get(city, contract, "/ngsi-ld/v1/entities/{entity_id}",
        f"/ngsi-ld/v1/entities/{quote(ngsi_entity)}")
    get(city, contract, "/ngsi-ld/v1/temporal/entities", type="NoiseLevelObserved")
    get(city, contract, "/ngsi-ld/v1/temporal/entities/{entity_id}",
        f"/ngsi-ld/v1/temporal/entities/{quote(ngsi_entity)}")

    # the dashboard's own routes, as before
    get(city, contract, "/config.json", who=None)
    _, _, series = get(city, contract, "/api/history", district="harbour", name="pm25")
    assert series["resolution"] == "raw" and len(series["points"]) == 2 * 60
    get(city, contract, "/api/whoami")
    _, _, listed = get(city, contract, "/api/incidents")
    assert [i["id"] for i in listed["incidents"]] == [INCIDENT]
    get(city, contract, "/api/incidents/{incident_id}", f"/api/incidents/{INCIDENT}")
    get(city, contract, "/api/kpi")
    _, _, geo = get(city, contract, "/api/geo/districts")
    assert {f["properties"]["id"] for f in geo["features"]} >= {"old-town", "harbour"}
    get(city, contract, "/api/devices")
    _, _, cap = get(city, contract, "/api/incidents/{incident_id}/cap",
                    f"/api/incidents/{INCIDENT}/cap")
    assert "urn:oasis:names:tc:emergency:cap:1.2" in cap["xml"]
    status, _, _ = get(city, contract, "/api/suppressions")
    assert status == 503   # the windows live in the flow, and this server sends no commands
    for path in ("/api/suppressions", "/api/suppressions/w-1/end"):
        status, headers, body = fetch(city.url, path, token=token("operator"), method="POST",
                                      body=b'{"districts": ["harbour"], "until": "2h"}')
        assert status in (404, 422, 503), (path, status, body)
        contract.check("/api/suppressions/{window_id}/end" if path.endswith("/end")
                       else "/api/suppressions", status, headers, body, method="post")
    status, headers, body = fetch(city.url, "/api/reports", token=token("operator"),
                                  method="POST", body=b'{"kind": "pm25", "text": "smoke"}')
    assert status == 404   # this server takes no reports (no producer)
    contract.check("/api/reports", status, headers, body, method="post")
    template = "/api/incidents/{incident_id}/actions"
    status, headers, body = fetch(city.url, f"/api/incidents/{INCIDENT}/actions",
                                  token=token("operator"), method="POST",
                                  body=b'{"action": "acknowledge"}')
    assert status == 503   # this server sends no commands
    contract.check(template, status, headers, body, method="post")

    # HEAD: the headers of GET, no body
    status, headers, body = fetch(city.url, "/api/v1/alerts", token=token("operator"),
                                  method="HEAD")
    assert (status, body) == (200, b"") and int(headers["content-length"]) > 100

    # the error answers are documented too
    status, _, error = get(city, contract, "/api/v1/history/readings", kind="pm25",
                           resolution="week")
    assert status == 400 and error["parameter"] == "resolution"
    assert error["valid"] == ["raw", "minute", "hour", "day"]
    status, _, error = get(city, contract, "/api/v1/alerts", accept="application/xml")
    assert status == 406 and "text/csv" in error["valid"]
    status, _, error = get(city, contract, "/ngsi-ld/v1/entities", q="pm25>>3")
    assert status == 400 and error["type"].endswith("InvalidRequest")

    assert contract.checked == set(routes), set(routes) - contract.checked


def test_pages_are_complete_in_json_and_csv_and_cursors_stay_with_their_route(
    city: SimpleNamespace,
) -> None:
    who = token("operator")
    path = ("/api/v1/history/readings?kind=pm25&resolution=raw&limit=7"
            "&from=2026-12-07T10:00:00Z&to=2026-12-07T10:30:00Z")
    seen, url = [], path
    while url:
        status, _, body = fetch(city.url, url, token=who)
        assert status == 200, body
        page = orjson.loads(body)
        assert len(page["items"]) <= 7
        seen += [(p["ts"], p["device_id"]) for p in page["items"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 30 * 4   # 2 districts x 2 devices a minute
    assert seen == sorted(seen)

    rows, url = [], path + "&format=csv"
    while url:
        status, headers, body = fetch(city.url, url, token=who)
        assert headers["content-type"].startswith("text/csv")
        rows += list(csv.DictReader(io.StringIO(body.decode())))
        link = headers.get("link")
        url = link[1:link.index(">")] if link else None
    assert [(r["ts"], r["device_id"]) for r in rows] == seen
    assert (rows[0]["device_id"], float(rows[0]["value"])) == ("pm25-harbour-0", 40.0)

    devices, url = [], "/api/v1/devices?limit=4"
    while url:
        page = orjson.loads(fetch(city.url, url, token=who)[2])
        devices += [(d["device_id"], d["last_seen"]) for d in page["items"]]
        url = page["next"]
    assert devices == [(f"{kind}-{district}-{n}", "2026-12-07T11:59:00.000Z")
                       for kind, n_max in (("noise", 1), ("pm25", 2))
                       for district in ("harbour", "old-town") for n in range(n_max)]

    status, _, body = fetch(city.url, "/api/v1/alerts?limit=2&format=csv",
                            token=who, accept="application/json")
    assert status == 200 and body.decode().startswith("id,district,kind,severity,ts")
    status, _, body = fetch(city.url, "/api/v1/alerts?limit=1", token=who, accept="text/csv")
    assert status == 200 and body.count(b"\r\n") == 2

    first = orjson.loads(fetch(city.url, "/api/v1/alerts?limit=1", token=who)[2])
    status, _, body = fetch(city.url, f"/api/v1/incidents?cursor={first['next_cursor']}",
                            token=who)
    assert status == 400 and orjson.loads(body)["parameter"] == "cursor"
    status, _, body = fetch(city.url, "/api/v1/alerts?from=yesterday", token=who)
    assert status == 400 and orjson.loads(body)["parameter"] == "from"
    status, _, body = fetch(city.url, "/api/v1/alerts?severity=bad", token=who)
    assert orjson.loads(body)["valid"] == ["warning", "critical", "emergency"]
    status, _, body = fetch(city.url, "/api/v1/alerts?limit=0", token=who)
    assert status == 400 and orjson.loads(body)["parameter"] == "limit"


def test_each_role_sees_what_the_dashboard_api_shows_it(city: SimpleNamespace) -> None:
    viewer, env, police = token("viewer"), token("dispatcher", "environment-bureau"), token(
        "dispatcher", "traffic-police")
    for path in ("/api/v1/devices", "/api/v1/alerts", "/api/v1/kpis"):
        status, _, body = fetch(city.url, path, token=viewer)
        assert status == 403, (path, body)
    # without a token on a server that checks them: an anonymous viewer
    assert fetch(city.url, "/api/v1/alerts")[0] == 403
    assert fetch(city.url, "/api/v1/alerts", token="not-a-token")[0] == 401

    raw = orjson.loads(fetch(city.url, "/api/v1/history/readings?kind=pm25&resolution=raw"
                             "&limit=3", token=viewer)[2])["items"]
    assert raw and all("device_id" not in p for p in raw)
    events = orjson.loads(fetch(city.url, f"/api/v1/incidents/{INCIDENT}/events",
                                token=viewer)[2])["items"]
    assert [e["action"] for e in events] == ["open", "comment"]
    assert "Smith" not in orjson.dumps(events).decode()
    assert "actor" not in events[1]

    mine = orjson.loads(fetch(city.url, "/api/v1/alerts", token=env)[2])["items"]
    assert [a["id"] for a in mine] == ["a-1", "a-2"]      # pm25 and noise: environment's
    assert orjson.loads(fetch(city.url, "/api/v1/alerts", token=police)[2])["items"] == []
    assert orjson.loads(fetch(city.url, "/api/v1/incidents", token=police)[2])["items"] == []
    assert fetch(city.url, f"/api/v1/incidents/{INCIDENT}", token=police)[0] == 404
    comment = orjson.loads(fetch(city.url, f"/api/v1/incidents/{INCIDENT}/events",
                                 token=env)[2])["items"][1]
    assert "Smith" in comment["comment"]


def test_the_dashboard_routes_still_answer(city: SimpleNamespace) -> None:
    status, _, body = fetch(city.url, "/api/incidents", token=token("operator"))
    assert status == 200 and [i["id"] for i in orjson.loads(body)["incidents"]] == [INCIDENT]
    status, _, body = fetch(city.url, "/api/v1/nothing-here", token=token("operator"))
    assert status == 404


def test_where_a_token_is_required_both_apis_refuse_callers_without_one(
    base_settings: Settings, database_url: str,
) -> None:
    required = base_settings.model_copy(update={
        "auth": base_settings.auth.model_copy(update={"required": True})})
    with city_server(required, database_url) as city:
        for path in ("/api/v1/vitals", "/api/v1/districts",
                     "/ngsi-ld/v1/entities?type=AirQualityObserved"):
            status, _, body = fetch(city.url, path)
            assert status == 401, (path, body)
            assert fetch(city.url, path, token=token("viewer"))[0] == 200, path
        # the documents describing the APIs stay public
        assert fetch(city.url, "/api/v1/openapi.json")[0] == 200
        assert fetch(city.url, "/ngsi-ld/v1/context.jsonld")[0] == 200
