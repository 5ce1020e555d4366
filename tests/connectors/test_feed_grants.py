"""Grants and revocation on the push feed and the dashboard (issue 23), end to end.

Real Tansu and the real feed and dashboard servers: a consumer's token names a grant of
``auth.grants``; the feed sends it exactly what the grant allows (a derived-only grant gets
yes/no answers, never a value), and a revoked token is refused from its next connection on.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from cityheart.dashboard import web_root
from cityheart.token import feed_auth, issue, revoke_token
from connectors.feed.server import FeedServer
from connectors.web_server import DashboardSettings, WebServer
from settings.auth import GrantSettings, QuestionSettings
from settings.config import Settings
from tests.connectors.test_feed import T0, aread_until_heartbeat, vital
from tests.connectors.test_feed_auth import ENV, connect, refusal
from tests.support.feed import produce

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


def indicator(district: str, value: float) -> tuple[str, bytes, bytes]:
    record = {"record": "indicator", "district": district, "indicator": "aqi", "kind": "aqi",
              "value": value, "unit": "aqi", "level": "unhealthy" if value > 150 else "good",
              "window_start": T0, "window_end": "2026-11-26T08:00:10.000Z", "inputs": 12,
              "components": [{"name": "pm25", "value": 61.0, "status": "used"}]}
    return "vitals", district.encode(), orjson.dumps(record)


GRANTS = {
    "resident-app": GrantSettings(detail="derived", questions=[
        QuestionSettings(id="air-above-warning", indicator="aqi", at_least=101)]),
    "harbour-partner": GrantSettings(channels=["vitals"], detail="raw", districts=["harbour"],
                                     kinds=["pm25"], fields=["district", "kind", "mean"]),
}


def granted(settings: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    auth = settings.auth.model_copy(update={"grants": GRANTS})
    return settings.model_copy(update={"auth": auth}), tmp_path / "revoked-tokens.yaml"


def consumer(settings: Settings, grant: str) -> str:
    return issue(settings, role="consumer", grant=grant, sub=f"{grant}-client", env=ENV)


def test_each_consumer_gets_what_its_grant_allows_and_derived_never_a_value(
    settings: Settings, tmp_path: Path
) -> None:
    settings, revoked = granted(settings, tmp_path)
    records = [indicator("harbour", 152.0), indicator("old-town", 40.0),
               vital("harbour", "pm25", 10, mean=33.0), vital("old-town", "pm25", 10)]

    async def scenario() -> dict[str, list[dict]]:
        authenticate, view = feed_auth(settings, env=ENV, revoked=revoked)
        async with FeedServer(settings, heartbeat_s=0.2, authenticate=authenticate,
                              view=view) as server:
            clients = {name: await connect(server.url, consumer(settings, name))
                       for name in GRANTS}
            await asyncio.to_thread(produce, settings, records)
            got = {name: await aread_until_heartbeat(ws, 4) for name, ws in clients.items()}
            for ws in clients.values():
                await ws.close()
        return got

    got = asyncio.run(scenario())
    answers = got["resident-app"]
    assert [(m["type"], m["district"], m["answer"]) for m in answers] == [
        ("answer", "harbour", True), ("answer", "old-town", False)]
    for message in answers:  # nothing behind the answer: no value, level or component
        assert set(message) == {"type", "seq", "time", "district", "question", "answer",
                                "as_of"}
    assert [{k: v for k, v in m.items() if k not in ("seq", "time")}
            for m in got["harbour-partner"]] == [
        {"type": "vital", "district": "harbour", "kind": "pm25", "mean": 33.0}]


def test_a_revoked_token_is_refused_at_once_by_the_feed_and_the_dashboard(
    settings: Settings, tmp_path: Path
) -> None:
    settings, revoked = granted(settings, tmp_path)
    settings = settings.model_copy(update={"auth": settings.auth.model_copy(
        update={"required": True})})
    token = consumer(settings, "harbour-partner")
    config = tmp_path / "config.yaml"  # revoke_token finds the file next to it
    authenticate, view = feed_auth(settings, env=ENV, revoked=revoked)

    def whoami(web: WebServer) -> tuple[int, dict]:
        request = urllib.request.Request(f"{web.url}api/whoami",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, orjson.loads(error.read())

    async def scenario() -> dict:
        async with FeedServer(settings, heartbeat_s=0.2, authenticate=authenticate,
                              view=view) as server:
            ws = await connect(server.url, token)  # accepted before the revocation
            await ws.close()
            await asyncio.to_thread(revoke_token, settings, token, config_path=config,
                                    reason="partner contract ended", env=ENV)
            from websockets.asyncio.client import connect as raw_connect
            late = await raw_connect(f"{server.url}?token={token}")
            return await refusal(late)

    with WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                   api=_NoIncidents(), authenticate=authenticate) as web:
        status, me = whoami(web)
        assert (status, me["role"], me["grant"]) == (200, "consumer", "harbour-partner")
        error = asyncio.run(scenario())
        assert error["error"] == "unauthorized" and "revoked" in error["detail"]
        assert "partner contract ended" in error["detail"]
        status, refused = whoami(web)
        assert status == 401 and "revoked" in str(refused)


class _NoIncidents:
    """A dispatch API with nothing in it: the test is about who gets in, not what is there."""

    def incidents(self, claims, *, states, limit):  # noqa: ANN001, ANN201
        return {"incidents": []}
