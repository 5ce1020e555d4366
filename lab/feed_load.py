"""Load clients for the push feed, run as a worker process by ``cityheart bench --feed-clients``.

``python -m lab.feed_load URL N SECONDS [L [batch]]`` opens N clients on the feed at URL (at
most :data:`CONNECTS_AT_ONCE` handshakes at a time), subscribes each to vitals and alerts with a
snapshot (with ``batch``: ``batch: true``; a ``batch`` message counts as the messages it holds),
prints ``ready`` once all have subscribed (or failed), starts counting when it reads a line on
stdin, and after SECONDS prints one JSON object: every client's live seqs received in the
window, the delivery lag (arrival minus ``emitted_at``, seconds) of each of them (read by the
first L clients only, all by default: the others only count), why clients failed to
subscribe, the ``error`` codes and closes met, and the CPU seconds the worker used while
counting (the window and 1 s after it). A counting client keeps the ``batch`` messages it
receives and reads their seqs after the window (not counted in that CPU); single messages it
reads as they come.
The clients speak websocket themselves (handshake, frames read in bulk and parsed in place, pings
answered) and read a data message's type, seq and ``emitted_at`` straight from its bytes
(:func:`data_fields`; anything else is parsed as JSON), at a fraction of a full client
library's CPU per frame, so that the clients do not limit the measurement.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.frames import Frame, Opcode

from models.timefmt import from_iso

__all__ = ["run_worker"]

CONNECTS_AT_ONCE = 50
READY_TIMEOUT_S = 120.0
HANDSHAKE_TIMEOUT_S = 60.0
READ_BYTES = 262_144
SUBSCRIBE = orjson.dumps({"op": "subscribe", "channels": ["vitals", "alerts"], "since": None})
SUBSCRIBE_BATCH = orjson.dumps({"op": "subscribe", "channels": ["vitals", "alerts"],
                                "since": None, "batch": True})
DATA_TYPES = frozenset({"vital", "indicator", "alert"})
_DATA_HEAD = re.compile(rb'\{"type":"(vital|indicator|alert)","seq":(\d+)[,}]')
_EMITTED = b'"emitted_at":"'
_BATCH = b'{"type":"batch","messages":['
_SEQ_IN_BATCH = re.compile(rb'\{"type":"(?:vital|indicator|alert)","seq":(\d+)[,}]')


@dataclass
class _Tally:
    seqs: list[int] = field(default_factory=list)
    subscribed: bool = False
    failure: str | None = None
    live_from: int = 0
    batches: list[bytes] = field(default_factory=list)
    """A counting client's batch messages as received, read for their seqs after the window
    (:meth:`settle`), so that the crowd of counting clients spends the window receiving."""

    def settle(self) -> None:
        """Read the seqs of the batches kept, and put every seq in order."""
        for payload in self.batches:
            self.seqs.extend(seq for seq in map(int, _SEQ_IN_BATCH.findall(payload))
                             if seq > self.live_from)
        self.batches.clear()
        self.seqs.sort()


def _frame_spans(buffer: bytearray) -> list[tuple[int, int, int]]:
    """The complete frames at the front of ``buffer`` as (opcode, start, end) of each payload,
    without copying (a server's frames are unmasked and, from this feed, never fragmented);
    drop them with ``del buffer[:end of the last]``."""
    spans, pos, size = [], 0, len(buffer)
    while size - pos >= 2:
        length, head = buffer[pos + 1] & 0x7F, 2
        if length == 126:
            if size - pos < 4:
                break
            length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if size - pos < 10:
                break
            length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
        if size - pos < head + length:
            break
        spans.append((buffer[pos] & 0x0F, pos + head, pos + head + length))
        pos += head + length
    return spans


def _frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete (opcode, payload) frames off the front of ``buffer``."""
    spans = _frame_spans(buffer)
    frames = [(opcode, bytes(buffer[start:end])) for opcode, start, end in spans]
    if spans:
        del buffer[: spans[-1][2]]
    return frames


def _masked(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=True)


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytearray]:
    """The websocket handshake by hand; what came after the response is in the buffer."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANDSHAKE_TIMEOUT_S)
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        msg = f"handshake refused: {status}"
        raise ConnectionError(msg)
    return reader, writer, bytearray()


async def _next_message(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        buffer: bytearray, pending: list[tuple[int, bytes]]) -> dict[str, Any]:
    while True:
        while pending:
            opcode, payload = pending.pop(0)
            if opcode == Opcode.TEXT:
                return orjson.loads(payload)
        data = await reader.read(READ_BYTES)
        if not data:
            raise ConnectionError("closed before subscribing")
        buffer += data
        pending += _frames(buffer)


async def _client(url: str, tally: _Tally, gate: asyncio.Semaphore, window: list[float],
                  lags: list[float] | None, stamps: dict[str, float],
                  errors: dict[str, int], subscribe: bytes = SUBSCRIBE) -> None:
    """One feed client: frames are read in bulk and parsed in place, so that a worker process
    holds hundreds of clients on little CPU (it answers pings; the arrival time of a message
    is that of the read that brought it). Every client counts the seqs it receives; one given
    ``lags`` also reads each message's ``emitted_at``."""
    writer = None
    try:
        pending: list[tuple[int, bytes]] = []
        async with gate:
            reader, writer, buffer = await _open(url)
            await _next_message(reader, writer, buffer, pending)  # hello
            writer.write(_masked(Opcode.TEXT, subscribe))
            answer = await _next_message(reader, writer, buffer, pending)
            while answer.get("type") == "heartbeat":
                answer = await _next_message(reader, writer, buffer, pending)
        if answer.get("type") != "subscribed":
            tally.failure = str(answer.get("error", answer.get("type")))
            return
        live_from = answer["last_seq"]
        tally.subscribed = True
        # what came with the subscribed answer goes back in front of the buffer, in order
        buffer[:0] = b"".join(_unframed_text(payload) for opcode, payload in pending
                              if opcode == Opcode.TEXT)
        while True:
            now = time.time()
            counting = bool(window) and window[0] <= now <= window[1]
            spans = _frame_spans(buffer)
            for opcode, start, end in spans:
                if opcode == Opcode.TEXT:
                    if buffer.startswith(_BATCH, start, end):
                        if counting:
                            _count_batch(buffer, start, end, now, live_from, tally, lags,
                                         stamps)
                    elif counting or buffer.startswith(b'{"type":"e', start, end):
                        _count(buffer, start, end, now, live_from, tally, lags, stamps, errors)
                elif opcode == Opcode.PING:
                    writer.write(_masked(Opcode.PONG, bytes(buffer[start:end])))
                elif opcode == Opcode.CLOSE:
                    errors["closed by the feed"] = errors.get("closed by the feed", 0) + 1
                    return
            if spans:
                del buffer[: spans[-1][2]]
            data = await reader.read(READ_BYTES)
            if not data:
                errors["connection lost"] = errors.get("connection lost", 0) + 1
                return
            buffer += data
    except Exception as exc:  # noqa: BLE001 (a bench counts every way a client fails)
        if not tally.subscribed:
            tally.failure = type(exc).__name__
        else:
            name = f"closed: {type(exc).__name__}"
            errors[name] = errors.get(name, 0) + 1
    finally:
        if writer is not None:
            writer.close()


def _unframed_text(payload: bytes) -> bytes:
    """``payload`` as an unmasked text frame again (to be read with what follows it)."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


def data_fields(payload: bytes | bytearray, start: int = 0,
                end: int | None = None) -> tuple[str, int, str] | None:
    """A data message's (type, seq, ``emitted_at``) read from its bytes (``payload[start:end]``),
    as the feed writes them (``{"type":...,"seq":...`` first, ``"emitted_at"`` last), or None:
    parse it as JSON."""
    end = len(payload) if end is None else end
    head = _DATA_HEAD.match(payload, start, end)
    if head is None or not payload.endswith(b'"}', start, end):
        return None
    at = payload.rfind(_EMITTED, start, end)
    begin = at + len(_EMITTED)
    if at < 0 or payload.find(b'"', begin, end) != end - 2:
        return None  # emitted_at is not the message's last field: let JSON read it
    return head[1].decode(), int(head[2]), payload[begin : end - 2].decode()


def _count(buffer: bytearray, start: int, end: int, now: float, live_from: int, tally: _Tally,
           lags: list[float] | None, stamps: dict[str, float], errors: dict[str, int]) -> None:
    if lags is None:  # counting only: the seq from the message's head
        head = _DATA_HEAD.match(buffer, start, end)
        if head is not None:
            seq = int(head[2])
            if seq > live_from:
                tally.seqs.append(seq)
            return
        fields = None
    else:
        fields = data_fields(buffer, start, end)
    if fields is None:
        message = orjson.loads(bytes(buffer[start:end]))
        kind = message.get("type")
        if kind == "error":
            errors[message.get("error", "?")] = errors.get(message.get("error", "?"), 0) + 1
            return
        if kind not in DATA_TYPES:
            return
        emitted = message.get("emitted_at")
        fields = (kind, message["seq"], emitted if isinstance(emitted, str) else None)
    _, seq, emitted = fields
    if seq <= live_from:
        return
    tally.seqs.append(seq)
    if emitted is not None and lags is not None:
        at = stamps.get(emitted)
        if at is None:
            at = stamps[emitted] = from_iso(emitted)
        lags.append(now - at)


def _count_batch(buffer: bytearray, start: int, end: int, now: float, live_from: int,
                 tally: _Tally, lags: list[float] | None, stamps: dict[str, float]) -> None:
    """Count a ``batch`` message's data messages (seqs read from their heads; a lag reader
    parses it whole for each one's ``emitted_at``)."""
    if lags is None:  # a counting client: its seqs are read after the window
        tally.live_from = live_from
        tally.batches.append(bytes(buffer[start:end]))
        return
    for message in orjson.loads(bytes(buffer[start:end]))["messages"]:
        seq = message.get("seq")
        if message.get("type") not in DATA_TYPES or not isinstance(seq, int) or seq <= live_from:
            continue
        tally.seqs.append(seq)
        emitted = message.get("emitted_at")
        if isinstance(emitted, str):
            at = stamps.get(emitted)
            if at is None:
                at = stamps[emitted] = from_iso(emitted)
            lags.append(now - at)


async def run_worker(url: str, count: int, seconds: float,
                     lag_clients: int | None = None, *, batch: bool = False) -> dict[str, Any]:
    """Run ``count`` clients on ``url``; their figures over ``seconds`` after stdin says go. The
    first ``lag_clients`` of them (all: None) also measure the delivery lag; with ``batch`` they
    subscribe with ``batch: true``."""
    tallies = [_Tally() for _ in range(count)]
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    window: list[float] = []
    lags: list[float] = []
    stamps: dict[str, float] = {}
    errors: dict[str, int] = {}
    readers = count if lag_clients is None else lag_clients
    subscribe = SUBSCRIBE_BATCH if batch else SUBSCRIBE
    tasks = [asyncio.create_task(_client(url, t, gate, window, lags if i < readers else None,
                                         stamps, errors, subscribe))
             for i, t in enumerate(tallies)]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not all(t.subscribed or t.failure for t in tallies):
        await asyncio.sleep(0.2)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.to_thread(sys.stdin.readline)
    start, cpu_start = time.time(), time.process_time()
    window.extend((start, start + seconds))
    await asyncio.sleep(seconds + 1.0)
    cpu = time.process_time() - cpu_start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    failures: dict[str, int] = {}
    for t in tallies:
        t.settle()
        if t.failure:
            failures[t.failure] = failures.get(t.failure, 0) + 1
    return {"seqs": [t.seqs for t in tallies if t.subscribed], "lags": lags,
            "failures": failures, "errors": errors, "cpu_s": cpu}


if __name__ == "__main__":
    lag_readers = int(sys.argv[4]) if len(sys.argv) > 4 else None
    report = asyncio.run(run_worker(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]),
                                    lag_readers, batch=sys.argv[5:6] == ["batch"]))
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
