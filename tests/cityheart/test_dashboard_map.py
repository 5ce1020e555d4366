"""The overview's map in a real browser (Debian's chromium through playwright): the districts'
boundaries from /api/geo/districts drawn by the packaged Leaflet with no tile server, device
markers that change colour with the device's state, and incidents where they happened.

The real push feed reads the test's own Kafka topics on the session's Tansu; the test produces
device-health indicator records and the incident events the flow's grouper makes, in the flow's
wire format, and looks at what the map shows.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.incidents import IncidentGrouper
from alerts.rules import Alert
from cityheart.dashboard import web_root
from connectors.web_server import DashboardSettings, WebServer
from flows.incidents import IncidentOutputs
from models.timefmt import iso
from settings.config import Settings
from tests.support.browser import WALL, chromium
from tests.support.browser import Screen as BrowserScreen
from tests.support.feed import FeedThread, produce
from tests.support.kafka import produce as produce_records

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

LIVE = "() => document.querySelector('#conn')?.dataset.state === 'live'"
READY = "() => document.querySelector('.live-map')?.dataset.ready === 'true'"
DEVICE = "pm25-harbour-001"
AT = (48.1412, 11.6531)   # (lat, lon) inside Harbour, off its centroid


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def feed(settings: Settings) -> Iterator[FeedThread]:
    with FeedThread(settings, heartbeat_s=1.0) as thread:
        yield thread


def recent_values(district: str, name: str, source: str, since: float, until: float) -> dict:
    """/api/history's raw readings of ``district``'s ``name``: this device's and another's."""
    now = time.time()
    points = [{"ts": iso(now - 60 * n), "value": 40.0 + n, "min": 40.0 + n, "max": 40.0 + n,
               "count": 1, "device_id": device}
              for n in range(1, 4) for device in (DEVICE, "pm25-harbour-002")]
    return {"district": district, "name": name, "source": source, "resolution": "raw",
            "points": points}


def web_server(settings: Settings) -> WebServer:
    devices = [{"id": DEVICE, "district": "harbour", "kind": "pm25", "lat": AT[0], "lon": AT[1]},
               {"id": "noise-old-town-001", "district": "old-town", "kind": "noise"}]
    return WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                     devices=lambda: devices, history=recent_values)


def device_health(district: str, end: float, *, silent: list[str]) -> tuple[str, bytes, bytes]:
    """A district's ``device_health`` indicator record, its pm25 component naming ``silent``
    (else DEVICE is ok)."""
    component = {"kind": "pm25", "expected": 1, "reporting": 1 - len(silent),
                 "usable": 1 - len(silent), "share": 0.0 if silent else 1.0, "min_share": 0.6,
                 "confident": not silent, "silent": silent, "stuck": [], "out_of_range": [],
                 "ok": [] if silent else [DEVICE]}
    record = {
        "record": "indicator", "district": district, "indicator": "device_health",
        "kind": "device_health", "value": component["share"], "unit": "share",
        "level": "poor" if silent else "ok", "score": 100.0 * component["share"],
        "window_start": iso(end - 10), "window_end": iso(end), "inputs": 1,
        "coverage": component["share"], "confident": not silent, "components": [component],
        "details": {}, "emitted_at": iso(end + 0.5),
    }
    return "vitals", f"{district}/indicator:device_health".encode(), orjson.dumps(record)


class Screen(BrowserScreen):
    def __init__(self, browser: Any, url: str) -> None:
        super().__init__(browser, WALL)
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(url)

    def colour(self, selector: str) -> str:
        return str(self.page.eval_on_selector(selector, "e => getComputedStyle(e).backgroundColor"))


def test_the_map_draws_the_districts_boundaries_with_pan_and_zoom_and_nothing_from_outside(
    settings: Settings, feed: FeedThread, browser: Any, tmp_path: Path
) -> None:
    with web_server(settings) as web:
        with urllib.request.urlopen(web.url + "api/geo/districts") as response:
            geojson = orjson.loads(response.read())
            assert response.headers["Content-Type"].startswith("application/geo+json")
        assert [f["properties"]["id"] for f in geojson["features"]] == settings.district_ids()
        harbour = geojson["features"][settings.district_ids().index("harbour")]
        assert harbour["geometry"]["type"] == "Polygon"
        assert harbour["geometry"]["coordinates"][0][0] == list(settings.districts[3].polygon[0])

        screen = Screen(browser, web.url)
        screen.wait(LIVE)
        screen.wait(READY)
        shapes = screen.page.eval_on_selector_all(
            ".live-map path.district-shape", "paths => paths.map(p => p.dataset.district)")
        assert shapes == settings.district_ids()
        names = screen.page.eval_on_selector_all(
            ".live-map .district-label .district-name", "t => t.map(e => e.textContent)")
        assert names == [d.name for d in settings.districts]
        # the city fills the map: Harbour (east edge) and another district are both in view
        box = screen.page.eval_on_selector(".live-map", "e => e.getBoundingClientRect().toJSON()")
        for district in ("harbour", settings.district_ids()[0]):
            shape = screen.page.eval_on_selector(
                f"path[data-district='{district}']", "e => e.getBoundingClientRect().toJSON()")
            assert box["left"] <= shape["left"] and shape["right"] <= box["right"] + 1
            assert shape["width"] > 20
        before = screen.page.eval_on_selector("path[data-district='harbour']",
                                              "e => e.getBoundingClientRect().width")
        screen.page.click(".leaflet-control-zoom-in")
        screen.wait("w => document.querySelector(\"path[data-district='harbour']\")"
                    ".getBoundingClientRect().width > 1.5 * w", before)
        screen.shot(tmp_path / "map-boundaries.png")
        assert [u for u in screen.requests
                if not u.startswith((web.url, settings.feed.url))] == []
        screen.close()


def test_a_device_marker_changes_colour_when_the_device_goes_silent(
    settings: Settings, feed: FeedThread, browser: Any, tmp_path: Path
) -> None:
    end = time.time() // 10 * 10
    with web_server(settings) as web:
        screen = Screen(browser, web.url)
        screen.wait(LIVE)
        screen.wait(READY)
        produce(settings, [device_health("harbour", end - 10, silent=[])])
        dot = f".device-dot[data-device='{DEVICE}']"
        screen.wait("s => document.querySelector(s)?.dataset.state === 'ok'", dot)
        assert screen.page.get_attribute(dot, "data-located") == "true"
        ok_colour = screen.colour(dot)
        # a device without a position yet sits at its district's centroid
        unplaced = ".device-dot[data-device='noise-old-town-001']"
        screen.wait("s => document.querySelector(s)", unplaced)
        assert screen.page.get_attribute(unplaced, "data-located") == "false"

        # it sits where the registry places it
        where = screen.page.evaluate(
            """([id, lat, lon]) => {
                 const map = cityheart.router.view.map;
                 const p = map.map.latLngToContainerPoint([lat, lon]);
                 const box = map.el.getBoundingClientRect();
                 const dot = document.querySelector(`.device-dot[data-device='${id}']`)
                   .getBoundingClientRect();
                 return [box.left + p.x - (dot.left + dot.width / 2),
                         box.top + p.y - (dot.top + dot.height / 2)];
               }""", [DEVICE, *AT])
        assert abs(where[0]) <= 2 and abs(where[1]) <= 2, where

        produce(settings, [device_health("harbour", end, silent=[DEVICE])])
        screen.wait("s => document.querySelector(s)?.dataset.state === 'silent'", dot)
        assert screen.colour(dot) != ok_colour

        # selecting it shows its recent values, not the other device's
        screen.page.click(dot)
        screen.wait_text(".device-popup .device-values", "41")
        values = screen.page.eval_on_selector_all(".device-popup .device-values li",
                                                  "items => items.map(i => i.textContent)")
        assert len(values) == 3 and all("µg/m³" in v for v in values), values
        assert screen.page.inner_text(".device-popup .device-state") == "SILENT"
        screen.shot(tmp_path / "map-silent.png")

        # zoomed out, the devices cluster, and the cluster takes the silent one's colour
        screen.page.evaluate("() => cityheart.router.view.map.map.setZoom(6, {animate: false})")
        screen.wait("() => document.querySelector('.device-cluster')?.textContent === '2'")
        assert screen.page.get_attribute(".device-cluster", "data-state") == "silent"
        screen.close()


def test_an_incident_appears_where_it_happened(
    settings: Settings, feed: FeedThread, browser: Any, tmp_path: Path
) -> None:
    grouper, outputs = IncidentGrouper(settings.incidents), IncidentOutputs(settings.kafka.topics)
    state = grouper.new_state()
    now = time.time()
    alert = Alert.new(rule="pm25.threshold", district="harbour", kind="pm25",
                      severity="critical", value=180.0, threshold=150.5, direction="above",
                      stat="mean", unit="ug/m3", window_start=now - 20, window_end=now - 10,
                      ts=now - 11, message="pm25 critical in harbour", lat=AT[0], lon=AT[1])
    grouped = grouper.add(state, alert)
    assert grouped.incident is not None
    records = [r for e in grouped.events for r in outputs.event_records(e, grouped.incident)
               if r.topic is None]
    with web_server(settings) as web:
        screen = Screen(browser, web.url)
        screen.wait(LIVE)
        screen.wait(READY)
        produce_records(settings.kafka.bootstrap, records, topic=settings.kafka.topics.incidents)
        pin = f".incident-pin[data-incident='{grouped.incident.id}']"
        screen.wait("s => document.querySelector(s)", pin)
        assert screen.page.get_attribute(pin, "data-located") == "true"
        assert [float(screen.page.get_attribute(pin, f"data-{axis}") or "nan")
                for axis in ("lat", "lon")] == pytest.approx(AT)
        # on screen: at the alert's place, inside Harbour's shape
        inside = screen.page.evaluate(
            """([sel, lat, lon]) => {
                 const map = cityheart.router.view.map;
                 const p = map.map.latLngToContainerPoint([lat, lon]);
                 const box = map.el.getBoundingClientRect();
                 const [x, y] = [box.left + p.x, box.top + p.y];
                 const harbour = document.querySelector("path[data-district='harbour']")
                   .getBoundingClientRect();
                 const icon = document.querySelector(sel).parentElement.getBoundingClientRect();
                 // the pin is a teardrop whose tip, 15.6 px below its centre, is the place
                 return {near: Math.hypot(icon.left + icon.width / 2 - x,
                                          icon.top + icon.height / 2 + 15.6 - y),
                         inHarbour: x > harbour.left && x < harbour.right
                                    && y > harbour.top && y < harbour.bottom};
               }""", [pin, *AT])
        assert inside["near"] <= 2 and inside["inHarbour"], inside
        assert screen.page.query_selector(".live-map path.incident-area") is not None
        screen.shot(tmp_path / "map-incident.png")
        # the pin opens the incident, which says where it is
        screen.page.click(pin)
        screen.wait_text(".fact[data-fact='place'] dd", f"{AT[0]:.5f}, {AT[1]:.5f} · within 0 m")
        assert screen.page.inner_text(".fact[data-fact='district'] dd") == "Harbour"
        screen.close()
