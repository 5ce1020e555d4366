"""``cityheart bench --feed-clients 10,300,1000``: how the push feed holds many clients.

With the city running (``cityheart up``), it opens N websocket clients on the feed (loopback
only) from separate worker processes (about :data:`CLIENTS_PER_PROCESS` each, so the
measurement is not limited by one client process), subscribes each to vitals and alerts, waits
until all have subscribed, then counts for ``seconds``:

- delivery lag: a data message's arrival minus its ``emitted_at`` (when the flow wrote it), for
  every live message :data:`LAG_CLIENTS` of the clients receive (the replay is left out), p50 /
  p99 / max; the others only count what they receive, so that reading timestamps in a thousand
  clients does not take from the box the CPU the feed needs (the readers are spread over the
  worker processes and wait in the same event loops as the counting clients);
- messages per client (min / median / max) and *missing*: over the seqs every client's window
  covers, the messages some client received and another did not (0 means every client got
  every message its subscription asks for);
- refusals: clients that could not connect or subscribe, ``error`` messages and closes;
- the CPU the client processes used while counting (as a share of one core), so a reader sees
  what the measurement itself took from the box it shares with the feed.

::

    results = run_feed_bench("ws://127.0.0.1:8765/feed", clients=[10, 300, 1000], seconds=40)

The clients run in :mod:`lab.feed_load` workers.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import orjson

__all__ = ["FeedBenchResult", "run_feed_bench"]

CLIENTS_PER_PROCESS = 250
MAX_PROCESSES = 8
LAG_CLIENTS = 10
"""Clients that read each message's ``emitted_at`` for the lag (the rest count messages)."""
MAX_CLIENTS = 5000


@dataclass
class FeedBenchResult:
    """What N clients saw in ``seconds``."""

    clients: int
    processes: int
    seconds: float
    subscribed: int
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    per_client_min: int
    per_client_median: int
    per_client_max: int
    missing: int
    refused: int
    clients_cpu_share: float = 0.0
    """CPU seconds of every client process in the window (and 1 s after) over its length."""
    errors: dict[str, int] = field(default_factory=dict)


# parent side


def _percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _missing(per_client: list[list[int]]) -> int:
    """Messages some client got and another did not, over the seqs every window covers."""
    windows = [s for s in per_client if s]
    if len(windows) < len(per_client) or not windows:
        return sum(1 for s in per_client if not s)
    low, high = max(s[0] for s in windows), min(s[-1] for s in windows)
    every = set().union(*({q for q in s if low <= q <= high} for s in windows))
    return sum(len(every) - sum(1 for q in s if low <= q <= high) for s in windows)


def _measure(url: str, clients: int, seconds: float, *, batch: bool) -> FeedBenchResult:
    processes = max(1, min(MAX_PROCESSES, math.ceil(clients / CLIENTS_PER_PROCESS)))
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    readers = [LAG_CLIENTS // processes + (i < LAG_CLIENTS % processes) for i in range(processes)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "lab.feed_load", url, str(n), str(seconds), str(lag),
             "batch" if batch else "single"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for n, lag in zip(shares, readers, strict=True)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                msg = f"a feed bench worker failed before its clients subscribed to {url}"
                raise RuntimeError(msg)
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [orjson.loads(w.communicate(timeout=seconds + 120)[0]) for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    per_client = [seqs for r in reports for seqs in r["seqs"]]
    lags = [lag for r in reports for lag in r["lags"]]
    counts = sorted(len(s) for s in per_client) or [0]
    errors: dict[str, int] = {}
    for report in reports:
        for name, n in report["errors"].items():
            errors[name] = errors.get(name, 0) + n
    refused = sum(n for r in reports for n in r["failures"].values())
    for report in reports:
        for name, n in report["failures"].items():
            errors[f"refused: {name}"] = errors.get(f"refused: {name}", 0) + n
    return FeedBenchResult(
        clients=clients, processes=processes, seconds=seconds, subscribed=len(per_client),
        lag_p50_ms=_ms(_percentile(lags, 0.5)), lag_p99_ms=_ms(_percentile(lags, 0.99)),
        lag_max_ms=_ms(max(lags, default=None)), per_client_min=counts[0],
        per_client_median=counts[len(counts) // 2], per_client_max=counts[-1],
        missing=_missing(per_client), refused=refused,
        clients_cpu_share=round(sum(r["cpu_s"] for r in reports) / (seconds + 1.0), 2),
        errors=errors,
    )


def machine() -> str:
    """The machine in one line: cores, CPU model, Python, kernel, load average."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, load average {load} at the start")


def run_feed_bench(
    url: str,
    *,
    clients: Sequence[int],
    seconds: float = 40.0,
    batch: bool = False,
    record: Path | None = None,
    as_json: bool = False,
    out: TextIO = sys.stdout,
) -> list[FeedBenchResult]:
    """Measure each client count in turn; print a line each; append a table to ``record``.
    With ``batch`` the clients subscribe with ``batch: true``."""
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        msg = f"the feed bench only runs on loopback; {url!r} is not (host {host!r})"
        raise ValueError(msg)
    too_many = [n for n in clients if not 1 <= n <= MAX_CLIENTS]
    if too_many or not 1 <= seconds <= 600:
        msg = (f"clients must be 1..{MAX_CLIENTS} (got {too_many}) and seconds 1..600 "
               f"(got {seconds:g})")
        raise ValueError(msg)
    where = machine()
    results = []
    for n in clients:
        result = _measure(url, n, seconds, batch=batch)
        results.append(result)
        if as_json:
            out.write(orjson.dumps(asdict(result)).decode() + "\n")
        else:
            out.write(_line(result) + "\n")
        out.flush()
    if record is not None:
        _record(record, results, where, clients, seconds, batch=batch)
    return results


def _line(r: FeedBenchResult) -> str:
    return (f"{r.clients} clients ({r.processes} processes): lag p50 {r.lag_p50_ms} ms, p99 "
            f"{r.lag_p99_ms} ms, max {r.lag_max_ms} ms; per client {r.per_client_min}/"
            f"{r.per_client_median}/{r.per_client_max} messages in {r.seconds:g} s; missing "
            f"{r.missing}; refused {r.refused}; errors {r.errors or 'none'}; the clients used "
            f"{r.clients_cpu_share:.2f} of a core")


def _record(path: Path, results: list[FeedBenchResult], where: str, clients: Sequence[int],
            seconds: float, *, batch: bool) -> None:
    command = (f"cityheart bench --feed-clients {','.join(map(str, clients))} "
               f"--feed-seconds {seconds:g}{' --feed-batch' if batch else ''}")
    rows = [
        f"| {r.clients:,} | {r.subscribed:,} | {r.lag_p50_ms} / {r.lag_p99_ms} / {r.lag_max_ms} ms "
        f"| {r.per_client_min} / {r.per_client_median} / {r.per_client_max} | {r.missing} "
        f"| {r.refused} | {', '.join(f'{k} {v}' for k, v in r.errors.items()) or 'none'} "
        f"| {r.clients_cpu_share:.2f} |"
        for r in results
    ]
    text = "\n".join([
        "", f"### Feed fan-out, {time.strftime('%Y-%m-%d', time.gmtime())}", "",
        f"Command: `{command}` (with `cityheart up` running). Machine: {where}.", "",
        "| clients | subscribed | lag p50 / p99 / max | messages per client min / median / max "
        "| missing | refused | errors | client CPU (cores) |",
        "|---:|---:|---:|---:|---:|---:|:--|---:|", *rows, "",
    ])
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


