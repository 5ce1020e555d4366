"""Tokens and role masking on the push feed, end to end: real Tansu, real websocket clients.

Each client presents a token signed by ``cityheart token``'s code (in the URL or in its
subscribe op); the feed masks what it sends by role with alerts.access.view, and refuses
forged, expired or missing tokens with an ``unauthorized`` error without disturbing others.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed

from alerts.access import view as access_view
from cityheart.token import feed_auth, issue
from connectors.feed.auth import MaskCache
from connectors.feed.protocol import FeedLog
from connectors.feed.server import FeedServer
from connectors.tokens import Claims, verify_token
from models.errors import ConnectorError
from settings.config import Settings
from tests.connectors.test_feed import (
    ROOT,
    alert,
    aread_until_heartbeat,
    cityheart,
    command_env,
    subscribe_op,
    vital,
)
from tests.support.feed import produce

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

SECRET = "test-secret-of-32-bytes-at-least!"
ENV = {"CITYHEART_TOKEN_SECRET": SECRET}
WATER, TRAFFIC = "water-authority", "traffic-police"


def token(settings: Settings, role: str, department: str | None = None, **options: Any) -> str:
    return issue(settings, role=role, department=department, sub=f"{role}-test", env=ENV,
                 **options)


def feed(settings: Settings, *, required: bool = False) -> FeedServer:
    settings = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"required": required})}
    )
    authenticate, view = feed_auth(settings, env=ENV)
    return FeedServer(settings, heartbeat_s=0.2, authenticate=authenticate, view=view)


def routed(record: tuple[str, bytes, bytes], departments: list[str]) -> tuple[str, bytes, bytes]:
    channel, key, value = record
    return channel, key, orjson.dumps({**orjson.loads(value), "departments": departments})


def located(record: tuple[str, bytes, bytes]) -> tuple[str, bytes, bytes]:
    """A vital that also names its devices and where they are (a viewer must see neither)."""
    channel, key, value = record
    extra = {"device_ids": ["aq-0001", "aq-0002"], "lat": 52.5201, "lon": 13.4049}
    return channel, key, orjson.dumps({**orjson.loads(value), **extra})


async def connect(url: str, token_: str | None = None, *, in_op: bool = False) -> ClientConnection:
    """A subscribed client; its token in the URL or (``in_op``) in the subscribe op."""
    ws = await async_connect(url if token_ is None or in_op else f"{url}?token={token_}")
    assert orjson.loads(await ws.recv())["type"] == "hello"
    op = orjson.loads(subscribe_op())
    if in_op and token_ is not None:
        op["token"] = token_
    await ws.send(orjson.dumps(op).decode())
    subscribed = await next_message(ws)
    assert subscribed["type"] == "subscribed", subscribed
    return ws


async def next_message(ws: ClientConnection) -> dict:
    """The next message that is not a heartbeat (one may go out before a reply)."""
    async with asyncio.timeout(10):
        while (message := orjson.loads(await ws.recv()))["type"] == "heartbeat":
            pass
    return message


async def refusal(ws: ClientConnection) -> dict:
    """The error a refused client gets, after checking the feed then closed the connection."""
    message = await next_message(ws)
    async with asyncio.timeout(10):
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
    return message


RECORDS = [
    located(vital("old-town", "pm25", 10)),
    routed(alert("a-water", "old-town", "pm25"), [WATER]),
    routed(alert("a-traffic", "riverside", "noise"), [TRAFFIC]),
    vital("riverside", "noise", 10),
]


def test_each_role_receives_what_access_rules_let_through(settings: Settings) -> None:
    async def scenario() -> tuple[dict[str, list[dict]], list[dict]]:
        async with feed(settings) as server:
            clients = {
                "viewer": await connect(server.url, token(settings, "viewer")),
                "water": await connect(server.url, token(settings, "dispatcher", WATER)),
                "operator": await connect(server.url, token(settings, "operator"), in_op=True),
                "anonymous": await connect(server.url),
            }
            await asyncio.to_thread(produce, settings, RECORDS)
            got = {name: await aread_until_heartbeat(ws, 4) for name, ws in clients.items()}
            late_viewer = await connect(server.url, token(settings, "viewer"), in_op=True)
            snapshot = await aread_until_heartbeat(late_viewer, 4)
            for ws in [*clients.values(), late_viewer]:
                await ws.close()
        return got, snapshot

    got, snapshot = asyncio.run(scenario())
    raw = {(m["type"], m["district"]): m for m in got["operator"]}
    assert len(raw) == 4 and raw[("vital", "old-town")]["device_ids"] == ["aq-0001", "aq-0002"]
    assert got["anonymous"] == got["operator"]
    for viewer in (got["viewer"], snapshot):
        assert [m["type"] for m in viewer] == ["vital", "vital"]
        pm25 = next(m for m in viewer if m["district"] == "old-town")
        assert not {"device_ids", "lat", "lon"} & set(pm25)
        assert (pm25["mean"], pm25["devices"], pm25["window_end"]) == (
            20.0, 2, "2026-11-26T08:00:10.000Z")
        assert not any("message" in m for m in viewer)
    water = got["water"]
    assert sorted((m["type"], m["district"]) for m in water) == [
        ("alert", "old-town"), ("vital", "old-town"), ("vital", "riverside")]
    assert [m["id"] for m in water if m["type"] == "alert"] == ["a-water"]
    assert next(m for m in water if m["type"] == "alert")["message"] == "pm25 critical in old-town"
    assert next(m for m in water
                if m["type"] == "vital" and m["district"] == "old-town")["device_ids"]


def test_forged_and_expired_tokens_are_refused_while_others_keep_receiving(
    settings: Settings,
) -> None:
    genuine = token(settings, "dispatcher", WATER)
    forged = issue(settings, role="operator", env={"CITYHEART_TOKEN_SECRET": "another" * 5})
    claims = verify_token(genuine, secret=SECRET, now=time.time()).payload()
    promoted = {**claims, "role": "operator"}
    promoted.pop("department")
    body = base64.urlsafe_b64encode(orjson.dumps(promoted)).rstrip(b"=").decode()
    tampered = f"{body}.{genuine.split('.')[1]}"  # a dispatcher's signature on operator claims
    expired = token(settings, "viewer", ttl_s=60, clock=lambda: time.time() - 3600)

    async def scenario() -> tuple[list[dict], list[dict]]:
        async with feed(settings) as server:
            good = await connect(server.url, genuine)
            refused = []
            for bad in (forged, tampered):
                ws = await async_connect(f"{server.url}?token={bad}")
                refused.append(await refusal(ws))
            ws = await async_connect(server.url)
            assert orjson.loads(await ws.recv())["type"] == "hello"
            await ws.send(orjson.dumps({**orjson.loads(subscribe_op()), "token": expired}))
            refused.append(await refusal(ws))
            assert server.clients == 1
            await asyncio.to_thread(produce, settings, RECORDS)
            received = await aread_until_heartbeat(good, 4)
            await good.close()
        return refused, received

    refused, received = asyncio.run(scenario())
    assert [m["error"] for m in refused] == ["unauthorized"] * 3
    assert "signature" in refused[0]["detail"] and "expired" in refused[2]["detail"]
    assert SECRET not in str(refused) and expired not in str(refused)
    assert sorted(m.get("id", m["type"]) for m in received) == ["a-water", "vital", "vital"]


def test_required_auth_refuses_a_client_without_a_token(settings: Settings) -> None:
    async def scenario() -> tuple[dict, list[dict]]:
        async with feed(settings, required=True) as server:
            viewer = await connect(server.url, token(settings, "viewer"))
            anonymous = await async_connect(server.url)
            assert orjson.loads(await anonymous.recv())["type"] == "hello"
            await anonymous.send(subscribe_op())
            refused = await refusal(anonymous)
            await asyncio.to_thread(produce, settings, RECORDS[:1])
            received = await aread_until_heartbeat(viewer, 1)
            await viewer.close()
        return refused, received

    refused, received = asyncio.run(scenario())
    assert refused["error"] == "unauthorized" and "requires a token" in refused["detail"]
    assert [m["seq"] for m in received] == [1]


def test_required_auth_without_a_token_check_fails_at_start(settings: Settings) -> None:
    required = settings.model_copy(update={"auth": settings.auth.model_copy(
        update={"required": True})})
    with pytest.raises(ConnectorError, match=r"auth\.required"):
        FeedServer(required)


# the command


def test_token_command_prints_a_token_that_verifies() -> None:
    config = str(ROOT / "config.yaml")
    args = cityheart("token", "--role", "dispatcher", "--department", WATER, "--sub", "ana",
                     "--ttl", "600", "--config", config)
    done = subprocess.run(args, env={**command_env(), **ENV}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    claims = verify_token(done.stdout.strip(), secret=SECRET, now=time.time())
    assert (claims.role, claims.department, claims.sub) == ("dispatcher", WATER, "ana")
    assert claims.exp - claims.iat == 600


@pytest.mark.parametrize("secret", [None, "short"])
def test_token_command_without_a_usable_secret_fails_naming_the_variable(
    secret: str | None,
) -> None:
    env = command_env() if secret is None else {**command_env(), "CITYHEART_TOKEN_SECRET": secret}
    args = cityheart("token", "--role", "viewer", "--config", str(ROOT / "config.yaml"))
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and not done.stdout
    assert "CITYHEART_TOKEN_SECRET" in done.stderr


def test_masked_bytes_are_made_once_per_role_and_department_per_message(
    settings: Settings,
) -> None:
    calls = []

    def counting_view(claims: Claims, message: Mapping[str, Any]) -> dict[str, Any] | None:
        calls.append(claims.role)
        return access_view(claims, message)

    log = FeedLog(10)
    record = located(vital("old-town", "pm25", 10))[2]
    message = log.append("vitals", record, "2026-11-26T08:00:11Z")
    masks = MaskCache(counting_view, limit=100)
    now = time.time()
    viewers = [verify_token(token(settings, "viewer"), secret=SECRET, now=now) for _ in range(50)]
    operator = verify_token(token(settings, "operator"), secret=SECRET, now=now)
    shown = [masks.shown(claims, message) for claims in viewers]
    assert calls == ["viewer"]
    assert all(m is shown[0] for m in shown) and shown[0] is not None
    assert b"aq-0001" not in shown[0].payload and b"aq-0001" in message.payload
    assert masks.shown(operator, message) is message and masks.shown(None, message) is message
