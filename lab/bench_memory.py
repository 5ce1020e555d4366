"""``cityheart bench --devices 10000,100000``: the memory of every process at each fleet size.

For each device count it starts a fresh embedded stack exactly as ``cityheart bench`` does
(mosquitto, Tansu, PostgreSQL, bridge, flow, recorder, feed), reads every process's memory once
the stack is up (``idle``), runs ``cityheart simulate --devices N`` at ``rate`` readings/s until
every device has reported ``reports`` times (the simulator takes its devices in turn, so each
reports every ``N / rate`` seconds; a fleet too small to last :data:`MIN_WINDOWS` flow windows
at ``rate`` runs slower instead, so every step has the same readings a device), waits until the
flow's vital records count :data:`DRAIN_SHARE` of the readings published or reach the last
windows that can close (at most :data:`DRAIN_TIMEOUT_S`; ``drained`` says whether they did),
and reads the memory again (``loaded``)::

    run_memory_bench(settings, devices=[10_000, 100_000], rate=5000, reports=3)

Memory comes from /proc: ``rss_kb`` (VmRSS) and ``peak_kb`` (VmHWM) of the process and its
descendants, summed, and ``pss_kb`` (proportional set size, smaps_rollup), which shares each
shared page among the processes mapping it: for PostgreSQL (a postmaster and its backends
sharing ``shared_buffers``) the RSS sum counts the shared pages once per process, the PSS sum
once. The simulator is sampled every half second while it runs; its figures are the last sample.

The bench config sets ``anomaly.interval_s`` to 0 (one point per series per flow window instead
of per five minutes), so that within the run every device's series gets its own anomaly
detector (``anomaly.per_device``, as shipped) and the flow's memory includes them. A run cannot
warm them (``anomaly.warmup`` is 200 points): :func:`series_state` measures the detector state
per series in this process instead, for the same counts, after the same points and warm.
With ``as_json`` every step, every series measurement and then the summary
(``growth_bytes_per_device``: RSS bytes per device between the smallest and the largest fleet,
per process) are one JSON object a line.
"""

from __future__ import annotations

import math
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml

from alerts.anomaly_rules import AnomalyRule
from cityheart.runtime.up import city_stack
from connectors.kafka import tail_consumer
from flows.anomaly import Detectors
from lab.bench import bench_settings
from models.timefmt import from_iso
from models.windows import Window
from settings.config import Settings
from settings.loader import dump

__all__ = ["MemoryStep", "SeriesState", "process_memory", "run_memory_bench", "series_state"]

SAMPLE_S = 0.5
DRAIN_TIMEOUT_S = 300.0
DRAIN_SHARE = 0.97
"""Share of the published readings the flow's windows must count before memory is read."""
MIN_WINDOWS = 3
"""Flow windows a run lasts at least."""
WARM_POINTS = 400
"""Points fed to the one warm detector (past the shipped warm-up of 200; its state stops
growing by about 300)."""


@dataclass
class MemoryStep:
    """The memory of every process at one fleet size, before and after the simulated run."""

    devices: int
    offered_per_s: float
    seconds: float
    published: int
    reports_per_device: float
    idle: dict[str, dict[str, int]]
    loaded: dict[str, dict[str, int]]
    drained: bool = True
    """Whether the flow's windows counted :data:`DRAIN_SHARE` of the published readings, or
    reached the run's last window, within :data:`DRAIN_TIMEOUT_S` (False: it was behind when
    the memory was read)."""
    counted: int = 0
    """Readings counted in the flow's window records (count and late) when memory was read."""


@dataclass
class SeriesState:
    """Anomaly detector state per series, measured in this process for ``series`` series."""

    series: int
    points: int
    snapshot_bytes_per_series: float
    """The district's Bytewax state pickled (what a recovery snapshot writes), per series."""
    held_bytes_per_series: float
    """Python heap held once a snapshot has run (idle detectors kept pickled), per series."""
    live_bytes_per_series: float
    """Python heap with every detector unpickled (all learning at once), per series."""
    warm: dict[str, float] = field(default_factory=dict)
    """One detector after :data:`WARM_POINTS` points: pickled and live bytes."""


def _status_kb(pid: int) -> dict[str, int]:
    found = {"rss_kb": 0, "peak_kb": 0}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found["rss_kb" if name == "VmRSS" else "peak_kb"] = int(value.split()[0])
    return found


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc's parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def process_memory(pid: int) -> dict[str, int]:
    """RSS, peak RSS and PSS (kB) of ``pid`` and its descendants, summed; and how many."""
    pids = _descendants(pid)
    total = {"rss_kb": 0, "peak_kb": 0, "pss_kb": 0, "processes": len(pids)}
    for each in pids:
        status = _status_kb(each)
        total["rss_kb"] += status["rss_kb"]
        total["peak_kb"] += status["peak_kb"]
        total["pss_kb"] += _pss_kb(each)
    return total


class _Sampler:
    """Read a running process's memory every :data:`SAMPLE_S`; keep the last non-empty read."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            sample = process_memory(self._pid)
            if sample["rss_kb"]:
                self.last = sample

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(5)
        return self.last


def memory_settings(settings: Settings, workdir: Path) -> Settings:
    """``cityheart bench``'s city (free ports, database in ``workdir``) with one anomaly point
    per series per window, so every device's detector exists within a short run."""
    bench = bench_settings(settings, workdir)
    return bench.model_copy(update={
        "anomaly": bench.anomaly.model_copy(update={"interval_s": 0.0}),
    })


def _run_step(settings: Settings, devices: int, rate: float, reports: int) -> MemoryStep:
    # every fleet size gets the same reports a device; a small fleet at a lower rate, so the
    # run still lasts several windows
    seconds = max(reports * devices / rate, MIN_WINDOWS * settings.flow.window_s)
    rate = reports * devices / seconds
    workdir = Path(tempfile.mkdtemp(prefix="cityheart-bench-memory-"))
    bench = memory_settings(settings, workdir)
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(dump(bench)))
    with city_stack(bench, config_path=config, log_dir=workdir / "log",
                    components=("feed", "flow", "recorder", "bridge")) as city:
        pids = city.pids()
        idle = {name: process_memory(pid) for name, pid in pids.items()}
        simulator = subprocess.Popen(
            [sys.executable, "-m", "cityheart", "simulate", "--config", str(config),
             "--rate", str(rate), "--duration", str(seconds), "--devices", str(devices),
             "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **city.supervisor.env},
        )
        sampler = _Sampler(simulator.pid)
        stdout, stderr = simulator.communicate()
        simulated = sampler.stop()
        ended = time.time()
        if simulator.returncode != 0:
            msg = f"the simulator failed with {devices} devices: {stderr.strip()[-500:]}"
            raise RuntimeError(msg)
        report = orjson.loads(stdout.strip().splitlines()[-1])
        drained, counted = _wait_counted(
            city.kafka_bootstrap, bench.kafka.topics.vitals, DRAIN_SHARE * report["published"],
            ended, bench.flow.window_s)
        loaded = {name: process_memory(pid) for name, pid in pids.items()}
        loaded["simulator"] = simulated
    shutil.rmtree(workdir, ignore_errors=True)  # kept when the run fails, for its logs
    return MemoryStep(
        devices=devices, offered_per_s=rate, seconds=round(seconds, 1),
        published=report["published"],
        reports_per_device=round(report["published"] / devices, 2),
        idle=idle, loaded=loaded, drained=drained, counted=counted,
    )


def _wait_counted(bootstrap: str, topic: str, readings: float, ended: float,
                  window_s: float) -> tuple[bool, int]:
    """Read the vitals topic from its start until its window records count ``readings`` or
    one ends within two windows of ``ended`` (the run's end: the flow has caught up); whether
    either happened within :data:`DRAIN_TIMEOUT_S`, and the readings counted.

    (The feed coalesces vitals for a client that falls behind, so only the topic counts.)
    """
    consumer = tail_consumer(bootstrap, [topic])
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    counted, last_end = 0, 0.0
    try:
        # the last window and the one before it close only once later readings move the
        # watermark past them (plus the late allowance): none come after the run
        while counted < readings and last_end < ended - 2 * window_s:
            if time.monotonic() > deadline:
                return False, counted
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    continue
                vital = orjson.loads(message.value())
                if "count" in vital and "record" not in vital:
                    counted += vital["count"] + vital.get("late", 0)
                    last_end = max(last_end, from_iso(vital["window_end"]))
    finally:
        consumer.close()
    return True, counted


def _window(district: str, kind: str, start: float, length: float, devices: Sequence[str],
            value: float) -> Window:
    window = Window(district, kind, start, start + length, value, start + 1, devices[0])
    for n, device in enumerate(devices[1:], 1):
        window.add(value + (n % 7) * 0.1, start + 1 + (n % 9) * 0.1, device)
    return window


def _heap(build: Any) -> tuple[Any, int]:
    """What ``build()`` returns and the Python heap it holds (tracemalloc), bytes."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        return built, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def series_state(settings: Settings, series: int, points: int = 3) -> SeriesState:
    """Anomaly state of ``series`` device series in one district's :class:`Detectors`.

    Each of ``series`` devices (one district and kind: the state is per series whatever its
    district) gets ``points`` points through :meth:`Detectors.on_window`, as in the flow with
    ``anomaly.interval_s`` 0. Measured: the state pickled (a recovery snapshot), the heap while
    every detector is live, and the heap once a snapshot has run (Bytewax snapshots every epoch:
    an idle detector is then held pickled). One more detector is fed :data:`WARM_POINTS`
    points for the warm size, which does not depend on the number of series.
    """
    rule = AnomalyRule.from_settings(
        settings.anomaly.model_copy(update={"interval_s": 0.0}), settings.kinds)
    district, kind = settings.district_ids()[0], next(iter(settings.kinds))
    length = settings.flow.window_s
    devices = [f"{kind}-{n:06d}" for n in range(series)]
    start = (time.time() // length) * length - points * length

    def learn() -> Detectors:
        detectors = Detectors()
        for step in range(points):
            window = _window(district, kind, start + step * length, length, devices,
                             50.0 + 5 * math.sin(step))
            detectors.on_window(rule, window)
        return detectors

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        detectors = learn()
        live = tracemalloc.get_traced_memory()[0] - before
        count = len(detectors)  # the devices' series and the district's own
        # a snapshot pickles what learnt since the last one; at the next, idle detectors are
        # dropped and held pickled only (Bytewax snapshots every epoch)
        snapshot = len(pickle.dumps(detectors, protocol=pickle.HIGHEST_PROTOCOL))
        detectors.__deepcopy__({})
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del detectors
    warm = rule.new_detector()
    for step in range(WARM_POINTS):
        warm.update(start + step * 300.0, 50.0 + 10 * math.sin(step / 288 * 2 * math.pi)
                    + (step * 7919 % 13) * 0.1)
    blob = pickle.dumps(warm, protocol=pickle.HIGHEST_PROTOCOL)
    _, warm_live = _heap(lambda: pickle.loads(blob))  # noqa: S301 (our own bytes)
    return SeriesState(
        series=count, points=points,
        snapshot_bytes_per_series=round(snapshot / count),
        held_bytes_per_series=round(held / count),
        live_bytes_per_series=round(live / count),
        warm={"points": WARM_POINTS, "pickled_bytes": len(blob), "live_bytes": warm_live},
    )


def run_memory_bench(
    settings: Settings, *, devices: Sequence[int], rate: float = 5000.0, reports: int = 3,
    as_json: bool = False, out: TextIO = sys.stdout,
) -> int:
    """Measure each fleet size of ``devices`` on a fresh stack, then the detector state per
    series for the same counts; print the results and return 0."""
    steps = []
    for count in devices:
        step = _run_step(settings, count, rate, reports)
        steps.append(step)
        _print_step(step, as_json, out)
    states = []
    for count in devices:
        state = series_state(settings, count, points=reports)
        states.append(state)
        _print_state(state, as_json, out)
    summary = {
        "summary": True,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "devices": list(devices), "offered_per_s": rate, "reports": reports,
        "growth_bytes_per_device": _growth(steps),
    }
    if as_json:
        out.write(orjson.dumps(summary).decode() + "\n")
    elif summary["growth_bytes_per_device"]:
        first, last = steps[0].devices, steps[-1].devices
        out.write(f"growth from {first:,} to {last:,} devices, bytes of RSS per device: "
                  + ", ".join(f"{name} {value:,.0f}" for name, value
                              in summary["growth_bytes_per_device"].items()) + "\n")
    out.flush()
    return 0


def _growth(steps: list[MemoryStep]) -> dict[str, float]:
    """RSS bytes per device between the smallest and the largest fleet, per process."""
    if len(steps) < 2:
        return {}
    small, large = min(steps, key=lambda s: s.devices), max(steps, key=lambda s: s.devices)
    extra = large.devices - small.devices
    if extra <= 0:
        return {}
    return {
        name: round((large.loaded[name]["rss_kb"] - small.loaded[name]["rss_kb"]) * 1024 / extra)
        for name in large.loaded if name in small.loaded
    }


def _mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:,.1f}"


def _print_step(step: MemoryStep, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(orjson.dumps({"step": asdict(step)}).decode() + "\n")
        out.flush()
        return
    out.write(f"{step.devices:,} devices: {step.published:,} readings at "
              f"{step.offered_per_s:g}/s over {step.seconds:g} s ({step.reports_per_device:g} "
              f"reports a device){'' if step.drained else '; the flow was still behind'}\n")
    out.write(f"    {'process':<10} {'n':>3} {'idle RSS MB':>12} {'RSS MB':>10} {'peak MB':>10} "
              f"{'PSS MB':>10}\n")
    for name, loaded in step.loaded.items():
        idle = step.idle.get(name, {}).get("rss_kb")
        out.write(f"    {name:<10} {loaded.get('processes', 0):>3} {_mb(idle):>12} "
                  f"{_mb(loaded.get('rss_kb')):>10} {_mb(loaded.get('peak_kb')):>10} "
                  f"{_mb(loaded.get('pss_kb')):>10}\n")
    out.flush()


def _print_state(state: SeriesState, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(orjson.dumps({"series_state": asdict(state)}).decode() + "\n")
    else:
        out.write(
            f"anomaly state, {state.series:,} series after {state.points} points: snapshot "
            f"{state.snapshot_bytes_per_series:,.0f} B/series, held "
            f"{state.held_bytes_per_series:,.0f} B/series, all live "
            f"{state.live_bytes_per_series:,.0f} B/series; one series warm "
            f"({state.warm['points']:.0f} points): {state.warm['pickled_bytes']:,.0f} B pickled, "
            f"{state.warm['live_bytes']:,.0f} B live\n")
    out.flush()
