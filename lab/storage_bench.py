"""Benchmark: how many readings per second the storage writes, with COPY and with INSERT.

    python -m lab.storage_bench                       # embedded PostgreSQL, durable
    python -m lab.storage_bench --rows 400000 --json  # more rows, JSON result lines
    python -m lab.storage_bench --url postgresql://...   # an existing (empty) database

Readings are those of the city's devices (216 devices over 8 districts and 9 kinds, one every
few seconds of event time). Each case writes ``rows`` readings through a
:class:`~connectors.storage.writers.BatchWriter` in batches of ``batch`` (as the Bytewax sink
gets them from Kafka), timing the conversion to rows as the sink does it; then writes the same
readings again (a replay: nothing new is stored). Rates are rows per second of wall time.

The sustained cases offer the pipeline's rates (5,000 to 20,000 readings/s) for a few seconds,
one batch every 100 ms as the flow would hand them over, and report how busy the writer was
(the share of wall time spent in ``write``) and the CPU it and the server used.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from cityheart.runtime.postgres import start_postgres
from connectors.storage.options import StorageOptions
from connectors.storage.rows import reading_row
from connectors.storage.store import Storage
from models.readings import Reading

__all__ = ["main", "run_case"]

KINDS = ("pm25", "pm10", "no2", "noise", "traffic_speed", "water_level", "power_load",
         "crowd_density", "rainfall")
DISTRICTS = ("old-town", "riverside", "industrial-east", "harbour", "university",
             "central-station", "north-hills", "airport-west")


def city_readings(count: int, *, start: float, devices: int = 216, seed: int = 7) -> list[Reading]:
    """``count`` readings from ``devices`` devices in turn, 20,000 a second of event time."""
    rng = random.Random(seed)
    fleet = [
        (f"{KINDS[i % len(KINDS)]}-{DISTRICTS[i % len(DISTRICTS)]}-{i:03d}",
         DISTRICTS[i % len(DISTRICTS)], KINDS[i % len(KINDS)])
        for i in range(devices)
    ]
    out = []
    for n in range(count):
        device, district, kind = fleet[n % devices]
        out.append(Reading(device, district, kind, round(rng.uniform(0, 100), 3), "u",
                           start + n / 20000.0, n // devices))
    return out


def run_case(storage: Storage, readings: list[Reading], *, copy: bool, batch: int) -> dict:
    """Write ``readings`` twice in batches of ``batch``; the rates of both passes."""
    writer = storage.writer("readings", copy=copy, batch_rows=batch)
    result: dict = {"method": "copy" if copy else "insert", "batch": batch, "rows": len(readings)}
    for label in ("new", "replay"):
        started = time.perf_counter()
        stored = 0
        for chunk in _chunks(readings, batch):
            stored += writer.write([reading_row(r) for r in chunk])
        elapsed = time.perf_counter() - started
        result[f"{label}_rows_per_s"] = round(len(readings) / elapsed)
        result[f"{label}_stored"] = stored
    return result


def sustained(storage: Storage, readings: list[Reading], *, rate: float, seconds: float,
              server_pid: int | None, tick: float = 0.1) -> dict:
    """Offer ``rate`` readings/s for ``seconds``, one batch every ``tick`` s; how busy it was."""
    writer = storage.writer("readings")
    per_tick = max(1, round(rate * tick))
    ticks = int(seconds / tick)
    server_cpu = _cpu_of(server_pid)
    client_cpu = time.process_time()
    busy = 0.0
    started = time.perf_counter()
    for number in range(ticks):
        due = started + number * tick
        ahead = due - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        chunk = readings[number * per_tick : (number + 1) * per_tick]
        begun = time.perf_counter()
        writer.write([reading_row(r) for r in chunk])
        busy += time.perf_counter() - begun
    wall = time.perf_counter() - started
    return {
        "case": "sustained", "offered_rows_per_s": rate,
        "achieved_rows_per_s": round(ticks * per_tick / wall), "writer_busy": round(busy / wall, 3),
        "client_cpu": round((time.process_time() - client_cpu) / wall, 3),
        "server_cpu": None if server_cpu is None else round((_cpu_of(server_pid) - server_cpu)
                                                           / wall, 3),
    }


def _cpu_of(pid: int | None) -> float | None:
    """CPU seconds used so far by process ``pid`` and its children (PostgreSQL's backends)."""
    if pid is None:
        return None
    try:
        import psutil
    except ImportError:
        return None
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _chunks(items: list[Reading], size: int) -> Iterator[list[Reading]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def main(argv: list[str] | None = None) -> int:
    """Run the cases and print a Markdown table (or JSON lines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--url", help="an existing empty database (default: embedded)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per sustained rate")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args(argv)
    root = server = None
    url = args.url
    if url is None:
        root = Path(tempfile.mkdtemp(prefix="cityheart-bench-pg-"))
        server = start_postgres(root / "data", database="bench")  # durable: fsync on
        url = server.url("bench")
    cases = [(True, 2000), (True, 5000), (False, 1000)]
    results = []
    pid = server.child.process.pid if server is not None else None
    try:
        with Storage.open(StorageOptions(url=url)) as storage:
            for number, (copy, batch) in enumerate(cases):
                readings = city_readings(args.rows, start=1767225600.0 + number * 86400)
                results.append(run_case(storage, readings, copy=copy, batch=batch))
            for number, rate in enumerate((5000.0, 10000.0, 20000.0)):
                start = 1767225600.0 + (10 + number) * 86400
                readings = city_readings(int(rate * args.seconds) + 1, start=start)
                results.append(sustained(storage, readings, rate=rate, seconds=args.seconds,
                                         server_pid=pid))
    finally:
        if server is not None:
            server.stop()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        for result in results:
            print(orjson.dumps(result).decode())
    else:
        print("| method | batch | rows | new rows/s | replayed rows/s |")
        print("|---|---:|---:|---:|---:|")
        for r in results:
            if r.get("case") != "sustained":
                print(f"| {r['method']} | {r['batch']} | {r['rows']} | "
                      f"{r['new_rows_per_s']:,} | {r['replay_rows_per_s']:,} |")
        print()
        print("| offered rows/s | achieved rows/s | writer busy | writer CPU | server CPU |")
        print("|---:|---:|---:|---:|---:|")
        for r in results:
            if r.get("case") == "sustained":
                print(f"| {r['offered_rows_per_s']:,.0f} | {r['achieved_rows_per_s']:,} | "
                      f"{r['writer_busy']:.0%} | {r['client_cpu']:.0%} | "
                      f"{_percent(r['server_cpu'])} |")
    return 0


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


if __name__ == "__main__":
    raise SystemExit(main())
