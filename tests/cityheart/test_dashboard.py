"""The command-centre web page in a real browser: Debian's chromium driven by playwright.

The real push feed (connectors.feed.server.FeedServer, in a thread) reads the test's own Kafka
topics on the session's Tansu; the test produces vital, indicator and alert records into them
in the flow's wire format, and looks at what the page shows. One test runs the whole pipeline
(bridge, flow, feed as child processes, the simulator's pollution episode) instead. Screenshots
of each screen are saved under the test's tmp dir; with CITYHEART_UPDATE_SCREENSHOT=1 the whole
pipeline's overview is also copied to docs/screenshot-overview.png (the README's picture).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cityheart.dashboard import web_root
from cityheart.runtime.servers import free_port
from cityheart.runtime.up import city_stack
from cityheart.simulate import run_simulator
from connectors.web_server import DashboardSettings, WebServer
from models.timefmt import iso
from settings.config import Settings
from settings.loader import load_mapping
from tests.support.browser import LAPTOP, WALL, chromium
from tests.support.browser import Screen as BrowserScreen
from tests.support.config import CONFIG
from tests.support.feed import FeedThread, produce
from tests.support.relay import CuttableRelay

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 10


# records in the flow's wire format


def window_ends(count: int) -> list[float]:
    """The ends of the last ``count`` closed 10 s windows, oldest first."""
    last = math.floor(time.time() / WINDOW_S) * WINDOW_S
    return [last - WINDOW_S * (count - 1 - n) for n in range(count)]


def vital(settings: Settings, district: str, kind: str, end: float, value: float,
          devices: int = 3) -> tuple[str, bytes, bytes]:
    record = {
        "district": district, "kind": kind, "unit": settings.kinds[kind].unit,
        "window_start": iso(end - WINDOW_S), "window_end": iso(end), "count": devices * 4,
        "mean": value, "min": value * 0.95, "max": value, "last": value,
        "devices": devices, "late": 0, "emitted_at": iso(end + 0.5),
    }
    return "vitals", f"{district}/{kind}".encode(), orjson.dumps(record)


def indicator(district: str, name: str, end: float, value: float, level: str,
              score: float, unit: str = "", **details: Any) -> tuple[str, bytes, bytes]:
    record = {
        "record": "indicator", "district": district, "indicator": name, "kind": name,
        "value": value, "unit": unit, "level": level, "score": score,
        "window_start": iso(end - WINDOW_S), "window_end": iso(end), "inputs": 12,
        "coverage": None, "confident": True, "components": [], "details": details,
        "emitted_at": iso(end + 0.5),
    }
    return "vitals", f"{district}/indicator:{name}".encode(), orjson.dumps(record)


def alert(alert_id: str, district: str, kind: str, end: float, value: float,
          severity: str = "critical", threshold: float = 150.5) -> tuple[str, bytes, bytes]:
    record = {
        "id": alert_id, "rule": f"{kind}.threshold", "district": district, "kind": kind,
        "severity": severity, "value": value, "threshold": threshold, "direction": "above",
        "stat": "mean", "unit": "ug/m3", "window_start": iso(end - WINDOW_S),
        "window_end": iso(end), "ts": iso(end - 1), "emitted_at": iso(end),
        "message": f"{kind} {severity} in {district}: mean {value} >= {threshold}",
    }
    return "alerts", alert_id.encode(), orjson.dumps(record)


def city_history(settings: Settings, ends: list[float],
                 special: Callable[[str, str, int], float | None] = lambda d, k, n: None
                 ) -> list[tuple[str, bytes, bytes]]:
    """Every district and kind for each window: the simulator's base with a gentle wave."""
    records = []
    for n, end in enumerate(ends):
        for d_index, district in enumerate(settings.district_ids()):
            for kind_id, kind in settings.kinds.items():
                sim = kind.simulation
                value = special(district, kind_id, n)
                if value is None:
                    wave = math.sin(n / 2.0 + d_index) * (abs(sim.amplitude) * 0.3 + sim.noise_sd)
                    value = round(max(kind.range[0], sim.base + wave), 3)
                records.append(vital(settings, district, kind_id, end, value))
    return records


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium (never a downloaded build) through playwright."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def feed(settings: Settings) -> Iterator[FeedThread]:
    thread = FeedThread(settings, heartbeat_s=1.0)
    with thread:  # stops it at the end unless the test left it stopped
        yield thread


def web_server(settings: Settings, **options: Any) -> WebServer:
    return WebServer(settings, DashboardSettings(port=0, **options), static_dir=web_root())


class Screen(BrowserScreen):
    """One browser page on the dashboard, with what it requested and any script errors."""

    def __init__(self, browser: Any, url: str, viewport: dict[str, int]) -> None:
        super().__init__(browser, viewport)
        self.requests: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("websocket", self._watch_socket)
        self.page.goto(url)

    def _watch_socket(self, ws: Any) -> None:
        ws.on("framesent", lambda payload: self.sent.append(orjson.loads(payload)))

    def state(self) -> str:
        return str(self.page.get_attribute("#conn", "data-state"))

    def alert_ids(self, selector: str = ".ticker") -> list[str]:
        return list(self.page.eval_on_selector_all(
            f"{selector} [data-alert-id]", "rows => rows.map(r => r.dataset.alertId)"))



LIVE = "() => document.querySelector('#conn')?.dataset.state === 'live'"
LEVEL = ("([id, level]) => document.querySelector(`[data-label='${id}']`)"
         "?.dataset.level === level")


def test_config_json_describes_the_city_and_only_the_web_folder_is_served(
    settings: Settings,
) -> None:
    with web_server(settings) as web:
        with urllib.request.urlopen(web.url + "config.json") as response:
            config = orjson.loads(response.read())
            assert response.headers["Content-Type"].startswith("application/json")
        with urllib.request.urlopen(web.url) as response:
            page = response.read().decode()
            policy = response.headers["Content-Security-Policy"]
        with urllib.request.urlopen(web.url + "js/main.js") as response:
            assert response.headers["Content-Type"].startswith("text/javascript")
        for path in ("../pyproject.toml", "%2e%2e/%2e%2e/config.yaml", "nothing.js"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(web.url + path)
            assert refused.value.code == 404, path
    assert config["city"]["name"] == settings.city.name
    assert [d["id"] for d in config["districts"]] == settings.district_ids()
    harbour = next(d for d in config["districts"] if d["id"] == "harbour")
    assert harbour["polygon"][0] == list(settings.districts[3].polygon[0])
    assert config["kinds"]["traffic_speed"]["thresholds"] == {
        "direction": "below", "stat": "mean", "warning": 15.0, "critical": 8.0}
    assert config["feed"]["url"] == settings.feed.url
    assert 'type="module"' in page and "default-src 'self'" in policy


def test_overview_shows_every_district_live_values_and_alerts_within_seconds(
    settings: Settings, feed: FeedThread, browser: Any, tmp_path: Path
) -> None:
    with web_server(settings) as web:
        screen = Screen(browser, web.url, WALL)
        screen.wait(LIVE)
        screen.wait("() => document.querySelector('.live-map')?.dataset.ready === 'true'")
        shapes = screen.page.eval_on_selector_all(
            ".live-map path.district-shape",
            "paths => paths.map(p => [p.id, p.dataset.district, p.dataset.name])")
        assert shapes == [[f"district-{d.id}", d.id, d.name] for d in settings.districts]
        names = screen.page.eval_on_selector_all(".live-map .district-name",
                                                 "t => t.map(e => e.textContent)")
        assert names == [d.name for d in settings.districts]

        # twelve windows arrive live: harbour's PM2.5 climbs past critical, riverside is loud
        ends = window_ends(12)

        def special(district: str, kind: str, n: int) -> float | None:
            if (district, kind) == ("harbour", "pm25"):
                return 20.0 + 14.0 * n  # 174 in the last window: critical (>= 150.5)
            if (district, kind) == ("riverside", "noise"):
                return 70.0 + n * 0.5  # 75.5 in the last: warning (>= 75)
            if (district, kind) == ("north-hills", "traffic_speed"):
                return 40.0 - 3.0 * n  # 7 km/h in the last: critical (<= 8, direction below)
            return None

        produce(settings, city_history(settings, ends, special))
        screen.wait(LEVEL, ["harbour", "critical"])
        screen.wait(LEVEL, ["riverside", "warning"])
        screen.wait(LEVEL, ["north-hills", "critical"])
        screen.wait_text("[data-label='north-hills'] .district-worst", "Traffic speed 7.00")
        assert screen.page.get_attribute("[data-label='harbour']", "data-worst") == "pm25"
        screen.wait_text("[data-label='harbour'] .district-worst", "PM2.5 174")
        for district in ("old-town", "university", "airport-west"):
            assert screen.page.get_attribute(f"[data-label='{district}']", "data-level") == "ok"
        screen.wait("() => document.querySelector('.tile[data-key=\"v:pm25\"] svg')"
                    "?.dataset.points === '12'")

        # a vital produced now changes what the map says
        produce(settings, [vital(settings, "old-town", "noise", ends[-1] + WINDOW_S, 82.4)])
        screen.wait_text("[data-label='old-town'] .district-worst", "Noise 82.4 dBA")
        assert screen.page.get_attribute("[data-label='old-town']", "data-level") == "warning"

        # an alert reaches the ticker within seconds
        produced = time.monotonic()
        produce(settings, [alert("a-harbour-pm25", "harbour", "pm25", ends[-1], 174.0)])
        screen.wait("() => document.querySelector('.ticker [data-alert-id=\"a-harbour-pm25\"]')",
                    timeout_s=5)
        assert time.monotonic() - produced < 5
        row = screen.page.inner_text(".ticker [data-alert-id='a-harbour-pm25']")
        assert "Harbour" in row and "pm25 critical in harbour" in row
        assert screen.page.get_attribute(".ticker [data-alert-id='a-harbour-pm25']",
                                         "data-open") == "true"
        screen.shot(tmp_path / "overview-1080p.png")

        # nothing came from anywhere but this server and the feed (usable offline)
        feed_url = settings.feed.url
        assert [u for u in screen.requests if not u.startswith((web.url, feed_url))] == []
        screen.close()

        laptop = Screen(browser, web.url, LAPTOP)
        laptop.wait(LIVE)
        laptop.wait(LEVEL, ["harbour", "critical"])
        overflow = laptop.page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, "the overview is wider than a laptop screen"
        laptop.shot(tmp_path / "overview-laptop.png")
        laptop.close()


def test_colour_and_label_agree_and_city_tiles_name_the_worst_district_beside_the_mean(
    settings: Settings, feed: FeedThread, browser: Any, tmp_path: Path
) -> None:
    ends = window_ends(3)
    # Industrial East: PM2.5 250 ug/m3 (critical) while its health score still reads good;
    # the city's AQI, a mean over districts, is Excellent while Industrial East's is 300.
    records = city_history(settings, ends, lambda d, k, n: 250.0 if (d, k) == (
        "industrial-east", "pm25") else None)
    for end in ends:
        records += [
            indicator("industrial-east", "score", end, 80.5, "good", 80.5, "score"),
            indicator("industrial-east", "aqi", end, 300.0, "Heavily polluted", 40.0, "AQI",
                      level_number=5),
            indicator("harbour", "aqi", end, 30.0, "Excellent", 94.0, "AQI", level_number=1),
            indicator("city", "aqi", end, 45.0, "Excellent", 91.0, "AQI", level_number=1),
        ]
    with web_server(settings) as web:
        screen = Screen(browser, web.url, WALL)
        screen.wait(LIVE)
        produce(settings, records)
        screen.wait(LEVEL, ["industrial-east", "critical"])
        # the score comes in its own record: wait for the label that holds both
        screen.wait_text("[data-label='industrial-east'] .district-state",
                         "Critical · score 80.5")
        label = screen.page.text_content("[data-label='industrial-east'] .district-state")
        assert label == "Critical · score 80.5"
        pm25 = ".tile[data-key='v:pm25'] .tile-worst"
        screen.wait_text(pm25, "worst Industrial East 250 µg/m³ · critical")
        assert screen.page.get_attribute(pm25, "data-level") == "critical"
        aqi = ".tile[data-key='i:aqi']"
        screen.wait_text(f"{aqi} .tile-worst", "worst Industrial East 300 AQI · Heavily polluted")
        assert screen.page.inner_text(f"{aqi} .tile-level") == "Excellent"
        assert screen.page.get_attribute(aqi, "data-level") == "ok"
        assert screen.page.get_attribute(f"{aqi} .tile-worst", "data-level") == "critical"
        screen.shot(tmp_path / "overview-worst.png")
        screen.close()


def test_district_view_lists_every_kind_and_indicator_the_devices_and_open_alerts(
    settings: Settings, feed: FeedThread, browser: Any, tmp_path: Path
) -> None:
    ends = window_ends(8)
    records = city_history(settings, ends, lambda d, k, n: 3.6 + n * 0.1
                           if (d, k) == ("harbour", "water_level") else None)
    for n, end in enumerate(ends):
        for district in settings.district_ids():
            poor = district == "harbour"
            records += [
                indicator(district, "score", end, 40.0 - n if poor else 86.0, "poor" if poor
                          else "good", 40.0 - n if poor else 86.0),
                indicator(district, "traffic", end, 1.1, "free", 95.0, unit="TTI"),
                indicator(district, "water_level", end, 3.6 + n * 0.1 if poor else 1.5,
                          "warning" if poor else "normal", 50.0 if poor else 100.0, unit="m"),
            ]
        records.append(indicator("city", "score", end, 80.0 - n, "good", 80.0 - n))
    records.append(alert("a-harbour-water", "harbour", "water_level", ends[-1], 4.5,
                         threshold=3.5, severity="warning"))
    records.append(alert("a-old-town-pm25", "old-town", "pm25", ends[-1], 170.0))
    produce(settings, records)  # the page may open while the feed is still reading them
    with web_server(settings) as web:
        screen = Screen(browser, web.url, WALL)
        screen.wait(LIVE)
        # the health score colours the map: harbour is "poor" though no vital is critical
        screen.wait_text("[data-label='harbour'] .district-state", "33.0 · poor")
        assert screen.page.get_attribute("[data-label='harbour']", "data-level") == "warning"
        screen.wait("() => document.querySelector('.tile[data-key=\"i:score\"]')")
        screen.shot(tmp_path / "overview-with-indicators.png")

        screen.page.click("#district-harbour", position={"x": 12, "y": 12})
        screen.wait("() => location.hash === '#/district/harbour'")
        screen.wait("() => document.querySelectorAll('.cards .card').length === 15")
        screen.wait("() => document.querySelector('.card[data-key=\"v:water_level\"] svg')"
                    "?.dataset.points === '8'")
        screen.wait_text(".district-head", "Health 33.0")
        screen.wait("n => document.querySelector(\"[data-role='devices']\").dataset.count == n",
                    3 * len(settings.kinds))
        cards = screen.page.eval_on_selector_all(
            ".cards .card", "cs => cs.map(c => [c.dataset.key, c.dataset.level, "
            "c.querySelector('.num').textContent])")
        keys = [key for key, _, _ in cards]
        assert keys == ["i:score", "i:traffic", "i:water_level",
                        *(f"v:{kind}" for kind in settings.kinds)]
        assert all(value != "—" for _, _, value in cards), cards
        assert dict((k, lvl) for k, lvl, _ in cards)["v:water_level"] == "warning"
        assert screen.alert_ids(".district-alerts") == ["a-harbour-water"]
        screen.shot(tmp_path / "district-1080p.png")
        screen.page.set_viewport_size(LAPTOP)
        screen.shot(tmp_path / "district-laptop.png")

        # the water goes down in the next window: the alert is no longer open
        produce(settings, [vital(settings, "harbour", "water_level", ends[-1] + WINDOW_S, 2.1)])
        screen.wait("() => !document.querySelector('.district-alerts [data-alert-id]')")
        assert screen.page.get_attribute(".card[data-key='v:water_level']", "data-level") == "ok"
        screen.page.click("a.back")
        screen.wait("() => document.querySelector(\"[data-alert-id='a-harbour-water']\")"
                    "?.dataset.open === 'false'")
        assert "cleared" in screen.page.inner_text("[data-alert-id='a-harbour-water']").lower()
        screen.close()


def test_page_survives_a_feed_restart_and_catches_up_without_missing_or_doubling(
    settings: Settings, feed: FeedThread, browser: Any, tmp_path: Path
) -> None:
    ends = window_ends(3)
    produce(settings, [*city_history(settings, ends),
                       alert("a-before", "harbour", "pm25", ends[-1], 160.0)])
    with web_server(settings) as web:
        screen = Screen(browser, web.url, WALL)
        screen.wait(LIVE)
        screen.wait("() => document.querySelector('[data-alert-id=\"a-before\"]')")
        old_epoch = screen.page.evaluate("() => window.cityheart.feed.epoch")
        feed.stop()
        screen.wait("() => ['reconnecting', 'stale'].includes("
                    "document.querySelector('#conn').dataset.state)")
        screen.shot(tmp_path / "overview-reconnecting.png")
        later = ends[-1] + WINDOW_S
        produce(settings, [alert("a-while-down", "industrial-east", "pm25", later, 190.0),
                           vital(settings, "industrial-east", "pm25", later, 190.0)])
        sent_before = len(screen.sent)
        feed.start()  # a new epoch: the page takes a fresh snapshot and drops what it has
        screen.wait(LIVE, timeout_s=30)
        screen.wait("() => document.querySelector('[data-alert-id=\"a-while-down\"]')",
                    timeout_s=10)
        screen.wait(LEVEL, ["industrial-east", "critical"])
        assert sorted(screen.alert_ids()) == ["a-before", "a-while-down"]
        assert feed.server is not None
        new_epoch = screen.page.evaluate("() => window.cityheart.feed.epoch")
        assert new_epoch == feed.server.epoch != old_epoch
        resubscribed = [op for op in screen.sent[sent_before:] if op.get("op") == "subscribe"]
        assert resubscribed and resubscribed[0]["since"] is None, resubscribed
        screen.close()


def test_page_resumes_from_its_last_seq_after_a_dropped_connection(
    settings: Settings, feed: FeedThread, browser: Any, tmp_path: Path
) -> None:
    ends = window_ends(2)
    produce(settings, [*city_history(settings, ends),
                       alert("a-first", "harbour", "pm25", ends[-1], 160.0)])
    assert feed.server is not None
    with CuttableRelay(feed.server.port) as relay, \
            web_server(settings, feed_url=f"ws://127.0.0.1:{relay.port}/feed") as web:
        screen = Screen(browser, web.url, WALL)
        screen.wait(LIVE)
        screen.wait("() => document.querySelector('[data-alert-id=\"a-first\"]')")
        sent_before = len(screen.sent)
        relay.cut(refuse=True)
        screen.wait("() => document.querySelector('#conn').dataset.state !== 'live'")
        last_seq = screen.page.evaluate("() => window.cityheart.feed.lastSeq")
        later = ends[-1] + WINDOW_S
        produce(settings, [alert("a-missed", "north-hills", "noise", later, 95.0,
                                 threshold=90.0),
                           vital(settings, "north-hills", "noise", later, 95.0)])
        relay.reopen()
        screen.wait(LIVE, timeout_s=20)
        screen.wait("() => document.querySelector('[data-alert-id=\"a-missed\"]')",
                    timeout_s=10)
        screen.wait(LEVEL, ["north-hills", "critical"])
        assert sorted(screen.alert_ids()) == ["a-first", "a-missed"]
        resubscribed = [op for op in screen.sent[sent_before:] if op.get("op") == "subscribe"]
        assert [op["since"] for op in resubscribed] == [last_seq], (
            "the page did not resume from its last seq")
        assert isinstance(last_seq, int) and last_seq > 0
        screen.close()


def test_with_the_whole_pipeline_a_pollution_episode_shows_on_the_map_and_in_the_ticker(
    settings: Settings, browser: Any, tmp_path: Path
) -> None:
    data = settings.model_dump(mode="json", exclude={"database"})  # no storage here
    data["flow"].update(window_s=2.0, late_allowance_s=0.5)
    data["indicators"]["aqi"].update(periods_s={"1h": 4, "8h": 8, "24h": 8}, bucket_s=2)
    rule = {"id": "aqi-test", "indicator": "aqi", "direction": "above", "warning": 151,
            "critical": 201, "for_s": 4, "hysteresis": 10, "scope": "districts"}
    data["indicators"]["rules"] = [rule]
    fast = load_mapping(data, env={})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    with city_stack(fast, config_path=config, log_dir=tmp_path / "log",
                    components=("feed", "flow", "bridge")), web_server(fast) as web:
        stop = threading.Event()
        simulator = threading.Thread(
            target=run_simulator, args=(fast,),
            kwargs={"devices": 96, "rate": 200.0, "scenario": "pollution-episode",
                    "duration_s": 150, "stop": stop},
            daemon=True,
        )
        simulator.start()
        try:
            screen = Screen(browser, web.url, WALL)
            screen.wait(LIVE)
            every = "() => [...document.querySelectorAll('.district-label')]" \
                    ".every(g => g.dataset.level !== 'none')"
            screen.wait(every, timeout_s=60)
            before = screen.page.text_content(".tile[data-key='v:noise'] .num")
            screen.wait("before => document.querySelector(\".tile[data-key='v:noise'] .num\")"
                        ".textContent !== before", before, timeout_s=20)
            screen.wait("() => document.querySelector('.ticker [data-severity=\"critical\"]')",
                        timeout_s=120)
            row = screen.page.inner_text(".ticker [data-severity='critical']")
            assert "Industrial East" in row
            # the health score colours the district; its worst indicator is the air
            screen.wait("() => { const g = document.querySelector(\"[data-label="
                        "'industrial-east']\"); return ['watch', 'warning', 'critical']"
                        ".includes(g.dataset.level) && ['aqi', 'aqi_instant', 'pm25']"
                        ".includes(g.dataset.worst); }", timeout_s=20)
            screen.wait("() => document.querySelector('.tile[data-key=\"i:score\"]')")
            shot = screen.shot(tmp_path / "overview-pipeline.png")
            if os.environ.get("CITYHEART_UPDATE_SCREENSHOT") == "1":
                shutil.copyfile(shot, ROOT / "docs" / "screenshot-overview.png")
            fits = "() => document.documentElement.scrollHeight <= window.innerHeight"
            assert screen.page.evaluate(fits), "the overview does not fit a 1080p wall screen"
            # a corner of the district: its centre holds its devices and its incident
            screen.page.click("#district-industrial-east", position={"x": 12, "y": 12})
            screen.wait("() => document.querySelector('.district-alerts [data-alert-id]')")
            screen.shot(tmp_path / "district-pipeline.png")
            screen.close()
        finally:
            stop.set()
            simulator.join(20)


def test_dashboard_command_prints_its_url_and_stops_on_sigterm(
    base_settings: Settings, tmp_path: Path
) -> None:
    settings = base_settings
    config = CONFIG  # the test city, as base_settings
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cityheart", "dashboard", "--config", str(config),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line:
            process.wait(5)
            assert process.stderr is not None
            pytest.fail(f"dashboard printed nothing: {process.stderr.read()}")
        assert line == f"dashboard: http://127.0.0.1:{port}/"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config.json") as response:
            assert orjson.loads(response.read())["city"]["name"] == settings.city.name
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
