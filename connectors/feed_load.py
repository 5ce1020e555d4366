"""Load clients for the push feed, run as a worker process by ``cityheart bench --feed-clients``.

``python -m connectors.feed_load URL N SECONDS`` opens N clients on the feed at URL (at most
:data:`CONNECTS_AT_ONCE` handshakes at a time), subscribes each to vitals and alerts with a
snapshot, prints ``ready`` once all have subscribed (or failed), starts counting when it reads a
line on stdin, and after SECONDS prints one JSON object: every client's live seqs received in
the window, the delivery lag (arrival minus ``emitted_at``, seconds) of each of them, why clients
failed to subscribe, and the ``error`` codes and closes met.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import connect

from models.timefmt import from_iso

__all__ = ["run_worker"]

CONNECTS_AT_ONCE = 50
READY_TIMEOUT_S = 120.0
SUBSCRIBE = orjson.dumps({"op": "subscribe", "channels": ["vitals", "alerts"], "since": None})
DATA_TYPES = frozenset({"vital", "indicator", "alert"})


@dataclass
class _Tally:
    seqs: list[int] = field(default_factory=list)
    subscribed: bool = False
    failure: str | None = None


async def _client(url: str, tally: _Tally, gate: asyncio.Semaphore, window: list[float],
                  lags: list[float], stamps: dict[str, float], errors: dict[str, int]) -> None:
    try:
        async with gate:
            ws = await connect(url, open_timeout=60, compression=None, max_size=None,
                               ping_interval=None)
            await ws.recv()  # hello
            await ws.send(SUBSCRIBE.decode())
            answer = orjson.loads(await ws.recv())
            while answer.get("type") == "heartbeat":
                answer = orjson.loads(await ws.recv())
        if answer.get("type") != "subscribed":
            tally.failure = str(answer.get("error", answer.get("type")))
            await ws.close()
            return
        live_from = answer["last_seq"]
        tally.subscribed = True
        async for frame in ws:
            now = time.time()
            message = orjson.loads(frame)
            kind = message.get("type")
            if kind == "error":
                errors[message.get("error", "?")] = errors.get(message.get("error", "?"), 0) + 1
                continue
            if kind not in DATA_TYPES or message["seq"] <= live_from:
                continue
            if not window or not window[0] <= now <= window[1]:
                continue
            tally.seqs.append(message["seq"])
            emitted = message.get("emitted_at")
            if isinstance(emitted, str):
                at = stamps.get(emitted)
                if at is None:
                    at = stamps[emitted] = from_iso(emitted)
                lags.append(now - at)
    except Exception as exc:  # noqa: BLE001 (a bench counts every way a client fails)
        if not tally.subscribed:
            tally.failure = type(exc).__name__
        else:
            name = f"closed: {type(exc).__name__}"
            errors[name] = errors.get(name, 0) + 1


async def run_worker(url: str, count: int, seconds: float) -> dict[str, Any]:
    """Run ``count`` clients on ``url``; their figures over ``seconds`` after stdin says go."""
    tallies = [_Tally() for _ in range(count)]
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    window: list[float] = []
    lags: list[float] = []
    stamps: dict[str, float] = {}
    errors: dict[str, int] = {}
    tasks = [asyncio.create_task(_client(url, t, gate, window, lags, stamps, errors))
             for t in tallies]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not all(t.subscribed or t.failure for t in tallies):
        await asyncio.sleep(0.2)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.to_thread(sys.stdin.readline)
    start = time.time()
    window.extend((start, start + seconds))
    await asyncio.sleep(seconds + 1.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    failures: dict[str, int] = {}
    for t in tallies:
        if t.failure:
            failures[t.failure] = failures.get(t.failure, 0) + 1
    return {"seqs": [t.seqs for t in tallies if t.subscribed], "lags": lags,
            "failures": failures, "errors": errors}


if __name__ == "__main__":
    report = asyncio.run(run_worker(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
