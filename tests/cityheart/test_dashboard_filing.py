"""The board's "File a report" form in a real browser: an operator files a report from the field
(place clicked on the map, a link to a clip), the page shows the server's refusal when the
place is missing, the report arrives on the feed under the board with the operator as its
reporter, and it joins the incident the sensors opened in its district; a viewer has no form
and the API refuses viewers, kinds that are no identifier and a typed reporter.

Debian's chromium through playwright; behind it real Tansu, real PostgreSQL, the flow and the
recorder as child processes, the feed and the dashboard (with its report producer) in this
process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from settings.config import Settings
from tests.cityheart.test_dashboard_incidents import LIVE, Screen, authenticate, token
from tests.cityheart.test_dispatch_api import call
from tests.support.browser import WALL, chromium
from tests.support.dispatch import dispatch_stack, raise_pollution

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

TEXT = "Grey smoke from the cement works chimney, smells of tar"
CLIP = "https://cams.example/clip/881.mp4"
FORM = ".filing-form form"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def stack(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    with dispatch_stack(settings, database_url, tmp_path, authenticate=authenticate,
                        feed=True) as running:
        yield running


def test_an_operator_files_a_report_that_joins_the_sensors_incident(
    stack: SimpleNamespace, browser: Any, tmp_path: Path
) -> None:
    base = stack.url
    # the API: viewers may not file, a kind is an identifier, the reporter is the caller
    report = {"kind": "pm25", "text": "dust", "district": "industrial-east"}
    status, answer = call(base, "POST", "/api/reports", token("viewer", sub="vera"), report)
    assert (status, answer["error"]) == (403, "forbidden"), answer
    status, answer = call(base, "POST", "/api/reports", token("operator", sub="olga"),
                          {**report, "kind": "Pot hole"})
    assert status == 422 and "lower-case identifier" in answer["detail"], answer
    status, answer = call(base, "POST", "/api/reports", token("operator", sub="olga"),
                          {**report, "reporter": "someone else"})
    assert status == 422 and "signed-in person" in answer["detail"]
    status, answer = call(base, "POST", "/api/reports", token("operator", sub="olga"),
                          {**report, "district": "atlantis"})
    assert (status, answer["reason"]) == (422, "unknown_district"), answer

    raise_pollution(stack.settings)
    operator = Screen(browser, base, token("operator", sub="olga"), WALL, "#/incidents")
    operator.wait(LIVE)
    open_card = ".board-column[data-state='open'] [data-incident-id]"
    operator.wait(f"() => document.querySelector(\"{open_card}\")", timeout_s=90)
    incident_id = operator.page.get_attribute(open_card, "data-incident-id")
    rules = f"() => window.cityheart.incidents.incidents.get('{incident_id}').rules"
    assert "report.pm25" not in operator.wait(rules)

    operator.page.click("button.file-report", timeout=20_000)
    operator.wait_text(".filing-form .filing-reporter", "Reported by olga (you)")
    operator.page.fill(f"{FORM} input[name=kind]", "pm25")
    operator.page.fill(f"{FORM} textarea[name=text]", TEXT)
    operator.page.select_option(f"{FORM} select[name=severity]", "critical")
    operator.page.fill(f"{FORM} textarea[name=attachments]", CLIP)
    # no place yet: the server's refusal is shown in the page
    operator.page.click(f"{FORM} button[type=submit]")
    operator.wait_text(".filing-form .action-message[data-kind='error']", "lat and lon",
                       timeout_s=30)
    # the place: a click on the district on the form's map sets the position
    operator.wait("() => document.querySelector('.filing-map')?.dataset.ready === 'true'")
    operator.page.click(".filing-map path[data-district='industrial-east']")
    assert operator.page.input_value(f"{FORM} input[name=lat]")
    assert operator.page.input_value(f"{FORM} input[name=lon]")
    operator.page.click(f"{FORM} button[type=submit]")
    operator.wait_text(".filing-form .action-message[data-kind='ok']", "Filed r-", timeout_s=40)
    report_id = operator.page.inner_text(".filing-form .action-message").split()[1].rstrip(".")

    # through Kafka and the feed: listed under the board with who filed it
    item = f".report-list [data-report-id='{report_id}']"
    operator.wait(f"() => document.querySelector(\"{item}\")", timeout_s=30)
    operator.shot(tmp_path / "filing-1080p.png")
    listed = operator.page.inner_text(item)
    assert "olga" in listed and TEXT in listed and "Industrial East" in listed, listed
    kept = operator.wait(f"() => window.cityheart.incidents.reports.get('{report_id}')")
    assert (kept["source"], kept["reporter"], kept["district"]) == (
        "dashboard", "olga", "industrial-east")
    assert kept["attachments"] == [CLIP] and kept["lat"] is not None
    # ... and it joined the incident the PM2.5 sensors opened (district, kind, time)
    operator.wait(f"() => ({rules[6:]}).includes('report.pm25')", timeout_s=60)
    operator.close()

    dispatcher = Screen(browser, base, token("dispatcher", "environment-bureau", sub="ana"),
                        WALL, "#/incidents")
    dispatcher.wait(LIVE)
    assert dispatcher.page.is_visible("button.file-report")
    dispatcher.close()
    viewer = Screen(browser, base, token("viewer", sub="vera"), WALL, "#/incidents")
    viewer.wait(LIVE)
    viewer.wait(f"() => document.querySelector(\"{open_card}\")", timeout_s=30)
    assert not viewer.page.is_visible("button.file-report")
    assert not viewer.page.is_visible(".board-reports")
    viewer.close()
