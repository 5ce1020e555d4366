"""The websocket push feed end to end: real Tansu, real websocket clients, the watch command.

Records go into the test's own ``vitals``/``alerts`` topics in the wire format the flow writes;
the feed server runs on the test's free port, in the test's event loop or in a thread.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from itertools import islice
from pathlib import Path

import orjson
import pytest
import yaml
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from cityheart.runtime.servers import free_port
from cityheart.watch import run_watch
from connectors.feed.client import FeedClient
from connectors.feed.protocol import CHANNELS
from connectors.feed.server import FeedServer
from connectors.kafka import ReliableProducer
from models.errors import ConnectorError
from settings.config import Settings
from settings.loader import dump
from tests.support.feed import FeedThread, produce
from tests.support.relay import CuttableRelay

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
T0 = "2026-11-26T08:00:00.000Z"


# records in the flow's wire format


def vital(district: str, kind: str, end_s: int, mean: float = 20.0) -> tuple[str, bytes, bytes]:
    end = f"2026-11-26T08:{end_s // 60:02d}:{end_s % 60:02d}.000Z"
    value = {
        "district": district,
        "kind": kind,
        "unit": "ug/m3",
        "window_start": T0,
        "window_end": end,
        "count": 4,
        "mean": mean,
        "min": mean - 1,
        "max": mean + 1,
        "last": mean,
        "devices": 2,
        "late": 0,
        "emitted_at": end,
    }
    return "vitals", f"{district}/{kind}".encode(), orjson.dumps(value)


def alert(alert_id: str, district: str, kind: str) -> tuple[str, bytes, bytes]:
    value = {
        "id": alert_id,
        "rule": f"threshold:{kind}",
        "district": district,
        "kind": kind,
        "severity": "critical",
        "value": 160.2,
        "threshold": 150.5,
        "direction": "above",
        "stat": "mean",
        "unit": "ug/m3",
        "window_start": T0,
        "window_end": T0,
        "ts": T0,
        "emitted_at": T0,
        "message": f"{kind} critical in {district}",
    }
    return "alerts", alert_id.encode(), orjson.dumps(value)


def subscribe_op(since: int | None = None, **filters: list[str]) -> str:
    return orjson.dumps({"op": "subscribe", "since": since, **filters}).decode()


async def aread_until_heartbeat(
    ws: AsyncConnection, seq: int, received: list[dict] | None = None
) -> list[dict]:
    """Every data message up to a heartbeat proving all messages through ``seq`` were sent
    (appended to ``received`` as they come, when given)."""
    received = [] if received is None else received
    async with asyncio.timeout(30):
        while True:
            message = orjson.loads(await ws.recv())
            if message["type"] == "heartbeat" and message["last_seq"] >= seq:
                return received
            if message["type"] != "heartbeat":
                received.append(message)


async def asubscribe(
    url: str, since: int | None = None, *, options: dict | None = None, **filters: list[str]
) -> AsyncConnection:
    ws = await async_connect(url, **(options or {}))
    hello = orjson.loads(await ws.recv())
    assert hello["type"] == "hello" and hello["channels"] == list(CHANNELS)
    await ws.send(subscribe_op(since, **filters))
    subscribed = orjson.loads(await ws.recv())
    assert subscribed["type"] == "subscribed", subscribed
    return ws


# the server


def test_clients_receive_only_their_districts_kinds_and_channels(settings: Settings) -> None:
    async def scenario() -> None:
        async with FeedServer(settings, heartbeat_s=0.2) as feed:
            pm25_old_town = await asubscribe(feed.url, districts=["old-town"], kinds=["pm25"])
            alerts_only = await asubscribe(feed.url, channels=["alerts"])
            everything = await asubscribe(feed.url)
            records = [
                vital("old-town", "pm25", 10),
                vital("old-town", "noise", 10),
                vital("riverside", "pm25", 10),
                alert("a1", "riverside", "pm25"),
                alert("a2", "old-town", "pm25"),
            ]
            await asyncio.to_thread(produce, settings, records)
            got = [await aread_until_heartbeat(ws, 5) for ws in (pm25_old_town, alerts_only)]
            firehose = await aread_until_heartbeat(everything, 5)
            for ws in (pm25_old_town, alerts_only, everything):
                await ws.close()
        assert sorted((m["type"], m["district"], m["kind"]) for m in got[0]) == [
            ("alert", "old-town", "pm25"),
            ("vital", "old-town", "pm25"),
        ]
        assert [m["id"] for m in got[1]] == ["a1", "a2"]
        pm25 = next(m for m in got[0] if m["type"] == "vital")
        assert sorted(m["seq"] for m in firehose) == [1, 2, 3, 4, 5]
        assert (pm25["mean"], pm25["unit"], pm25["window_end"]) == (
            20.0,
            "ug/m3",
            "2026-11-26T08:00:10.000Z",
        )
        assert pm25["time"].endswith("Z")

    asyncio.run(scenario())


def test_indicator_records_reach_clients_subscribed_to_the_city_and_an_indicator(
    settings: Settings,
) -> None:
    from models.vitals.records import IndicatorRecord

    def indicator(district: str, name: str, value: float) -> tuple[str, bytes, bytes]:
        record = IndicatorRecord(district, name, value, "AQI", "Good", 80.0, 1795680000.0,
                                 1795680010.0, 12, 1.0, True)
        return "vitals", record.key, orjson.dumps(record.record(emitted_at=1795680011.0))

    async def scenario() -> list[dict]:
        async with FeedServer(settings, heartbeat_s=0.2) as feed:
            ws = await asubscribe(feed.url, districts=["city"], kinds=["aqi"])
            records = [vital("old-town", "pm25", 10), indicator("old-town", "aqi", 57),
                       indicator("city", "aqi", 61), indicator("city", "noise", 55)]
            await asyncio.to_thread(produce, settings, records)
            got = await aread_until_heartbeat(ws, 4)
            await ws.close()
            return got

    (message,) = asyncio.run(scenario())
    assert (message["type"], message["district"], message["kind"], message["value"]) == (
        "indicator", "city", "aqi", 61)


def test_new_client_gets_a_snapshot_of_latest_vitals_and_recent_alerts(settings: Settings) -> None:
    produce(
        settings,
        [
            vital("old-town", "pm25", 10, 11.0),
            vital("old-town", "pm25", 20, 12.0),
            alert("a1", "old-town", "pm25"),
            vital("harbour", "noise", 10),
        ],
    )

    async def scenario() -> list[dict]:
        async with FeedServer(settings) as feed:  # starts after the records: catches up first
            assert feed.log.last_seq == 4
            async with async_connect(feed.url) as ws:
                assert orjson.loads(await ws.recv())["last_seq"] == 4
                await ws.send(subscribe_op(None))
                subscribed = orjson.loads(await ws.recv())
                assert (subscribed["last_seq"], subscribed["replay"]) == (4, 3)
                return [orjson.loads(await ws.recv()) for _ in range(3)]

    replay = asyncio.run(scenario())  # the two topics interleave in any order: compare sets
    assert [m["seq"] for m in replay] == sorted(m["seq"] for m in replay)
    assert {(m["type"], m["district"], m.get("mean", m.get("id"))) for m in replay} == {
        ("vital", "old-town", 12.0),
        ("alert", "old-town", "a1"),
        ("vital", "harbour", 20.0),
    }


def test_snapshots_asked_at_once_are_equal_and_a_new_message_refreshes_them(
    settings: Settings,
) -> None:
    produce(settings, [vital("old-town", "pm25", 10, 11.0), alert("a1", "old-town", "pm25")])

    async def snapshot(url: str, count: int) -> list[tuple[str, int, object]]:
        async with async_connect(url) as ws:
            await ws.recv()  # hello
            await ws.send(subscribe_op(None, channels=["vitals", "alerts"]))
            assert orjson.loads(await ws.recv())["replay"] == count
            messages = [orjson.loads(await ws.recv()) for _ in range(count)]
            return [(m["type"], m["seq"], m.get("mean", m.get("id"))) for m in messages]

    async def scenario() -> tuple[list, list, list]:
        async with FeedServer(settings) as feed:
            first, second = await asyncio.gather(snapshot(feed.url, 2), snapshot(feed.url, 2))
            await asyncio.to_thread(produce, settings, [vital("old-town", "pm25", 20, 12.0)])
            async with asyncio.timeout(30):
                while feed.log.last_seq < 3:
                    await asyncio.sleep(0.01)
            return first, second, await snapshot(feed.url, 2)

    first, second, later = asyncio.run(scenario())
    assert first == second
    assert {(kind, what) for kind, _, what in first} == {("vital", 11.0), ("alert", "a1")}
    assert ("vital", 3, 12.0) in later and len(later) == 2


def test_resume_with_since_mid_stream_has_no_gap_and_no_duplicate(settings: Settings) -> None:
    subscribed = threading.Event()

    def produce_around_the_subscribe() -> int:
        """Trickle records until ten batches after the client subscribed; return how many."""
        producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=2)
        produced = after = 0
        while after < 10 and produced < 5000:
            for _ in range(10):
                produced += 1
                _, key, value = vital("old-town", "pm25", produced % 3600)
                producer.produce(settings.kafka.topics.vitals, value, key=key)
            producer.flush(15)
            after += subscribed.is_set()
        return produced

    async def until_numbered(feed: FeedServer, seq: int) -> None:
        async with asyncio.timeout(60):
            while feed.log.last_seq < seq:
                await asyncio.sleep(0.01)

    async def scenario() -> tuple[list[int], int, int]:
        roomy = settings.model_copy(
            update={"feed": settings.feed.model_copy(update={"backlog": 10_000})}
        )
        async with FeedServer(roomy, heartbeat_s=0.2) as feed:
            await asyncio.to_thread(produce, settings, [vital("harbour", "noise", 0)])
            await until_numbered(feed, 1)  # the feed is reading: now start the stream
            producing = asyncio.create_task(asyncio.to_thread(produce_around_the_subscribe))
            await until_numbered(feed, 40)
            ws = await asubscribe(feed.url, since=20, kinds=["pm25"])
            at_subscribe = feed.log.last_seq
            subscribed.set()
            total = await producing + 1
            received = await aread_until_heartbeat(ws, total)
            await ws.close()
            return [m["seq"] for m in received], at_subscribe, total

    seqs, at_subscribe, total = asyncio.run(scenario())
    assert at_subscribe < total  # some came in the replay, the rest live
    assert seqs == list(range(21, total + 1))


def test_unknown_path_is_refused_with_404(settings: Settings) -> None:
    any_port = settings.model_copy(update={"feed": settings.feed.model_copy(update={"port": 0})})

    async def scenario() -> None:
        async with FeedServer(any_port) as feed:
            assert feed.port != 0 and feed.url == f"ws://127.0.0.1:{feed.port}/feed"
            with pytest.raises(InvalidStatus) as caught:
                await async_connect(f"ws://127.0.0.1:{feed.port}/nope")
            assert caught.value.response.status_code == 404
            assert b"/feed" in caught.value.response.body
            with pytest.raises(ConnectorError, match="404") as refused:
                await asyncio.to_thread(
                    lambda: FeedClient(f"ws://127.0.0.1:{feed.port}/nope").next_message()
                )
            assert "/nope" in str(refused.value)

    asyncio.run(scenario())


def test_bad_ops_get_an_error_and_the_connection_stays_usable(settings: Settings) -> None:
    async def scenario() -> list[dict]:
        async with FeedServer(settings) as feed, async_connect(feed.url) as ws:
            await ws.recv()  # hello
            answers = []
            for frame in (
                "hello?",
                '{"op": "unsubscribe"}',
                subscribe_op(districts=["atlantis"]),
                subscribe_op(since=5),
                subscribe_op(),
            ):
                await ws.send(frame)
                answers.append(orjson.loads(await ws.recv()))
            return answers

    answers = asyncio.run(scenario())
    assert [a["type"] for a in answers] == ["error"] * 4 + ["subscribed"]
    assert [a["error"] for a in answers[:4]] == [
        "invalid_json",
        "unknown_op",
        "unknown_district",
        "resync",
    ]
    assert "'atlantis'" in answers[2]["detail"]
    assert "since=5" in answers[3]["detail"]


def stalled_socket(port: int) -> socket.socket:
    """A connected socket with a tiny receive buffer, for a client that stops reading."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def test_slow_client_is_told_to_resync_and_never_slows_the_others(settings: Settings) -> None:
    count, big = 3000, "x" * 4000  # 12 MB: more than its queue and socket buffers hold
    records = []
    for n in range(count):
        channel, key, value = alert(f"a{n}", "old-town", "pm25")
        records.append((channel, key, orjson.dumps({**orjson.loads(value), "message": big})))

    async def scenario() -> tuple[list[int], dict, int | None]:
        async with FeedServer(settings, heartbeat_s=0.2, outbox_limit=1000) as feed:
            stalled = await asubscribe(  # stops reading after one frame
                feed.url, options={"sock": stalled_socket(feed.port), "max_queue": 1}
            )
            fast = await asubscribe(feed.url)
            got: list[dict] = []
            reading = asyncio.create_task(aread_until_heartbeat(fast, count, got))
            for start in range(0, count, 100):  # at the pace of a healthy client, however
                async with asyncio.timeout(30):  # busy the machine: it is never far behind
                    while len(got) < start - 100:
                        await asyncio.sleep(0.01)
                await asyncio.to_thread(produce, settings, records[start : start + 100])
            seqs = [m["seq"] for m in await reading]
            last: dict = {}
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(30):
                    while True:
                        last = orjson.loads(await stalled.recv())
            await fast.close()
            return seqs, last, closed.value.rcvd.code if closed.value.rcvd else None

    seqs, last, code = asyncio.run(scenario())
    assert seqs == list(range(1, count + 1))
    assert last["type"] == "error" and last["error"] == "resync"
    assert "since=" in last["detail"]
    assert code == 1013


# the client


def test_client_resumes_after_a_network_cut_with_no_gap_and_no_duplicate(
    settings: Settings,
) -> None:
    produce(
        settings,
        [
            vital("old-town", "pm25", 10),
            vital("old-town", "pm25", 20),
            alert("a1", "old-town", "pm25"),
        ],
    )
    with FeedThread(settings, heartbeat_s=0.2) as feed, CuttableRelay(feed.port) as link:
        url = f"ws://127.0.0.1:{link.port}{settings.feed.path}"
        with FeedClient(url, kinds=["pm25"], since=0) as client:
            received = list(islice(client.messages(timeout=30), 3))
            link.cut()
            # the same key twice: a snapshot would keep only the newer, a resume keeps both
            produce(
                settings,
                [
                    vital("old-town", "pm25", 30),
                    vital("old-town", "pm25", 40),
                    alert("a2", "old-town", "pm25"),
                ],
            )
            received += islice(client.messages(timeout=30), 3)
            assert client.connections == 2
            assert client.epoch == feed.epoch
    assert [m["seq"] for m in received] == [1, 2, 3, 4, 5, 6]


def test_client_carries_on_across_a_feed_restart_without_repeating_itself(
    settings: Settings,
) -> None:
    produce(
        settings,
        [
            vital("old-town", "pm25", 10),
            vital("harbour", "noise", 10),
            alert("a1", "harbour", "noise"),
        ],
    )
    url = settings.feed.url
    with FeedClient(url, connect_timeout=10) as client:
        with FeedThread(settings) as feed:
            before = list(islice(client.messages(timeout=30), 3))
            first_epoch = feed.epoch
        after: list[dict] = []
        reader = threading.Thread(
            target=lambda: after.extend(islice(client.messages(timeout=60), 3))
        )
        reader.start()  # finds the feed gone and keeps retrying
        produce(
            settings,
            [
                vital("old-town", "pm25", 20),
                vital("harbour", "noise", 20),
                alert("a2", "harbour", "noise"),
            ],
        )
        with FeedThread(settings) as feed:
            reader.join(60)
            assert client.epoch == feed.epoch != first_epoch
    assert {(m["district"], m.get("id", m["window_end"])) for m in before} == {
        ("old-town", "2026-11-26T08:00:10.000Z"),
        ("harbour", "2026-11-26T08:00:10.000Z"),
        ("harbour", "a1"),
    }
    assert {(m["district"], m.get("id", m["window_end"])) for m in after} == {
        ("old-town", "2026-11-26T08:00:20.000Z"),
        ("harbour", "2026-11-26T08:00:20.000Z"),
        ("harbour", "a2"),
    }


def test_client_that_cannot_resume_falls_back_to_a_snapshot(settings: Settings) -> None:
    produce(settings, [vital("old-town", "pm25", 10), vital("old-town", "pm25", 20)])
    with FeedThread(settings) as feed, FeedClient(feed.url, since=999) as client:
        received = list(islice(client.messages(timeout=30), 1))
    assert [(m["seq"], m["window_end"]) for m in received] == [(2, "2026-11-26T08:00:20.000Z")]


def test_client_gives_up_with_the_url_when_nothing_listens() -> None:
    url = f"ws://127.0.0.1:{free_port()}/feed"
    with pytest.raises(ConnectorError) as caught:
        FeedClient(url, connect_timeout=0.5).next_message()
    assert url in str(caught.value) and "0.5 s" in str(caught.value)


# the commands


@pytest.fixture
def config_file(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(dump(settings)), encoding="utf-8")
    return path


def command_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CITYHEART_")}


def cityheart(*args: str) -> list[str]:
    return [sys.executable, "-m", "cityheart", *args]


def test_watch_json_prints_count_lines_with_type_and_district(
    settings: Settings, config_file: Path
) -> None:
    produce(
        settings,
        [
            vital("old-town", "pm25", 10),
            vital("riverside", "pm25", 10),
            vital("harbour", "pm25", 10),
            alert("a1", "riverside", "pm25"),
        ],
    )
    with FeedThread(settings):
        done = subprocess.run(
            cityheart(
                "watch",
                "--json",
                "--count",
                "2",
                "--district",
                "riverside",
                "--timeout",
                "60",
                "--config",
                str(config_file),
            ),
            capture_output=True,
            text=True,
            timeout=90,
            env=command_env(),
            cwd=ROOT,
        )
    assert done.returncode == 0, done.stderr
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted((m["type"], m["district"]) for m in lines) == [
        ("alert", "riverside"),
        ("vital", "riverside"),
    ]


def test_watch_prints_one_readable_line_per_message(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    produce(settings, [vital("old-town", "pm25", 10, mean=18.25), alert("a1", "harbour", "noise")])
    with FeedThread(settings) as feed:
        code = run_watch(
            feed.url,
            channels=["vitals", "alerts"],
            districts=[],
            kinds=[],
            as_json=False,
            count=2,
            timeout_s=30,
        )
    assert code == 0
    lines = sorted(capsys.readouterr().out.splitlines())
    assert len(lines) == 2
    vital_line = next(line for line in lines if "old-town" in line)
    assert (
        "pm25" in vital_line
        and "mean 18.25" in vital_line
        and "min 17.25" in vital_line
        and "max 19.25" in vital_line
        and vital_line.endswith("ug/m3")
    )
    assert vital_line.startswith("2026-11-26T08:00:10.000Z")
    alert_line = next(line for line in lines if "harbour" in line)
    assert "CRITICAL" in alert_line and "noise critical in harbour" in alert_line


def test_watch_exits_nonzero_naming_the_url_when_the_feed_is_unreachable(config_file: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/feed"
    done = subprocess.run(
        cityheart("watch", "--url", url, "--timeout", "1", "--config", str(config_file)),
        capture_output=True,
        text=True,
        timeout=60,
        env=command_env(),
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert f"error: feed at {url}" in done.stderr


def test_feed_command_announces_its_url_then_stops_cleanly_on_sigterm(
    settings: Settings, config_file: Path
) -> None:
    process = subprocess.Popen(
        cityheart("feed", "--config", str(config_file)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=command_env(),
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == f"feed: {settings.feed.url}\n"
        with connect(settings.feed.url, open_timeout=10) as ws:
            assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out == ""
    assert f"feed: {settings.feed.url}" in err  # the log line too


def test_watch_exits_quietly_with_0_on_ctrl_c(settings: Settings, config_file: Path) -> None:
    produce(settings, [vital("old-town", "pm25", 10)])
    with FeedThread(settings):
        process = subprocess.Popen(
            cityheart("watch", "--config", str(config_file)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=command_env(),
            cwd=ROOT,
        )
        try:
            assert process.stdout is not None
            assert "old-town" in process.stdout.readline()  # it is watching, blocked on the feed
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
