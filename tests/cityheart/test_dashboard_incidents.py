"""The command-centre page's incident board, sign-in, KPIs and history sparklines in a real browser.

Debian's chromium driven by playwright; behind it the whole incident path: real Tansu, real
PostgreSQL, the flow and the recorder as child processes, the push feed (with tokens and role
masking) and the dashboard's server with the dispatch API in this process. People sign in with
tokens as ``cityheart token`` issues them. Screenshots of each screen are saved under the test's
tmp dir; with CITYHEART_UPDATE_SCREENSHOT=1 the incident board is also copied to
docs/screenshot-incidents.png (the README's picture).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from cityheart.dashboard import web_root
from cityheart.services.dispatch import DispatchService
from connectors.storage import Storage
from connectors.storage.rows import reading_row
from connectors.tokens import Claims, issue_token, verify_token
from connectors.web_server import DashboardSettings, WebServer
from models.readings import Reading
from settings.config import Settings
from tests.support.browser import LAPTOP, WALL, chromium
from tests.support.browser import Screen as BrowserScreen
from tests.support.dispatch import dispatch_stack, raise_pollution

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "dashboard-secret-0123456789abcdef"
DISPATCHER = "dispatcher-ana-7"  # a name that appears nowhere else on a page
COMMENT = "source: the cement works at gate 2"
TEAM = "env-patrol-3"
LIVE = "() => document.querySelector('#conn')?.dataset.state === 'live'"


def token(role: str, department: str | None = None, sub: str | None = None) -> str:
    return issue_token(role=role, department=department, sub=sub or f"{role}-1", secret=SECRET,
                       now=time.time(), ttl_s=3600)


def authenticate(text: str) -> Claims:
    return verify_token(text, secret=SECRET, now=time.time())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium (never a downloaded build) through playwright."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def stack(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """flow + recorder children; the feed with tokens and the dashboard with its API in-process."""
    with dispatch_stack(settings, database_url, tmp_path, authenticate=authenticate,
                        feed=True) as running:
        yield running


class Screen(BrowserScreen):
    """One browser page signed in with ``who`` (None: no token), with the frames it received."""

    wait_s = 20.0

    def __init__(self, browser: Any, url: str, who: str | None, viewport: dict[str, int],
                 hash_: str = "") -> None:
        super().__init__(browser, viewport)
        self.frames: list[str] = []
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        if who is not None:
            self.page.add_init_script(
                f"sessionStorage.setItem('cityheart.token', {orjson.dumps(who).decode()})")
        self.page.goto(url + hash_)

    def _frame(self, payload: str | bytes) -> None:
        self.frames.append(payload if isinstance(payload, str) else payload.decode())

    def go(self, hash_: str) -> None:
        self.page.evaluate("h => { location.hash = h; }", hash_)

    def card(self, incident_id: str, state: str) -> str:
        return f".board-column[data-state='{state}'] [data-incident-id='{incident_id}']"



def store_past_readings(storage: Storage) -> int:
    """Two hours of PM2.5 readings in industrial-east, one a minute, up to ten minutes ago."""
    now = time.time()
    readings = [Reading(f"pm25-ie-old-{n % 3}", "industrial-east", "pm25", 30.0 + (n % 40),
                        "ug/m3", now - 7200 + 60 * n) for n in range(110)]
    storage.writer("readings").write([reading_row(r) for r in readings])
    return len(readings)


def test_incidents_go_from_alert_to_board_to_acknowledged_on_every_open_page(
    stack: SimpleNamespace, browser: Any, tmp_path: Path
) -> None:
    base, settings = stack.url, stack.settings
    store_past_readings(stack.storage)
    operator = Screen(browser, base, token("operator", sub="olga"), WALL)
    operator.wait(LIVE)
    operator.wait_text("#signin .who", "signed in as olga (operator)")
    # sparklines start from the database's last hours, then go on live
    operator.wait("() => (window.cityheart.state.history.get('c:pm25') || []).length >= 100")
    operator.wait("() => Number(document.querySelector('.tile[data-key=\"v:pm25\"] svg')"
                  "?.dataset.points) >= 100")
    operator.go("#/incidents")

    raise_pollution(settings)
    operator.wait("() => window.cityheart.state.alerts.size > 0", timeout_s=90)
    alerted = time.monotonic()
    operator.wait("() => document.querySelector(\".board-column[data-state='open'] "
                  "[data-incident-id]\")", timeout_s=10)
    assert time.monotonic() - alerted < 10, "the incident came long after its alert"
    incident_id = operator.page.get_attribute(".board-column[data-state='open'] "
                                              "[data-incident-id]", "data-incident-id")
    card = operator.page.inner_text(operator.card(incident_id, "open"))
    assert "Industrial East" in card and "Environment Bureau" in card, card
    operator.shot(tmp_path / "overview-1080p-board.png")

    # a dispatcher signs in with a pasted token and acknowledges it in the page
    dispatcher = Screen(browser, base, None, LAPTOP, "#/incidents")
    dispatcher.page.click(".signin-toggle")
    dispatcher.page.fill(".signin-form input[name=token]",
                         token("dispatcher", "environment-bureau", sub=DISPATCHER))
    dispatcher.page.click(".signin-form button[type=submit]")
    dispatcher.wait_text("#signin .who",
                         f"signed in as {DISPATCHER} (dispatcher, environment-bureau)")
    dispatcher.wait(LIVE)
    dispatcher.page.click(dispatcher.card(incident_id, "open") + " a", timeout=20_000)
    dispatcher.page.click("button[data-action='acknowledge']", timeout=20_000)
    dispatcher.wait_text(".action-message[data-kind='ok']", "acknowledged", timeout_s=40)
    # ... and every other open page sees it move, live
    operator.wait(f"() => document.querySelector(\"{operator.card(incident_id, 'acknowledged')}\")",
                  timeout_s=10)
    assert not operator.page.query_selector(operator.card(incident_id, "open"))

    dispatcher.page.click("button[data-action='dispatch']")
    dispatcher.page.fill("form[data-form='dispatch'] input[name=team]", TEAM)
    dispatcher.page.click("form[data-form='dispatch'] button[type=submit]")
    dispatched = dispatcher.card(incident_id, "dispatched")
    dispatcher.wait(f"() => document.querySelector(\"{dispatched}\")", timeout_s=40)
    dispatcher.page.click("button[data-action='comment']")
    dispatcher.page.fill("form[data-form='comment'] textarea[name=comment]", COMMENT)
    dispatcher.page.click("form[data-form='comment'] button[type=submit]")
    dispatcher.wait_text(".action-message[data-kind='ok']", "Done: comment", timeout_s=40)
    dispatcher.wait_text(".timeline", COMMENT)
    # the server's refusal is shown in the page's words: a dispatcher may not close
    status = dispatcher.page.evaluate(
        "id => window.cityheart.session.post(`api/incidents/${id}/actions`, {action: 'close'})"
        ".then(a => [a.status, a.data.detail])", incident_id)
    assert status[0] == 403 and DISPATCHER in status[1]
    # (the panel re-renders as live events come: wait for it to settle)
    dispatcher.wait("() => [...document.querySelectorAll('.incident-actions button')]"
                    ".map(b => b.dataset.action).join() === 'dispatch,comment,resolve'",
                    timeout_s=20)
    dispatcher.shot(tmp_path / "incidents-laptop.png")

    operator.page.click(operator.card(incident_id, "dispatched") + " a")
    operator.wait_text(".timeline", COMMENT)
    operator.wait_text(".incident-facts", TEAM)
    board = operator.shot(tmp_path / "incidents-1080p.png")
    if os.environ.get("CITYHEART_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(board, ROOT / "docs" / "screenshot-incidents.png")

    # a viewer sees the incident move on, and nothing that names devices, people or comments
    viewer = Screen(browser, base, token("viewer", sub="vera"), WALL, f"#/incidents/{incident_id}")
    viewer.wait(LIVE)
    viewer.wait(f"() => document.querySelector(\"{viewer.card(incident_id, 'dispatched')}\")")
    viewer.wait("() => document.querySelectorAll('.timeline .event').length >= 4")
    assert viewer.page.query_selector_all(".incident-actions button") == []
    assert not viewer.page.query_selector("[data-nav='kpi']")
    pages = [viewer.page.content()]
    viewer.go("#/")
    viewer.wait("() => document.querySelector('.tile[data-key=\"v:pm25\"]')")
    pages.append(viewer.page.content())
    viewer.go("#/district/industrial-east")
    viewer.wait("() => document.querySelectorAll('.cards .card').length > 0")
    pages.append(viewer.page.content())
    viewer.go("#/kpi")
    viewer.wait_text(".kpi-status", "viewers see no KPIs")
    frames = "\n".join(viewer.frames)
    assert '"incident"' in frames and incident_id in frames
    for secret in ("pm25-ie-", "cement works", DISPATCHER, TEAM, "olga"):
        for text in pages:
            assert secret not in text, f"a viewer's page shows {secret!r}"
        assert secret not in frames, f"a viewer's feed carries {secret!r}"
    viewer.close()

    # the KPI view shows the department's numbers
    operator.go("#/kpi/24h")
    row = "tr[data-department='environment-bureau']"
    operator.wait(f"() => document.querySelector(\"{row} td[data-key='acknowledged']\")"
                  "?.textContent === '1'", timeout_s=40)
    assert operator.page.inner_text(f"{row} td[data-key='opened']") == "1"
    assert operator.page.inner_text(f"{row} td[data-key='backlog']") == "1"
    assert operator.page.inner_text(f"{row} th") == "Environment Bureau"
    assert len(operator.page.query_selector_all(".kpi-table tbody tr")) == len(
        settings.incidents.departments)
    assert len(operator.page.query_selector_all(".kpi-chart svg.chart")) == 4
    operator.shot(tmp_path / "kpi-1080p.png")
    dispatcher.go("#/kpi/7d")
    dispatcher.wait("() => document.querySelector('.kpi-view')?.dataset.state === 'loaded'")
    assert dispatcher.page.eval_on_selector_all(
        ".kpi-table tbody tr", "rs => rs.map(r => r.dataset.department)") == ["environment-bureau"]
    dispatcher.shot(tmp_path / "kpi-laptop.png")

    # the district view's cards start from history too
    operator.go("#/district/industrial-east")
    operator.wait("() => Number(document.querySelector('.card[data-key=\"v:pm25\"] svg')"
                  "?.dataset.points) >= 100")
    operator.shot(tmp_path / "district-1080p.png")
    operator.go("#/")
    operator.wait("() => document.querySelector('[data-role=\"active-incidents\"]')"
                  "?.textContent === '1'")
    operator.shot(tmp_path / "overview-1080p.png")
    operator.page.set_viewport_size(LAPTOP)
    operator.shot(tmp_path / "overview-laptop.png")
    overflow = operator.page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "the page is wider than a laptop screen"
    operator.close()
    dispatcher.close()


def test_when_tokens_are_required_the_page_asks_for_one_and_says_why_one_is_refused(
    settings: Settings, browser: Any, tmp_path: Path
) -> None:
    required = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"required": True})})
    service = DispatchService(required, storage=lambda: pytest.fail("no storage is needed"),
                              bus=None)
    with WebServer(required, DashboardSettings(port=0), static_dir=web_root(), api=service,
                   authenticate=authenticate) as web:
        screen = Screen(browser, web.url, None, WALL, "#/incidents")
        screen.wait("() => document.querySelector('.signin-form')?.hidden === false")
        screen.wait_text(".signin-problem", "requires a token")
        screen.wait_text(".board-notice", "requires a token")
        screen.shot(tmp_path / "signin-required.png")
        screen.page.fill(".signin-form input[name=token]", token("viewer") + "x")
        screen.page.click(".signin-form button[type=submit]")
        screen.wait_text(".signin-problem", "token refused")
        assert screen.page.is_visible(".signout")
        screen.page.click(".signout")
        screen.wait_text(".signin-problem", "requires a token")
        assert screen.page.evaluate("() => sessionStorage.getItem('cityheart.token')") is None
        screen.close()
