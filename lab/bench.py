"""``cityheart bench``: sustained throughput and latency of the whole pipeline on this machine.

It starts the embedded stack on free ports (MQTT broker, Tansu, PostgreSQL, bridge, flow,
recorder, feed: the same child processes as ``cityheart up``), subscribes to the feed like an
operator's screen, and runs the simulator as its own process at each offered rate for
``step_s`` seconds. For each step:

- accepted readings/s: readings counted in the vital-sign records of the windows that lie
  wholly inside the step, over the span of those windows; when the flow has not caught up
  with the step's end 30 s after it (no window starting after the step came out), the readings
  of the windows that did come out over the time since the simulator began publishing, with
  ``behind_s``, how far the last of them ended before counting stopped (:func:`count_step`);
- publish-to-vital latency: feed arrival time minus the window's end (the moment its last
  reading can be published), so it includes the flow's late allowance by design;
- publish-to-alert latency: feed arrival time minus the event time of the reading that made the
  alert fire (the simulator stamps readings when it publishes them). The ``bench`` scenario keeps
  crowd density and water level above their thresholds in every district, so every window of
  every district raises fresh alerts to time;
- CPU seconds used by each process during the step, per reading.

A step "keeps up" when at least 97 % of what was published is accepted and the p99
publish-to-vital latency stays under the late allowance plus 1.5 s (a lagging flow shows there
first). ``sustained_readings_per_s`` is the accepted rate of the fastest step that kept up.

Two workloads run in turn on the same stack: one reading per MQTT message (``rates``), then
gateways' SenML packs (``pack_rates``, readings/s: the simulator acts as ``gateways`` gateways
sending packs of ``pack_size``). Before the stack starts, the raw paho ceiling is measured on a
mosquitto of its own (:mod:`lab.paho_ceiling`: one paho publisher -> mosquitto -> one paho
subscriber at QoS 1, nothing else), the most one-reading messages a second this machine moves.
With ``--json`` every step and then the summary are printed as one JSON object a line; the
summary's top-level ``sustained_readings_per_s``, ``publish_to_alert_p99_ms`` and
``publish_to_vital_p99_ms`` are the one-reading workload's, the same keys under ``packs`` the
SenML workload's, and ``paho_ceiling_msgs_per_s`` (with ``share_of_ceiling``) the ceiling.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml
from pydantic import SecretStr

from cityheart.runtime.servers import free_port
from cityheart.runtime.up import RunningCity, city_stack
from connectors.feed.client import FeedClient
from lab.paho_ceiling import measure_ceiling
from models.timefmt import from_iso
from settings.config import ScenarioEvent, Settings
from settings.loader import dump

__all__ = ["PackWorkload", "StepResult", "bench_settings", "run_bench"]

KEEP_UP_SHARE = 0.97
LAG_MARGIN_S = 1.5
DRAIN_TIMEOUT_S = 30.0


@dataclass
class StepResult:
    """What one offered rate achieved."""

    offered_per_s: float
    published_per_s: float
    accepted_per_s: float
    publish_to_vital_p50_ms: float | None
    publish_to_vital_p99_ms: float | None
    publish_to_alert_p50_ms: float | None
    publish_to_alert_p99_ms: float | None
    alerts_timed: int
    kept_up: bool
    cpu_us_per_reading: dict[str, float]
    workload: str = "readings"
    """``readings`` (one a message) or ``packs`` (gateways' SenML packs)."""
    readings_counted: int = 0
    """Readings in the vital records of the step's windows that arrived before counting."""
    behind_s: float = 0.0
    """0: the flow caught up with the step; else how far the end of the last window of the
    step that came out was behind the clock when counting stopped."""


@dataclass(frozen=True)
class StepCount:
    """What the feed showed of one step: its whole windows' vital records and their rate."""

    inside: list[tuple[float, dict[str, Any]]]
    readings: int
    accepted_per_s: float
    behind_s: float


def count_step(
    received: list[tuple[float, dict[str, Any]]], started: float, ended: float, *,
    publishing_from: float, measured_at: float, window_s: float = 10.0,
) -> StepCount:
    """Count the readings of the step from ``started`` to ``ended`` (wall time; the simulator
    began publishing about ``publishing_from``) in the vital records ``received`` (arrival,
    message) by ``measured_at``. Caught up (the step's last whole window of ``window_s``, the
    one ending within ``window_s`` of ``ended``, or a later one arrived): the readings of the
    windows wholly inside the step over those windows' span. Behind: the
    readings of the windows that did arrive over the time from the first publish (or the
    first of those windows' start) to ``measured_at``, what the pipeline turned into vital
    signs in the time it had; and how far the last of those windows' end was behind
    ``measured_at``."""
    vitals = [(arrived, m) for arrived, m in received if m["type"] == "vital"]
    inside = [(arrived, m) for arrived, m in vitals
              if from_iso(m["window_start"]) >= started and from_iso(m["window_end"]) <= ended]
    readings = sum(m["count"] for _, m in inside)
    caught_up = any(from_iso(m["window_start"]) >= ended for _, m in vitals) or any(
        from_iso(m["window_end"]) > ended - window_s for _, m in inside)
    if caught_up:
        span = (max(from_iso(m["window_end"]) for _, m in inside)
                - min(from_iso(m["window_start"]) for _, m in inside)) if inside else 0.0
        return StepCount(inside, readings, readings / span if span > 0 else 0.0, 0.0)
    began = min([publishing_from, *(from_iso(m["window_start"]) for _, m in inside)])
    reached = max((from_iso(m["window_end"]) for _, m in inside), default=began)
    took = measured_at - began
    return StepCount(inside, readings, readings / took if took > 0 else 0.0,
                     round(max(0.0, measured_at - reached), 1))


class _FeedRecorder:
    """Keep (arrival time, message) for every feed message, on a thread of its own."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self._client = FeedClient(url, channels=("vitals", "alerts"), connect_timeout=30)
        self._clock = clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._received: list[tuple[float, dict[str, Any]]] = []
        self._thread = threading.Thread(target=self._run, name="bench-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._client.next_message(time.monotonic() + 0.2)
            if message is not None:
                with self._lock:
                    self._received.append((self._clock(), message))

    def received(self) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return list(self._received)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(m) for _, m in self.received()):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._client.close()


def bench_settings(settings: Settings, workdir: Path) -> Settings:
    """The city of ``settings`` on free loopback ports (database in ``workdir``), with the
    ``bench`` scenario added."""
    bench_events = [
        ScenarioEvent(type="episode", district=district, kind=kind, factor=factor)
        for district in settings.district_ids()
        for kind, factor in (("crowd_density", 20.0), ("water_level", 3.0))
        if kind in settings.kinds
    ]
    scenarios = {**settings.simulator.scenarios, "bench": bench_events}
    return settings.model_copy(
        update={
            "mqtt": settings.mqtt.model_copy(
                update={"url": f"mqtt://127.0.0.1:{free_port()}", "embedded": True}
            ),
            "kafka": settings.kafka.model_copy(
                update={"bootstrap": f"127.0.0.1:{free_port()}", "embedded": True}
            ),
            "feed": settings.feed.model_copy(update={"host": "127.0.0.1", "port": free_port()}),
            "database": settings.database.model_copy(update={
                "url": SecretStr(f"postgresql://postgres@127.0.0.1:{free_port()}/cityheart"),
                "embedded": True,
                "data_dir": str(workdir / "pgdata"),
            }),
            "simulator": settings.simulator.model_copy(update={"scenarios": scenarios}),
        }
    )


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class PackWorkload:
    """The SenML workload: offered rates (readings/s), gateways and readings per pack."""

    rates: tuple[float, ...] = ()
    gateways: int = 20
    pack_size: int = 50


def _run_step(
    settings: Settings, config: Path, city: RunningCity, recorder: _FeedRecorder, rate: float,
    step_s: float, packs: PackWorkload | None = None,
) -> StepResult:
    pids = city.pids()
    cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    devices = max(settings.simulator.devices, int(rate))
    started = time.time()
    simulate = subprocess.run(
        [sys.executable, "-m", "cityheart", "simulate", "--config", str(config),
         "--rate", str(rate), "--duration", str(step_s), "--devices", str(devices),
         "--scenario", "bench", "--json",
         *(["--gateways", str(packs.gateways), "--pack-size", str(packs.pack_size)]
           if packs else [])],
        capture_output=True, text=True, check=False,
        env={**os.environ, **city.supervisor.env},
    )
    ended = time.time()
    if simulate.returncode != 0:
        msg = f"the simulator failed at {rate:g}/s: {simulate.stderr.strip()[-500:]}"
        raise RuntimeError(msg)
    report = orjson.loads(simulate.stdout.strip().splitlines()[-1])
    cpu_sim = _cpu_self_children()
    recorder.wait_for(
        lambda m: m["type"] == "vital" and from_iso(m["window_start"]) >= ended,
        DRAIN_TIMEOUT_S,
    )
    cpu_after = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    count = count_step(recorder.received(), started, ended,
                       publishing_from=ended - report["elapsed_s"], measured_at=time.time(),
                       window_s=settings.flow.window_s)
    inside, accepted = count.inside, count.accepted_per_s
    vital_lag = [arrived - from_iso(m["window_end"]) for arrived, m in inside]
    alert_lag = [
        arrived - from_iso(m["ts"]) for arrived, m in recorder.received()
        if m["type"] == "alert" and m["rule"].endswith(".threshold")  # fire on the reading
        and started <= from_iso(m["ts"]) <= ended
    ]
    published = report["published"] / report["elapsed_s"] if report["elapsed_s"] else 0.0
    p99_vital = _percentile(vital_lag, 0.99)
    kept_up = (
        accepted >= KEEP_UP_SHARE * published
        and p99_vital is not None
        and p99_vital < settings.flow.late_allowance_s + LAG_MARGIN_S
    )
    readings = max(1, report["published"])
    cpu = {
        name: round((cpu_after[name] - cpu_before[name]) / readings * 1e6, 1) for name in pids
    }
    cpu["simulator"] = round(cpu_sim / readings * 1e6, 1)
    return StepResult(
        offered_per_s=rate,
        published_per_s=round(published, 1),
        accepted_per_s=round(accepted, 1),
        publish_to_vital_p50_ms=_ms(_percentile(vital_lag, 0.5)),
        publish_to_vital_p99_ms=_ms(p99_vital),
        publish_to_alert_p50_ms=_ms(_percentile(alert_lag, 0.5)),
        publish_to_alert_p99_ms=_ms(_percentile(alert_lag, 0.99)),
        alerts_timed=len(alert_lag),
        kept_up=kept_up,
        cpu_us_per_reading=cpu,
        workload="packs" if packs else "readings",
        readings_counted=count.readings,
        behind_s=count.behind_s,
    )


_children_cpu_seen = 0.0


def _cpu_self_children() -> float:
    """CPU seconds used by reaped children (the simulator) since the last call."""
    global _children_cpu_seen
    usage = os.times()
    total = usage.children_user + usage.children_system
    spent, _children_cpu_seen = total - _children_cpu_seen, total
    return spent


def run_bench(
    settings: Settings, *, rates: list[float], step_s: float, as_json: bool,
    out: TextIO = sys.stdout, packs: PackWorkload | None = None,
    ceiling_messages: int = 100_000,
) -> int:
    """Run the benchmark and print the results; return 0. ``ceiling_messages`` 0 skips the
    paho ceiling, ``packs`` None (or without rates) the SenML workload."""
    ceiling = measure_ceiling(ceiling_messages) if ceiling_messages > 0 else None
    if ceiling is not None and not as_json:
        out.write(f"raw paho ceiling: {ceiling:.0f} messages/s (one publisher -> mosquitto -> "
                  "one subscriber, QoS 1)\n")
    workdir = Path(tempfile.mkdtemp(prefix="cityheart-bench-"))
    bench = bench_settings(settings, workdir)
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(dump(bench)))
    _cpu_self_children()
    results: list[StepResult] = []
    pack_results: list[StepResult] = []
    with city_stack(bench, config_path=config, log_dir=workdir / "log",
                    components=("feed", "flow", "recorder", "bridge")) as city:
        recorder = _FeedRecorder(city.feed_url)
        recorder.start()
        try:
            for rate in rates:
                result = _run_step(bench, config, city, recorder, rate, step_s)
                results.append(result)
                _print_step(result, as_json, out)
            for rate in packs.rates if packs else ():
                result = _run_step(bench, config, city, recorder, rate, step_s, packs)
                pack_results.append(result)
                _print_step(result, as_json, out)
        finally:
            recorder.stop()
    shutil.rmtree(workdir, ignore_errors=True)  # kept when the run fails, for its logs
    summary = _summary(results, step_s)
    summary["paho_ceiling_msgs_per_s"] = None if ceiling is None else round(ceiling, 1)
    summary["share_of_ceiling"] = (
        round(summary["sustained_readings_per_s"] / ceiling, 3) if ceiling else None
    )
    if packs and packs.rates:
        pack_summary = _summary(pack_results, step_s)
        del pack_summary["machine"], pack_summary["step_s"]
        summary["packs"] = {**pack_summary, "pack_size": packs.pack_size,
                            "gateways": packs.gateways}
    if as_json:
        out.write(orjson.dumps(summary).decode() + "\n")
    else:
        _print_summary(summary, out)
    out.flush()
    return 0


def _print_summary(summary: dict[str, Any], out: TextIO) -> None:
    ceiling = summary["paho_ceiling_msgs_per_s"]
    beside = (f" (raw paho ceiling {ceiling:.0f} messages/s: {summary['share_of_ceiling']:.0%} "
              "of it)" if ceiling else "")
    out.write(
        f"sustained {summary['sustained_readings_per_s']} readings/s{beside}; p99 "
        f"publish-to-vital {summary['publish_to_vital_p99_ms']} ms, publish-to-alert "
        f"{summary['publish_to_alert_p99_ms']} ms ({summary['machine']})\n"
    )
    packs = summary.get("packs")
    if packs:
        out.write(
            f"SenML packs of {packs['pack_size']} from {packs['gateways']} gateways: sustained "
            f"{packs['sustained_readings_per_s']} readings/s; p99 publish-to-vital "
            f"{packs['publish_to_vital_p99_ms']} ms, publish-to-alert "
            f"{packs['publish_to_alert_p99_ms']} ms\n"
        )


def _print_step(result: StepResult, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(orjson.dumps({"step": asdict(result)}).decode() + "\n")
    else:
        out.write(
            f"{result.workload:<8} offered {result.offered_per_s:>8g}/s  published "
            f"{result.published_per_s:>8.0f}/s  accepted {result.accepted_per_s:>8.0f}/s  "
            f"vital p50/p99 {result.publish_to_vital_p50_ms}/{result.publish_to_vital_p99_ms} ms  "
            f"alert p50/p99 {result.publish_to_alert_p50_ms}/{result.publish_to_alert_p99_ms} ms "
            f"({result.alerts_timed} alerts)  {'kept up' if result.kept_up else 'FELL BEHIND'}"
            f"{f' by {result.behind_s:g} s' if result.behind_s else ''}\n"
            f"    CPU us/reading: {result.cpu_us_per_reading}\n"
        )
    out.flush()


def _summary(results: list[StepResult], step_s: float) -> dict[str, Any]:
    kept = [r for r in results if r.kept_up]
    best = max(kept, key=lambda r: r.accepted_per_s) if kept else None
    return {
        "sustained_readings_per_s": best.accepted_per_s if best else 0.0,
        "publish_to_vital_p99_ms": best.publish_to_vital_p99_ms if best else None,
        "publish_to_alert_p99_ms": best.publish_to_alert_p99_ms if best else None,
        "at_offered_per_s": best.offered_per_s if best else None,
        "step_s": step_s,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, {platform.system()} {platform.release()}",
    }
