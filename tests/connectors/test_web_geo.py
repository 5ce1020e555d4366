"""What the dashboard's map is served: the districts as GeoJSON (whole multipolygons, holes
kept) and the devices, for operators and dispatchers only."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
from shapely.geometry import shape

from cityheart.dashboard import web_root
from connectors.tokens import Claims, issue_token, verify_token
from connectors.web_geo import districts_geojson
from connectors.web_server import DashboardSettings, WebServer
from settings.config import Settings
from settings.loader import load_mapping

SF = Path(__file__).resolve().parents[2] / "cityheart" / "data" / "geo" / "san-francisco.geojson"
SECRET = "map-secret-0123456789abcdef-0123456"
DEVICES = [{"id": "pm25-harbour-001", "district": "harbour", "kind": "pm25",
            "lat": 48.1412, "lon": 11.6531}]


def san_francisco() -> Settings:
    kinds = {"pm25": {"name": "PM2.5", "unit": "ug/m3", "range": [0, 1000], "interval_s": 10,
                      "thresholds": {"direction": "above", "warning": 35, "critical": 75},
                      "simulation": {"base": 10}}}
    return load_mapping({"city": {"name": "San Francisco", "boundaries": {"file": str(SF)}},
                         "kinds": kinds}, env={})


def test_a_city_from_boundaries_is_served_whole_multipolygons_with_their_holes() -> None:
    settings = san_francisco()
    served = districts_geojson(settings)
    source = {f["properties"]["id"]: f for f in json.loads(SF.read_text())["features"]}
    assert [f["id"] for f in served["features"]] == settings.district_ids()
    assert len(served["features"]) == 37
    for feature in served["features"]:
        original = source[feature["id"]]
        assert feature["geometry"]["type"] == "MultiPolygon"
        assert feature["properties"]["name"] == original["properties"]["name"]
        # the same shape to 6 decimals (about 10 cm): every part and every hole
        served_shape, original_shape = shape(feature["geometry"]), shape(original["geometry"])
        assert len(served_shape.geoms) == len(original_shape.geoms)
        assert served_shape.symmetric_difference(original_shape).area < 1e-9
    north_beach = next(f for f in served["features"] if f["id"] == "north-beach")
    assert len(north_beach["geometry"]["coordinates"]) == 64          # parts
    assert max(len(p) for p in north_beach["geometry"]["coordinates"]) == 2   # one has a hole
    centroid = north_beach["properties"]["centroid"]
    assert shape(north_beach["geometry"]).contains(shape({"type": "Point",
                                                          "coordinates": centroid}))


def test_devices_are_for_operators_and_dispatchers_not_viewers(base_settings: Settings) -> None:
    def authenticate(token: str) -> Claims:
        return verify_token(token, secret=SECRET, now=time.time())

    def fetch(url: str, role: str | None) -> tuple[int, dict]:
        request = urllib.request.Request(url)
        if role is not None:
            token = issue_token(role=role, sub=f"{role}-1", secret=SECRET, now=time.time(),
                                ttl_s=600, department="operations" if role == "dispatcher"
                                else None)
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as refused:
            return refused.code, orjson.loads(refused.read())

    with WebServer(base_settings, DashboardSettings(port=0), static_dir=web_root(),
                   devices=lambda: DEVICES, authenticate=authenticate) as web:
        url = web.url + "api/devices"
        assert fetch(url, "operator") == (200, {"devices": DEVICES})
        assert fetch(url, "dispatcher") == (200, {"devices": DEVICES})
        for who in ("viewer", None):   # no token: an anonymous viewer where tokens are checked
            status, document = fetch(url, who)
            assert status == 403 and document["error"] == "forbidden", who
        status, document = fetch(web.url + "api/geo/districts", None)
        assert status == 200 and len(document["features"]) == len(base_settings.districts)


def test_without_a_registry_the_map_has_no_devices_to_place(base_settings: Settings) -> None:
    with WebServer(base_settings, DashboardSettings(port=0), static_dir=web_root()) as web:
        with urllib.request.urlopen(web.url + "api/devices") as response:
            assert orjson.loads(response.read()) == {"devices": []}
