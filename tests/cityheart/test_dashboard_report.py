"""The board's "New incident" form in a real browser: an operator opens an incident from a phone
call, it is routed and shown on every open page, and the department's dispatcher assigns it and
hands it to another department from the incident panel; a viewer has no form. The board also
lists the maintenance windows added at run time.

Debian's chromium through playwright; behind it real Tansu, real PostgreSQL, the flow and the
recorder as child processes, the feed and the dashboard with its dispatch API in this process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.tokens import Claims, issue_token, verify_token
from settings.config import Settings
from tests.cityheart.test_dashboard_incidents import LIVE, Screen
from tests.support.browser import LAPTOP, WALL, chromium
from tests.support.dispatch import dispatch_stack

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

SECRET = "dashboard-secret-0123456789abcdef"
TITLE = "Water over the quay at pier 4"


def token(role: str, department: str | None = None, sub: str | None = None) -> str:
    return issue_token(role=role, department=department, sub=sub or f"{role}-1", secret=SECRET,
                       now=time.time(), ttl_s=3600)


def authenticate(text: str) -> Claims:
    return verify_token(text, secret=SECRET, now=time.time())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def stack(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    with dispatch_stack(settings, database_url, tmp_path, authenticate=authenticate,
                        feed=True) as running:
        yield running


def test_an_operator_opens_an_incident_from_a_call_in_the_page(
    stack: SimpleNamespace, browser: Any, tmp_path: Path
) -> None:
    from tests.cityheart.test_dispatch_api import call

    base = stack.url
    status, added = call(base, "POST", "/api/suppressions", token("operator", sub="olga"), {
        "districts": ["airport-west"], "for": "2h", "reason": "runway lights replaced"})
    assert status == 201, added
    dispatcher = Screen(browser, base, token("dispatcher", "water-authority", sub="ana"),
                        LAPTOP, "#/incidents")
    dispatcher.wait(LIVE)
    operator = Screen(browser, base, token("operator", sub="olga"), WALL, "#/incidents")
    operator.wait(LIVE)
    # the maintenance window is on the board, for dispatchers too
    for screen in (operator, dispatcher):
        screen.wait_text(".board-windows", "runway lights replaced")
    assert "Airport West" in operator.page.inner_text(".board-windows")
    operator.page.click("button.new-incident", timeout=20_000)
    form = ".report-form form"
    # the server's refusal is shown in the page: a position outside the city
    operator.page.select_option(f"{form} select[name=kind]", "water_level")
    operator.page.fill(f"{form} input[name=title]", TITLE)
    operator.page.select_option(f"{form} select[name=severity]", "critical")
    operator.page.fill(f"{form} input[name=lat]", "0")
    operator.page.fill(f"{form} input[name=lon]", "0")
    operator.page.click(f"{form} button[type=submit]")
    operator.wait_text(".report-form .action-message[data-kind='error']", "in no district",
                       timeout_s=30)
    operator.page.fill(f"{form} input[name=lat]", "")
    operator.page.fill(f"{form} input[name=lon]", "")
    operator.page.select_option(f"{form} select[name=district]", "harbour")
    operator.page.fill(f"{form} textarea[name=description]", "caller: water over the quay")
    operator.page.fill(f"{form} input[name=reporter]", "harbour master (phone)")
    operator.page.click(f"{form} button[type=submit]")
    # the new incident opens beside the board, with who opened it and who reported it
    operator.wait("() => location.hash.startsWith('#/incidents/inc-')", timeout_s=40)
    incident_id = operator.page.evaluate("() => decodeURIComponent(location.hash.split('/')[2])")
    operator.wait_text(".incident-title", TITLE)
    operator.wait_text(".incident-facts", "harbour master (phone)")
    operator.wait_text(".timeline", "olga")
    operator.wait(f"() => document.querySelector(\"{operator.card(incident_id, 'open')}\")")
    operator.shot(tmp_path / "report-1080p.png")
    # routed like an alert: the water authority's dispatcher sees it arrive live and acts
    dispatcher.wait(f"() => document.querySelector(\"{dispatcher.card(incident_id, 'open')}\")",
                    timeout_s=30)
    assert TITLE in dispatcher.page.inner_text(dispatcher.card(incident_id, "open"))
    assert dispatcher.page.is_visible("button.new-incident")
    dispatcher.page.click(dispatcher.card(incident_id, "open") + " a")
    dispatcher.page.click("button[data-action='acknowledge']", timeout=20_000)
    dispatcher.wait_text(".action-message[data-kind='ok']", "acknowledged", timeout_s=40)
    # ... assigns it to someone, then hands it to the grid operator
    dispatcher.page.click(".incident-handover button[data-action='assign']", timeout=20_000)
    dispatcher.page.fill("form[data-form='assign'] input[name=target]", "wei")
    dispatcher.page.click("form[data-form='assign'] button[type=submit]")
    dispatcher.wait_text(".incident-facts", "wei", timeout_s=40)
    dispatcher.page.click(".incident-handover button[data-action='transfer']", timeout=20_000)
    dispatcher.page.select_option("form[data-form='transfer'] select[name=target]",
                                  "grid-operator")
    dispatcher.page.fill("form[data-form='transfer'] textarea[name=comment]", "pumps lost power")
    dispatcher.page.click("form[data-form='transfer'] button[type=submit]")
    dispatcher.wait_text(".action-message[data-kind='ok']", "no longer routed to you",
                         timeout_s=40)
    dispatcher.wait(f"() => !document.querySelector(\".board-column [data-incident-id='"
                    f"{incident_id}']\")")
    # every other open page sees it change hands, live
    operator.wait_text(operator.card(incident_id, "acknowledged"), "Grid Operator", timeout_s=30)
    operator.wait_text(".timeline", "pumps lost power")
    assert "Water Authority" not in operator.page.inner_text(
        operator.card(incident_id, "acknowledged"))
    dispatcher.close()
    operator.close()

    viewer = Screen(browser, base, token("viewer", sub="vera"), WALL, "#/incidents")
    viewer.wait(LIVE)
    viewer.wait(f"() => document.querySelector(\"{viewer.card(incident_id, 'acknowledged')}\")")
    assert not viewer.page.is_visible("button.new-incident")
    assert "harbour master" not in viewer.page.content()
    assert not viewer.page.is_visible(".board-windows")
    viewer.close()
