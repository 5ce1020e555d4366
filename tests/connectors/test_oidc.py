"""Tokens of an OpenID Connect provider: accepted when genuine and current, mapped to our roles,
refused otherwise; the provider's key rotation followed without a restart.

A real provider runs on loopback (tests/oidc_provider.py: discovery document, JWKS, login,
code + PKCE); cityheart fetches its keys over HTTP as it would Keycloak's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import orjson
import pytest
from pydantic import ValidationError

from cityheart.dashboard import web_root
from cityheart.token import issue, token_check
from connectors.oidc import ProviderTokens
from connectors.tokens import (
    Claims,
    ExpiredToken,
    ForeignToken,
    ForgedToken,
    MalformedToken,
    ProviderUnavailable,
    TokenError,
)
from connectors.web_server import DashboardSettings, WebServer
from settings.auth import OidcSettings
from settings.config import Settings
from tests.oidc_provider import OidcProvider, User, new_key

SECRET = "oidc-tests-local-secret-0123456789"
ROLES = {"city-operator": "operator", "city-dispatcher": "dispatcher", "city-viewer": "viewer"}
USERS = {
    "olga": User("olga-pw", roles=["city-operator", "city-viewer"]),
    "ana": User("ana-pw", roles=["offline_access", "city-dispatcher"],
                department="environment-bureau"),
    "vic": User("vic-pw", roles=["city-viewer"]),
    "nobody": User("nobody-pw", roles=["offline_access"]),
    "lost": User("lost-pw", roles=["city-dispatcher"]),
}


def oidc_settings(issuer: str, **changes: Any) -> OidcSettings:
    return OidcSettings(**({"issuer": issuer, "audience": "cityheart",
                            "client_id": "cityheart-dashboard",
                            "roles_claim": "realm_access.roles", "roles": ROLES,
                            "jwks_min_refresh_s": 0} | changes))


def with_oidc(settings: Settings, oidc: OidcSettings | None) -> Settings:
    return settings.model_copy(update={"auth": settings.auth.model_copy(update={"oidc": oidc})})


@pytest.fixture
def idp() -> Iterator[OidcProvider]:
    with OidcProvider(USERS) as provider:
        yield provider


@pytest.fixture
def verify(idp: OidcProvider) -> ProviderTokens:
    return ProviderTokens(oidc_settings(idp.issuer))


def now() -> float:
    return time.time()


def test_a_provider_token_speaks_for_the_role_and_department_it_maps_to(
    idp: OidcProvider, verify: ProviderTokens
) -> None:
    ana = verify(idp.token("ana"), now=now())
    assert (ana.role, ana.department, ana.sub) == ("dispatcher", "environment-bureau", "ana")
    # several mapped roles: the first of operator, dispatcher, viewer
    assert verify(idp.token("olga"), now=now()).role == "operator"
    vic = verify(idp.token("vic"), now=now())
    assert vic == Claims(role="viewer", sub="vic", iat=vic.iat, exp=vic.iat + idp.ttl_s)
    assert idp.jwks_fetches == 1   # the keys are cached


def test_the_department_can_be_mapped_and_the_subject_chosen(idp: OidcProvider) -> None:
    verify = ProviderTokens(oidc_settings(
        idp.issuer, departments={"env": "environment-bureau"}, subject_claim="sub"))
    token = idp.token("ana", department="env")
    assert verify(token, now=now()).department == "environment-bureau"
    assert verify(token, now=now()).sub == "uid-ana"


def _from_now(seconds: int) -> Callable[[], int]:
    """Epoch seconds ``seconds`` from the moment it is called."""
    return lambda: int(time.time()) + seconds


@pytest.mark.parametrize(
    ("user", "overrides", "error", "fragment"),
    [
        ("nobody", {}, MalformedToken, "grants no cityheart role"),
        ("lost", {}, MalformedToken, "names no single department"),
        ("ana", {"aud": "another-app"}, ForeignToken, "not meant for cityheart"),
        ("ana", {"aud": ["account", "billing"]}, ForeignToken, "not meant for cityheart"),
        ("ana", {"iss": "https://elsewhere.example"}, ForeignToken, "not issued by"),
        ("ana", {"iat": _from_now(-3600), "exp": _from_now(-31)}, ExpiredToken, "expired at"),
        ("ana", {"nbf": _from_now(300)}, MalformedToken, "not valid before"),
    ],
)
def test_refused_provider_tokens_say_why(
    idp: OidcProvider, verify: ProviderTokens, user: str, overrides: dict,
    error: type[TokenError], fragment: str,
) -> None:
    # times are taken when the test runs, not when it was collected (minutes earlier in a suite)
    claims = {key: value() if callable(value) else value for key, value in overrides.items()}
    token = idp.token(user, **claims)
    with pytest.raises(error, match=fragment) as caught:
        verify(token, now=now())
    assert token not in str(caught.value)


def test_expiry_allows_the_configured_clock_leeway(
    idp: OidcProvider, verify: ProviderTokens
) -> None:
    t = now()
    token = idp.token("ana", iat=int(t) - 600, exp=int(t) - 20)
    assert verify(token, now=t).role == "dispatcher"      # 20 s late, leeway 30 s
    with pytest.raises(ExpiredToken):
        verify(token, now=t + 11)


def test_a_token_signed_by_another_key_is_forged(idp: OidcProvider, verify: ProviderTokens) -> None:
    stranger = new_key()
    # claiming the provider's key id: the signature does not match
    with pytest.raises(ForgedToken, match="signature does not match"):
        verify(idp.token("olga", key=stranger), now=now())
    # an unknown key id: looked up again (it might be new), then refused
    with pytest.raises(ForgedToken, match="does not publish"):
        verify(idp.token("olga", key=stranger, kid="stranger"), now=now())
    assert idp.jwks_fetches == 2


def test_an_hmac_or_unsigned_token_is_never_a_provider_token(
    idp: OidcProvider, verify: ProviderTokens
) -> None:
    import jwt

    claims = idp.claims("olga")
    # HS256 with the provider's public key as the secret: the classic algorithm confusion
    hs = jwt.encode(claims, "x" * 64, algorithm="HS256", headers={"kid": idp.kid})
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (hs, unsigned):
        with pytest.raises(ForgedToken, match="must use one of"):
            verify(token, now=now())


def test_a_rotated_key_is_picked_up_and_a_rotated_away_key_refused_without_restart(
    idp: OidcProvider, verify: ProviderTokens
) -> None:
    before = idp.token("ana")
    assert verify(before, now=now()).role == "dispatcher"
    idp.rotate(keep_old=False)          # the provider signs with a new key, drops the old one
    after = idp.token("olga")
    assert verify(after, now=now()).role == "operator"   # the same verifier: no restart
    assert idp.jwks_fetches == 2
    with pytest.raises(ForgedToken, match="rotated away"):
        verify(before, now=now())


def test_unknown_key_ids_do_not_make_the_provider_hammered(idp: OidcProvider) -> None:
    verify = ProviderTokens(oidc_settings(idp.issuer, jwks_min_refresh_s=3600))
    verify(idp.token("ana"), now=now())
    for n in range(5):
        with pytest.raises(ForgedToken):
            verify(idp.token("ana", key=new_key(), kid=f"junk-{n}"), now=now())
    assert idp.jwks_fetches == 1


def test_a_provider_that_does_not_answer_is_named(idp: OidcProvider) -> None:
    verify = ProviderTokens(oidc_settings("http://127.0.0.1:9"), timeout_s=2)
    with pytest.raises(ProviderUnavailable, match="http://127.0.0.1:9/.well-known"):
        verify(idp.token("ana"), now=now())


def test_settings_refuse_what_would_be_unsafe() -> None:
    with pytest.raises(ValidationError, match="must be an https:// URL"):
        oidc_settings("http://id.city.example")
    with pytest.raises(ValidationError, match="'HS256'"):
        oidc_settings("https://id.city.example", algorithms=["RS256", "HS256"])
    with pytest.raises(ValidationError, match="roles"):
        oidc_settings("https://id.city.example", roles={"admin": "root"})
    assert oidc_settings("https://id.city.example/realms/city/").issuer == (
        "https://id.city.example/realms/city")


def test_the_server_takes_local_and_provider_tokens_alike(
    idp: OidcProvider, base_settings: Settings
) -> None:
    settings = with_oidc(base_settings, oidc_settings(idp.issuer))
    env = {"CITYHEART_TOKEN_SECRET": SECRET}
    check = token_check(settings, env)
    assert check is not None
    assert check(idp.token("ana")).department == "environment-bureau"
    assert check(issue(settings, role="viewer", sub="wall", env=env)).sub == "wall"
    # without a local secret only the provider's tokens pass
    only_provider = token_check(settings, {})
    assert only_provider is not None and only_provider(idp.token("vic")).role == "viewer"
    with pytest.raises(ForgedToken, match=f"only tokens of {idp.issuer}"):
        only_provider(issue(settings, role="operator", env=env))


def _get(url: str, token: str | None = None) -> tuple[int, Any, dict]:
    """(status, the headers (names in any case, as HTTP has them), the JSON body)."""
    request = Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, response.headers, orjson.loads(response.read())
    except OSError as exc:
        body = exc.read() if hasattr(exc, "read") else b"{}"
        return exc.code, exc.headers, orjson.loads(body)  # type: ignore[attr-defined]


class _NoApi:
    """The dispatch API is not under test here: only who the caller is (/api/whoami)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(name)


def test_the_dashboard_names_the_provider_and_its_api_knows_the_person(
    idp: OidcProvider, base_settings: Settings
) -> None:
    settings = with_oidc(base_settings, oidc_settings(idp.issuer))
    check = token_check(settings, {})
    with WebServer(settings, DashboardSettings(port=0), static_dir=web_root(), api=_NoApi(),
                   authenticate=check) as web:
        status, headers, config = _get(web.url + "config.json")
        assert config["signin"] == {"issuer": idp.issuer, "client_id": "cityheart-dashboard",
                                    "scope": "openid profile", "token": "access_token"}
        assert f"connect-src 'self' ws: wss: {idp.issuer};" in headers["Content-Security-Policy"]
        status, _, me = _get(web.url + "api/whoami", idp.token("ana"))
        assert status == 200 and me == {"sub": "ana", "role": "dispatcher",
                                        "department": "environment-bureau", "grant": None}
        status, _, refused = _get(web.url + "api/whoami", idp.token("ana", aud="other"))
        assert status == 401 and "not meant for cityheart" in refused["detail"]


def test_the_configuration_example_loads_and_unknown_departments_are_named(
    base_settings: Settings,
) -> None:
    import yaml

    from models.errors import ConfigError
    from settings.loader import dump, load_mapping

    text = (Path(__file__).resolve().parents[2] / "config.yaml").read_text()
    example = text[text.index("# auth:"):].split("\n\n")[0]
    auth = yaml.safe_load("\n".join(line.removeprefix("# ") for line in example.splitlines()))
    settings = load_mapping(dump(base_settings) | auth, env={})
    assert settings.auth.oidc is not None
    assert settings.auth.oidc.roles["city-dispatcher"] == "dispatcher"
    assert settings.auth.oidc.audience == ("cityheart",)
    auth["auth"]["oidc"]["departments"] = {"env": "environment-bureau", "fire": "firefighters"}
    with pytest.raises(ConfigError, match="auth.oidc.departments.fire") as caught:
        load_mapping(dump(base_settings) | auth, env={})
    assert "'firefighters' is not one of" in str(caught.value)


@pytest.mark.services
@pytest.mark.timeout(90)
def test_a_slow_provider_does_not_stall_the_feed_for_others(
    idp: OidcProvider, settings: Settings
) -> None:
    """A provider token's keys are fetched off the feed's event loop: others are served."""
    import asyncio
    import socket
    import threading

    from websockets.asyncio.client import connect

    from alerts.access import view
    from connectors.feed.server import FeedServer

    hanging = socket.create_server(("127.0.0.1", 0))   # accepts, never answers
    asked = threading.Event()
    held: list[socket.socket] = []
    asked_at: list[float] = []

    def accept() -> None:
        held.append(hanging.accept()[0])
        asked_at.append(time.monotonic())   # this thread's clock: the feed's loop may be stuck
        asked.set()

    threading.Thread(target=accept, daemon=True).start()
    env = {"CITYHEART_TOKEN_SECRET": SECRET}
    settings = with_oidc(settings, oidc_settings(f"http://127.0.0.1:{hanging.getsockname()[1]}"))
    authenticate = token_check(settings, env)   # the provider's fetches time out after 10 s
    local = issue(settings, role="viewer", sub="wall", env=env)

    async def provider_client(url: str) -> Any:
        return await connect(url)

    async def scenario() -> float:
        async with FeedServer(settings, heartbeat_s=0.5, authenticate=authenticate,
                              view=view) as server:
            waiting = asyncio.create_task(provider_client(f"{server.url}?token={idp.token('ana')}"))
            assert await asyncio.to_thread(asked.wait, 10), "the provider was never asked"
            async with connect(f"{server.url}?token={local}") as ws:
                assert orjson.loads(await ws.recv())["type"] == "hello"
            served = time.monotonic() - asked_at[0]
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            return served

    try:
        served = asyncio.run(scenario())
    finally:
        for conn in held:
            conn.close()
        hanging.close()
    assert served < 4, f"a local token waited {served:.1f} s behind the provider's fetch"
