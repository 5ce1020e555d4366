"""Abuse of the push feed, end to end: real Tansu, real websocket clients, the watch command.

A role asking for a channel it may see nothing of is refused with ``forbidden_channel`` and can
subscribe to the rest; a client flooding ops or sending huge frames is cut off (1008, 1009);
refused tokens are logged without their text; ``cityheart watch --token`` works against a feed
with ``auth.required``. In every case the well-behaved clients keep receiving everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed

from alerts.access import may_subscribe, view
from cityheart.token import feed_auth, issue
from cityheart.watch import run_watch
from connectors.feed.server import MAX_FRAME_BYTES, FeedServer
from connectors.tokens import Claims
from models.errors import ConnectorError
from settings.config import Settings
from settings.loader import dump
from tests.connectors.test_feed import (
    ROOT,
    alert,
    aread_until_heartbeat,
    asubscribe,
    cityheart,
    command_env,
    subscribe_op,
    vital,
)
from tests.connectors.test_feed_auth import ENV, RECORDS, WATER, next_message, refusal, token
from tests.support.feed import FeedThread, produce

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


def guarded(settings: Settings) -> dict[str, Any]:
    """FeedServer options with tokens, masking and channel checks, as ``cityheart feed`` runs."""
    authenticate, view_ = feed_auth(settings, env=ENV)
    return {"authenticate": authenticate, "view": view_, "may_subscribe": may_subscribe,
            "heartbeat_s": 0.2}


def requiring(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"required": True})}
    )


async def hello_with(url: str, token_: str) -> tuple[ClientConnection, dict]:
    ws = await async_connect(f"{url}?token={token_}")
    return ws, orjson.loads(await ws.recv())


# channels a role may not see


def test_may_subscribe_allows_exactly_the_channels_whose_messages_a_role_can_see() -> None:
    def claims(role: str, department: str | None = None) -> Claims:
        return Claims(role=role, sub="t", iat=0, exp=1, department=department)

    samples = {
        "vitals": {"type": "vital", "district": "old-town", "kind": "pm25", "mean": 1.0},
        "alerts": {"type": "alert", "district": "old-town", "kind": "pm25", "departments": [WATER]},
        "incidents": {"type": "incident", "id": "i1", "district": "old-town", "kind": "pm25",
                      "departments": [WATER]},
        "kpis": {"type": "kpi", "district": "city", "kind": WATER, "department": WATER},
    }
    roles = [claims("operator"), claims("dispatcher", WATER), claims("viewer")]
    allowed = {c.role: [ch for ch in samples if may_subscribe(c, ch)] for c in roles}
    assert allowed == {"operator": ["vitals", "alerts", "incidents", "kpis"],
                       "dispatcher": ["vitals", "alerts", "incidents", "kpis"],
                       "viewer": ["vitals", "incidents"]}
    for who in roles:  # a refused channel is one whose messages view would hide anyway
        for channel, message in samples.items():
            if not may_subscribe(who, channel):
                assert view(who, message) is None


def test_a_viewer_asking_for_alerts_is_refused_and_can_subscribe_to_the_rest(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.feed.server")
    viewer_token = token(settings, "viewer")

    async def scenario() -> dict[str, Any]:
        async with FeedServer(settings, **guarded(settings)) as server:
            viewer, hello = await hello_with(server.url, viewer_token)
            await viewer.send(subscribe_op(channels=["vitals", "alerts"]))
            refused = await next_message(viewer)
            await viewer.send(subscribe_op(channels=["vitals"]))
            subscribed = await next_message(viewer)
            water, _ = await hello_with(server.url, token(settings, "dispatcher", WATER))
            await water.send(subscribe_op(channels=["alerts"]))
            water_subscribed = await next_message(water)
            anonymous = await asubscribe(server.url, channels=["alerts"])  # no token: as before
            await asyncio.to_thread(produce, settings, RECORDS)
            got = {name: await aread_until_heartbeat(ws, len(RECORDS))
                   for name, ws in (("viewer", viewer), ("water", water), ("anon", anonymous))}
            for ws in (viewer, water, anonymous):
                await ws.close()
        return {"hello": hello, "refused": refused, "subscribed": subscribed,
                "water_subscribed": water_subscribed, **got}

    seen = asyncio.run(scenario())
    assert seen["hello"]["channels"] == ["vitals", "incidents"]
    refused = seen["refused"]
    assert refused["type"] == "error" and refused["error"] == "forbidden_channel"
    assert "'viewer'" in refused["detail"] and "'alerts'" in refused["detail"]
    assert seen["subscribed"]["type"] == "subscribed" and seen["subscribed"]["channels"] == [
        "vitals"]
    assert [(m["type"], m["district"]) for m in seen["viewer"]] == [
        ("vital", "old-town"), ("vital", "riverside")]
    assert seen["water_subscribed"]["type"] == "subscribed"
    assert [m["id"] for m in seen["water"]] == ["a-water"]
    assert [m["id"] for m in seen["anon"]] == ["a-water", "a-traffic"]
    logged = [r for r in caplog.records if r.name == "connectors.feed.server"
              and "may not subscribe to channel 'alerts'" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.INFO
    assert viewer_token not in caplog.text


# floods and huge frames


async def flood(url: str, ops: int) -> tuple[list[dict], int | None]:
    """Send ``ops`` subscribe ops as fast as possible; what came back and the close code."""
    ws = await async_connect(url)
    received: list[dict] = []

    async def read() -> int | None:
        try:
            while True:
                received.append(orjson.loads(await ws.recv()))
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None

    reader = asyncio.create_task(read())
    with contextlib.suppress(ConnectionClosed):
        for _ in range(ops):
            await ws.send(subscribe_op(channels=["alerts"]))
    async with asyncio.timeout(20):
        code = await reader
    return received, code


async def oversized(url: str) -> int | None:
    """Send one frame over the feed's limit; the close code the feed answers with."""
    ws = await async_connect(url, max_size=None)
    assert orjson.loads(await ws.recv())["type"] == "hello"
    with contextlib.suppress(ConnectionClosed):
        await ws.send("x" * (MAX_FRAME_BYTES + 1))
    try:
        async with asyncio.timeout(20):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None


def test_a_flooding_client_is_cut_off_while_another_receives_every_message_in_order(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.feed.server")
    burst = [vital(d, k, s) for s in range(1, 101) for d, k in (("old-town", "pm25"),
                                                                ("riverside", "noise"))]
    burst += [alert(f"a{i}", "harbour", "pm25") for i in range(50)]

    async def scenario() -> tuple[list[dict], tuple[list[dict], int | None], int | None, int,
                                  float]:
        async with FeedServer(settings, heartbeat_s=0.2) as server:
            good = await asubscribe(server.url)
            producing = asyncio.create_task(asyncio.to_thread(produce, settings, burst))
            started = time.monotonic()
            flooded, big = await asyncio.gather(flood(server.url, 1000), oversized(server.url))
            took = time.monotonic() - started
            await producing
            got = await aread_until_heartbeat(good, len(burst))
            still = server.clients
            await good.close()
        return got, flooded, big, still, took

    got, (flooded, code), big_code, still, took = asyncio.run(scenario())
    assert [m["seq"] for m in got] == list(range(1, len(burst) + 1))
    assert [m.get("id") for m in got if m["type"] == "alert"] == [f"a{i}" for i in range(50)]
    errors = [m for m in flooded if m["type"] == "error"]
    assert [m["error"] for m in errors] == ["rate_limited"] and code == 1008
    assert sum(m["type"] == "subscribed" for m in flooded) <= 25  # at most the burst's answers
    assert took < 8  # cut off at once, not after the close handshake's timeout
    assert big_code == 1009
    assert still == 1
    cut = [r for r in caplog.records if "ops at once" in r.getMessage()]
    assert len(cut) == 1 and cut[0].levelno == logging.WARNING


# refused tokens


def test_refused_tokens_are_logged_without_their_text(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # even debug logs must not carry a token
    required = requiring(settings)
    good_token = token(settings, "viewer")
    forged = issue(settings, role="operator", env={"CITYHEART_TOKEN_SECRET": "another" * 5})
    expired = token(settings, "viewer", ttl_s=60, clock=lambda: time.time() - 3600)

    async def scenario() -> tuple[list[dict], list[dict], list[int | None]]:
        async with FeedServer(required, **guarded(required)) as server:
            good, _ = await hello_with(server.url, good_token)
            await good.send(subscribe_op())
            assert (await next_message(good))["type"] == "subscribed"
            at_connect = await async_connect(f"{server.url}?token={expired}")
            in_op = await async_connect(server.url)
            assert orjson.loads(await in_op.recv())["type"] == "hello"
            await in_op.send(orjson.dumps({**orjson.loads(subscribe_op()), "token": forged}))
            refused = [await refusal(at_connect), await refusal(in_op)]
            codes = [at_connect.close_code, in_op.close_code]
            await asyncio.to_thread(produce, settings, RECORDS[:1])
            received = await aread_until_heartbeat(good, 1)
            await good.close()
        return refused, received, codes

    refused, received, codes = asyncio.run(scenario())
    assert [m["error"] for m in refused] == ["unauthorized"] * 2 and codes == [1008, 1008]
    assert "expired" in refused[0]["detail"] and "signature" in refused[1]["detail"]
    assert [m["seq"] for m in received] == [1]
    ours = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    text = "\n".join(r.getMessage() for r in ours)
    for secret in (good_token, expired, forged, *(t.split(".")[1] for t in (expired, forged))):
        assert secret not in text
    refusals = [r for r in ours if "token refused" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.WARNING] * 2


# cityheart watch --token


@pytest.fixture
def city_yaml(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(dump(settings)), encoding="utf-8")
    return path


def watch_args(url: str, config: Path, *extra: str) -> list[str]:
    return cityheart("watch", "--url", url, "--json", "--timeout", "30", "--config", str(config),
                     *extra)


def test_watch_with_a_token_reads_a_feed_that_requires_one(
    settings: Settings, city_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    required = requiring(settings)
    produce(settings, RECORDS)
    water = token(settings, "dispatcher", WATER)
    watch = {"districts": [], "kinds": [], "as_json": True, "timeout_s": 30}
    with FeedThread(required, **guarded(required)) as feed:
        done = subprocess.run(watch_args(feed.url, city_yaml, "--count", "3"),
                              env={**command_env(), "CITYHEART_TOKEN": water},
                              capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
        code = run_watch(feed.url, channels=["vitals", "alerts"], fit_channels=True, count=2,
                         token=token(settings, "viewer"), **watch)
        with pytest.raises(ConnectorError, match="forbidden_channel") as explicit:
            run_watch(feed.url, channels=["alerts"], count=1, token=token(settings, "viewer"),
                      **watch)
        with pytest.raises(ConnectorError, match="requires a token"):
            run_watch(feed.url, channels=["vitals"], count=1, **watch)
    assert done.returncode == 0, done.stderr
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted((m["type"], m.get("id", m["district"])) for m in lines) == [
        ("alert", "a-water"), ("vital", "old-town"), ("vital", "riverside")]
    assert code == 0
    viewer_lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((m["type"], m["district"]) for m in viewer_lines) == [
        ("vital", "old-town"), ("vital", "riverside")]
    assert "'viewer'" in str(explicit.value)


def test_watch_with_a_refused_token_exits_1_with_one_line_naming_the_reason(
    settings: Settings, city_yaml: Path
) -> None:
    required = requiring(settings)
    expired = token(settings, "viewer", ttl_s=60, clock=lambda: time.time() - 3600)
    with FeedThread(required, **guarded(required)) as feed:
        started = time.monotonic()
        done = subprocess.run(watch_args(feed.url, city_yaml, "--token", expired),
                              env=command_env(), capture_output=True, text=True, timeout=60,
                              cwd=ROOT, check=False)
        took = time.monotonic() - started
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: feed at {feed.url}: ") and "unauthorized" in lines[0]
    assert "expired" in lines[0] and expired not in done.stderr
    assert took < 25  # refused at once, not retried until --timeout
