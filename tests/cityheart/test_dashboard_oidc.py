"""People sign in to the dashboard through the city's OpenID Connect provider and act within
their role, in a real browser.

Debian's chromium driven by playwright; a real provider on loopback (tests/oidc_provider.py:
login page, authorization code flow with PKCE, JWKS); behind the page the incident path of
tests/support/dispatch.py (Tansu, PostgreSQL, the flow and the recorder as children, the feed
and the dashboard's server in this process), configured with ``auth.oidc`` and no local secret:
only the provider's tokens are accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cityheart.token import token_check
from settings.config import Settings
from tests.connectors.test_oidc import oidc_settings, with_oidc
from tests.oidc_provider import OidcProvider, User
from tests.support.browser import LAPTOP, chromium
from tests.support.browser import Screen as BrowserScreen
from tests.support.dispatch import dispatch_stack, raise_pollution

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

USERS = {
    "ana": User("ana-pw", roles=["city-dispatcher"], department="environment-bureau"),
    "vera": User("vera-pw", roles=["city-viewer"]),
}
LIVE = "() => document.querySelector('#conn')?.dataset.state === 'live'"
OPEN_CARD = ".board-column[data-state='open'] [data-incident-id]"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def idp() -> Iterator[OidcProvider]:
    with OidcProvider(USERS) as provider:
        yield provider


@pytest.fixture
def stack(settings: Settings, database_url: str, tmp_path: Path,
          idp: OidcProvider) -> Iterator[SimpleNamespace]:
    configured = with_oidc(settings, oidc_settings(idp.issuer))
    check = token_check(configured, env={})
    assert check is not None
    with dispatch_stack(configured, database_url, tmp_path, authenticate=check,
                        feed=True) as running:
        yield running


class Screen(BrowserScreen):
    """A page of the dashboard, not signed in."""

    wait_s = 20.0

    def __init__(self, browser: Any, stack: SimpleNamespace, hash_: str = "") -> None:
        super().__init__(browser, LAPTOP)
        self.base = stack.url
        self.page.goto(stack.url + hash_)

    def sign_in(self, username: str, password: str, idp: OidcProvider) -> None:
        """Through the provider: the header's button, its login form, and back."""
        self.page.click(".signin-toggle")
        self.page.click(".signin-provider")
        self.page.wait_for_url(f"{idp.issuer}/authorize?*")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("#login")
        self.page.wait_for_url(f"{self.base}*")


def test_people_sign_in_through_the_provider_and_act_within_their_role(
    stack: SimpleNamespace, idp: OidcProvider, browser: Any, tmp_path: Path
) -> None:
    dispatcher = Screen(browser, stack, "#/incidents")
    dispatcher.wait("() => window.cityheart?.session")
    dispatcher.sign_in("ana", "ana-pw", idp)
    dispatcher.wait_text("#signin .who", "signed in as ana (dispatcher, environment-bureau)")
    assert "code=" not in dispatcher.page.url and dispatcher.page.url.endswith("#/incidents")
    dispatcher.wait(LIVE)

    raise_pollution(stack.settings)
    dispatcher.wait(f"() => document.querySelector(\"{OPEN_CARD}\")", timeout_s=90)
    incident_id = dispatcher.page.get_attribute(OPEN_CARD, "data-incident-id")
    dispatcher.page.click(f"{OPEN_CARD} a")
    dispatcher.page.click("button[data-action='acknowledge']", timeout=20_000)
    dispatcher.wait_text(".action-message[data-kind='ok']", "acknowledged", timeout_s=40)
    # a dispatcher may not close an incident: the server says so, with the provider's name
    status = dispatcher.page.evaluate(
        "id => window.cityheart.session.post(`api/incidents/${id}/actions`, {action: 'close'})"
        ".then(a => [a.status, a.data.detail])", incident_id)
    assert status[0] == 403 and "ana" in status[1]
    dispatcher.shot(tmp_path / "dispatcher-signed-in.png")
    dispatcher.close()

    # the provider rotates its signing key: the next person is let in without a restart
    fetched = idp.jwks_fetches
    idp.rotate(keep_old=False)
    viewer = Screen(browser, stack, f"#/incidents/{incident_id}")
    viewer.wait("() => window.cityheart?.session")
    viewer.sign_in("vera", "vera-pw", idp)
    viewer.wait_text("#signin .who", "signed in as vera (viewer)")
    assert idp.jwks_fetches > fetched
    viewer.wait(LIVE)
    viewer.wait("() => document.querySelector(\".board-column[data-state='acknowledged'] "
                f"[data-incident-id='{incident_id}']\")")
    assert viewer.page.query_selector_all(".incident-actions button") == []
    assert not viewer.page.query_selector("[data-nav='kpi']")
    assert "ana" not in viewer.page.content()
    viewer.close()


def test_a_wrong_sign_in_answer_is_refused_and_the_paste_in_stays(
    stack: SimpleNamespace, idp: OidcProvider, browser: Any
) -> None:
    page = Screen(browser, stack)
    page.wait("() => window.cityheart?.session")
    page.page.click(".signin-toggle")
    assert page.page.is_visible(".signin-form input[name=token]")
    # an answer that no sign-in of this page started (a forged redirect) is not taken
    page.page.goto(stack.url + "?code=stolen&state=guess")
    page.wait_text(".signin-problem", "does not match a sign-in started here")
    assert page.page.evaluate("() => sessionStorage.getItem('cityheart.token')") is None
    # a token the server refuses is shown with the server's reason
    page.page.fill(".signin-form input[name=token]", idp.token("vera", aud="another-app"))
    page.page.click(".signin-form button[type=submit]")
    page.wait_text(".signin-problem", "not meant for cityheart")
    page.close()
