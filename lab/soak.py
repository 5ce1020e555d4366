"""``cityheart soak``: run the whole pipeline for a long time while its parts are killed, then
prove nothing was lost or doubled.

    report = run_soak(settings, SoakOptions(readings=300_000, rate=1000, seed=1))
    report.failures()          # [] when every promise held
    print(report.text())

It starts the embedded stack on free ports (mosquitto with persistence, Tansu, PostgreSQL, and
the bridge, flow with Bytewax recovery, recorder and feed as child processes, exactly as
``cityheart up`` runs them), connects a feed client that stays for the whole run
(:class:`lab.soak_watch.FeedAudit`), and publishes the simulated city at a steady rate
with QoS 1, logging every reading the broker acknowledged (PUBACK) by (device, seq)
(:class:`lab.soak_watch.AckedPublisher`). Meanwhile, at seeded random moments and one at a
time, it kills (SIGKILL) and restarts the parts named in ``faults``
(:mod:`lab.soak_faults`), timing each recovery. When publishing is done it waits for the
recorder to store what was acknowledged, then reconciles from PostgreSQL and Kafka
(:mod:`lab.audit`):

- readings lost: acknowledged by the broker, never stored (must be 0);
- readings duplicated: stored twice by (device, seq) (0);
- incidents and alerts duplicated: one incident (rule, district, kind, opening) or alert under
  two ids, two events in one place (incident, sequence) of an incident's history, and event
  ids whose records in the incidents topic differ (a replay that did not repeat itself) (0);
- feed: seq gaps seen by the client, and stored alerts it never received (0);
- recovery time of each fault.

The report is printed and written as JSON (``--report``) with a ``.txt`` beside it.
"""

from __future__ import annotations

import logging
import random
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from cityheart.runtime.up import RunningCity, city_stack
from lab.audit import (
    alert_ids,
    conflicting_events,
    count_rows,
    duplicate_groups,
    read_topic,
    stored_readings,
)
from lab.bench import bench_settings
from lab.soak_faults import FAULTS, FaultInjector, FaultResult
from lab.soak_report import SoakReport, machine
from lab.soak_watch import AckedPublisher, FeedAudit, read_acked
from models.errors import CityheartError, ConfigError, InvalidReading
from models.reading_batch import readings_in
from models.timefmt import iso
from settings.config import Settings
from settings.loader import dump

__all__ = ["SoakOptions", "run_soak", "soak_settings"]

log = logging.getLogger(__name__)

COMPONENTS = ("feed", "flow", "recorder", "bridge")
STALL_S = 60.0
"""Draining ends when storage has not grown for this long."""


@dataclass(frozen=True)
class SoakOptions:
    """How long, how fast, and what to kill. ``readings`` or ``duration_s`` (not both)."""

    readings: int | None = None
    duration_s: float | None = None
    rate: float = 1000.0
    faults: tuple[str, ...] = FAULTS
    fault_interval_s: float = 30.0
    """Mean pause between the end of one fault's recovery and the next fault."""
    seed: int = 1
    flow_processes: int = 1
    report: Path | None = None
    workdir: Path | None = None
    keep_workdir: bool = False
    drain_timeout_s: float = 300.0

    def publish_s(self) -> float:
        """How long publishing lasts, seconds."""
        if self.duration_s is not None:
            return self.duration_s
        assert self.readings is not None
        return self.readings / self.rate

    def check(self) -> None:
        """ConfigError for a bad combination."""
        reason = None
        if (self.readings is None) == (self.duration_s is None):
            reason = "give either a number of readings or a duration"
        elif not self.rate > 0:
            reason = f"rate must be > 0 readings/s, got {self.rate}"
        elif unknown := sorted(set(self.faults) - set(FAULTS)):
            reason = f"unknown faults {unknown}; known: {', '.join(FAULTS)}"
        if reason is not None:
            raise ConfigError("cityheart soak", "options", reason)


def soak_settings(settings: Settings, workdir: Path, options: SoakOptions) -> Settings:
    """The city of ``settings`` on free ports with everything the soak needs: mosquitto (it
    has persistence), no device accounts and no metrics servers, Bytewax recovery in
    ``workdir/recovery``, ``options.flow_processes`` flow processes."""
    city = bench_settings(settings, workdir)
    mqtt = city.mqtt.model_copy(update={
        "embedded_broker": "mosquitto",
        "device_auth": city.mqtt.device_auth.model_copy(update={"enabled": False}),
    })
    flow = city.flow.model_copy(update={
        "recovery_dir": str((workdir / "recovery").resolve()),
        "processes": options.flow_processes,
    })
    metrics = city.metrics.model_copy(update={"enabled": False})
    return city.model_copy(update={"mqtt": mqtt, "flow": flow, "metrics": metrics})


def run_soak(settings: Settings, options: SoakOptions, *, command: str = "") -> SoakReport:
    """Run the soak described by ``options``; return (and write, with ``options.report``) its
    report."""
    options.check()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="cityheart-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    soak = soak_settings(settings, workdir, options)
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(dump(soak), sort_keys=False))
    report = SoakReport(
        command=command or shlex.join(sys.argv), options=_jsonable(options), machine=machine(),
        started_at=iso(time.time()), workdir=str(workdir),
    )
    with city_stack(soak, config_path=config, log_dir=workdir / "log", components=COMPONENTS,
                    mqtt_persistence=workdir / "mqtt") as city:
        _run(city, soak, options, workdir, report)
    if options.report is not None:
        report.write(options.report)
    if not report.failures() and not options.keep_workdir and options.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)  # kept when the run fails, for its logs
    return report


def _jsonable(options: SoakOptions) -> dict[str, object]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}


def _run(
    city: RunningCity, soak: Settings, options: SoakOptions, workdir: Path, report: SoakReport
) -> None:
    database_url = city.supervisor.env["CITYHEART_DATABASE_URL"]
    feed = FeedAudit(city.feed_url)
    feed.start()
    acked_path = workdir / "acked.txt"
    devices = max(soak.simulator.devices, int(options.rate))
    publisher = AckedPublisher(
        soak, rate=options.rate, ack_path=acked_path, devices=devices, scenario="bench",
        seed=options.seed, count=options.readings, duration_s=options.duration_s,
    )
    rng = random.Random(options.seed)
    publisher.start()
    started = time.monotonic()
    injector = FaultInjector(
        city, soak, feed=feed, publisher=publisher, persistence=workdir / "mqtt",
        database_url=database_url, log_dir=workdir / "log", started=started, choose=rng.choice,
    )
    try:
        report.faults = _fault_loop(city, options, publisher, injector, rng, started,
                                    report.errors)
        publisher.join()
        report.publish_s = round(time.monotonic() - started, 1)
        if publisher.error is not None:
            report.errors.append(f"the publisher failed: {publisher.error!r}")
        report.published = publisher.publisher.published
        report.acknowledged = publisher.publisher.acknowledged
        report.resent = publisher.publisher.resent
        _reconcile(city, soak, options, read_acked(acked_path), database_url, feed, report)
    finally:
        publisher.stop()
        feed.stop()
    injected = {f.component: 0 for f in report.faults}
    for fault in report.faults:
        injected[fault.component] += 1
    report.unexpected_restarts = {
        c.name: c.restarts - injected.get(c.name, 0)
        for c in city.supervisor.components if c.restarts > injected.get(c.name, 0)
    }


def _fault_loop(
    city: RunningCity, options: SoakOptions, publisher: AckedPublisher,
    injector: FaultInjector, rng: random.Random, started: float, errors: list[str],
) -> list[FaultResult]:
    """Inject faults one at a time at random moments until publishing is (nearly) done; a
    fault that could not be injected or brought back is added to ``errors``."""
    total = options.publish_s()
    last_moment = started + total - min(10.0, 0.2 * total)
    interval = options.fault_interval_s
    next_at = started + min(10.0, 0.1 * total) + rng.uniform(0, interval)
    order: list[str] = []
    results: list[FaultResult] = []
    while not publisher.done.wait(0.2):
        now = time.monotonic()
        city.supervisor.check(now)  # a component that died by itself comes back, counted
        if not options.faults or now < next_at or now > last_moment:
            continue
        if not order:
            order = rng.sample(list(options.faults), len(options.faults))
        component = order.pop(0)
        try:
            results.append(injector.inject(component))
        except (RuntimeError, CityheartError) as exc:
            log.exception("soak: the %s fault failed", component)
            errors.append(f"the {component} fault failed: {exc}")
        next_at = time.monotonic() + interval * rng.uniform(0.5, 1.5)
    return results


def _reconcile(
    city: RunningCity, soak: Settings, options: SoakOptions, acked: set[tuple[str, int]],
    database_url: str, feed: FeedAudit, report: SoakReport,
) -> None:
    """Wait for storage to hold what was acknowledged, then fill the report's counts."""
    _drain(city, database_url, len(acked), options.drain_timeout_s)
    stored = stored_readings(database_url)
    report.stored = len(stored)
    lost = acked - stored.keys()
    report.lost = len(lost)
    report.duplicated = sum(n - 1 for n in stored.values() if n > 1)
    topics = soak.kafka.topics
    report.dead_letters = len(read_topic(city.kafka_bootstrap, topics.dead_letter))
    if lost:
        report.lost_before_kafka = _lost_before_kafka(city.kafka_bootstrap, topics.readings, lost)
        sample = sorted(lost)[:20]
        log.error("soak: %d acknowledged readings never stored, e.g. %s", len(lost), sample)
    report.duplicate_groups = duplicate_groups(database_url)
    report.incidents_stored = count_rows(database_url, "incidents")
    report.incident_events = conflicting_events(
        read_topic(city.kafka_bootstrap, topics.incidents)
    )
    ids = alert_ids(database_url)
    report.alerts_stored = len(ids)
    deadline = time.monotonic() + 60
    while not ids <= feed.seen_alerts() and time.monotonic() < deadline:
        time.sleep(0.5)
    report.alerts_missed_by_feed = len(ids - feed.seen_alerts())
    report.feed_messages = feed.messages
    report.feed_connections = feed.subscriptions
    report.feed_epochs = len(feed.epochs)
    report.feed_seq_gaps = feed.gaps
    report.feed_out_of_order = feed.out_of_order


def _drain(city: RunningCity, database_url: str, expected: int, timeout: float) -> None:
    """Wait until the readings table holds ``expected`` rows, stops growing, or ``timeout``."""
    deadline = time.monotonic() + timeout
    last, grown_at = -1, time.monotonic()
    while time.monotonic() < deadline:
        city.supervisor.check(time.monotonic())
        rows = count_rows(database_url, "readings")
        if rows >= expected:
            return
        if rows != last:
            last, grown_at = rows, time.monotonic()
        elif time.monotonic() - grown_at > STALL_S:
            log.error("soak: storage stopped at %d of %d readings", rows, expected)
            return
        time.sleep(1.0)
    log.error("soak: storage did not catch up within %g s", timeout)


def _lost_before_kafka(bootstrap: str, topic: str, lost: set[tuple[str, int]]) -> int:
    """How many of ``lost`` never reached the readings topic (the rest the recorder missed)."""
    in_kafka = set()
    for _, value in read_topic(bootstrap, topic, timeout=300):
        try:
            readings = readings_in(value)  # a batch (or a single reading's JSON)
        except InvalidReading:
            continue
        in_kafka.update((r.device_id, r.seq) for r in readings if r.seq is not None)
    return len(lost - in_kafka)
