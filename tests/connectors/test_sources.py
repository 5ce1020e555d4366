"""Pulled sources against real servers: a recorded air-quality service on loopback polled into
Tansu; the service answers 500, goes down and comes back, the breaker opens and closes, health
shows it on /metrics and in the health file, and after recovery every reading is in Kafka once;
``cityheart sources add|list|test|remove`` change what a running poller polls, without a
restart, and ``test`` produces nothing; the ``cityheart sources run`` process takes a source
added while it runs and serves its health on /metrics."""

from __future__ import annotations

import copy
import os
import signal
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from cityheart.cli import app
from cityheart.runtime.servers import free_port, spawn
from connectors.metrics import serve_metrics
from connectors.sources.health import SourcesHealth
from connectors.sources.poller import Poller
from connectors.sources.registry import SourcesFile, load_health, save_sources
from settings.config import Settings
from settings.sources import SourceSpec
from tests.support.config import write_config
from tests.support.kafka import consume_all, consume_until
from tests.support.service import RecordedService
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

DATA = Path(__file__).resolve().parents[1] / "data" / "sources"


def recorded() -> dict[str, Any]:
    return orjson.loads((DATA / "air-stations.json").read_bytes())


def an_hour_later(document: dict[str, Any]) -> dict[str, Any]:
    """The service's next answer: the 08:00 hour dropped, 09:00 repeated, 10:00 new."""
    later = copy.deepcopy(document)
    kept = [o for o in later["observations"] if o["observed"] != "2026-12-07T08:00:00Z"]
    new = []
    for observation in kept:
        if observation["station"] in ("4711", "4712"):
            fresh = copy.deepcopy(observation)
            fresh["observed"] = "2026-12-07T10:00:00Z"
            fresh["pm25"]["value"] = 30.0
            fresh["no2"]["value"] = 50.0
            new.append(fresh)
    later["observations"] = kept + new
    return later


def spec_of(url: str, **changes: Any) -> SourceSpec:
    mapping = yaml.safe_load((DATA / "air-stations.map.yaml").read_text())
    return SourceSpec.model_validate({"name": "air-net", "url": url, "interval_s": 60,
                                      "mapping": mapping, **changes})


def keys_of(records: list[Any]) -> list[tuple[str, str, float]]:
    found = [orjson.loads(m.value()) for m in records]
    return sorted((r["device_id"], r["kind"], r["ts"]) for r in found)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


@pytest.fixture
def service() -> Iterator[RecordedService]:
    server = RecordedService(recorded()).start()
    yield server
    server.stop()


def test_a_service_going_down_and_coming_back_loses_and_repeats_nothing(
    settings: Settings, service: RecordedService, tmp_path: Path,
) -> None:
    options = settings.sources.model_copy(update={
        "breaker_failures": 2, "breaker_cooldown_s": 30.0, "retry_initial_s": 1.0,
        "timeout_s": 5.0})
    settings = settings.model_copy(update={"sources": options})
    path, health_file = tmp_path / "sources.yaml", tmp_path / "sources-health.json"
    save_sources(path, [spec_of(service.url, auth={"type": "bearer", "token_env": "AIR_T"})])
    clock = [1000.0]  # the poller's monotonic clock, moved by the test: no waiting
    poller = Poller(settings, SourcesFile(path, check_s=1.0), health_path=health_file,
                    environ={"AIR_T": "s3cret"}, monotonic=lambda: clock[0])
    collector = SourcesHealth(poller.health)
    REGISTRY.register(collector)
    metrics = serve_metrics("127.0.0.1", 0)
    bootstrap, topics = settings.kafka.bootstrap, settings.kafka.topics
    try:
        poller.tick()
        assert service.headers[-1]["authorization"] == "Bearer s3cret"
        first = consume_all(bootstrap, topics.readings, 7, timeout=20)
        assert len(first) == 7
        health = load_health(health_file)["air-net"]
        assert (health["state"], health["consecutive_errors"], health["readings"]) == (
            "closed", 0, 7)
        assert health["refused"] == 3 and health["last_success"]
        assert 'cityheart_source_up{source="air-net"} 1.0' in scrape(metrics.url)

        service.document = an_hour_later(recorded())
        service.status = 500                            # the service fails
        clock[0] += 60
        poller.tick()
        assert poller.health()["air-net"]["state"] == "closed"  # one failure: retried soon
        assert poller.states["air-net"].due == clock[0] + 1.0
        clock[0] += 1
        poller.tick()                                   # two in a row: the breaker opens
        health = load_health(health_file)["air-net"]
        assert (health["state"], health["consecutive_errors"]) == ("open", 2)
        assert "500" in health["last_error"]
        text = scrape(metrics.url)
        assert 'cityheart_source_breaker_open{source="air-net"} 1.0' in text
        assert 'cityheart_source_up{source="air-net"} 0.0' in text
        assert 'cityheart_source_consecutive_errors{source="air-net"} 2.0' in text

        service.stop()                                  # and goes down altogether
        asked = service.requests
        clock[0] += 10
        poller.tick()                                   # open: nobody asks it
        assert service.requests == asked
        clock[0] += 25
        poller.tick()                                   # the probe finds it down: open again
        health = poller.health()["air-net"]
        assert (health["state"], health["consecutive_errors"]) == ("open", 3)
        assert "refused" in health["last_error"]

        service.status = 200
        service.start()                                 # back, an hour later
        clock[0] += 30
        poller.tick()                                   # the probe succeeds: closed
        health = load_health(health_file)["air-net"]
        assert (health["state"], health["consecutive_errors"], health["last_error"]) == (
            "closed", 0, None)
        assert health["duplicates"] == 3                # 09:00 was produced before
        assert 'cityheart_source_breaker_open{source="air-net"} 0.0' in scrape(metrics.url)

        # 7 + the four of 10:00, each once (a twelfth is waited for a few seconds: none comes)
        every = consume_until(bootstrap, topics.readings, lambda r: len(r) > 11, timeout=5)
        keys = keys_of(every)
        assert len(keys) == 11 and len(set(keys)) == 11
        assert sum(1 for key in keys if key[2] == 1796637600.0) == 4
        letters = consume_until(bootstrap, topics.dead_letter, lambda r: len(r) > 3, timeout=5)
        assert len(letters) == 3                        # refused once, not at every poll
        assert {dict(m.headers())["source"] for m in letters} == {b"sources"}
        assert {m.key() for m in letters} == {b"sources/air-net"}
    finally:
        metrics.close()
        REGISTRY.unregister(collector)


def test_sources_commands_change_a_running_poller_and_test_produces_nothing(
    settings: Settings, service: RecordedService, tmp_path: Path,
) -> None:
    config = write_config(settings, tmp_path / "config.yaml")
    mapping = tmp_path / "air.map.yaml"
    mapping.write_text((DATA / "air-stations.map.yaml").read_text())
    runner = CliRunner()
    bootstrap, topics = settings.kafka.bootstrap, settings.kafka.topics
    poller = Poller(settings, SourcesFile(tmp_path / "sources.yaml", check_s=0.1),
                    health_path=tmp_path / "sources-health.json")
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        added = runner.invoke(app, ["sources", "add", "air-net", "--url", service.url,
                                    "--interval", "60", "--map", str(mapping),
                                    "--config", str(config)])
        assert added.exit_code == 0, added.output
        again = runner.invoke(app, ["sources", "add", "air-net", "--url", service.url,
                                    "--map", str(mapping), "--config", str(config)])
        assert again.exit_code == 2 and "--replace" in again.output

        # the running poller takes the new source without a restart
        readings = consume_all(bootstrap, topics.readings, 7, timeout=30)
        assert len(readings) == 7
        listed = wait_until(
            lambda: (r := runner.invoke(app, ["sources", "list", "--config", str(config)]))
            and "readings 7" in r.output and r.output, 10, "sources list shows the poll")
        assert "air-net" in listed and "breaker closed" in listed and "errors 0" in listed

        tested = runner.invoke(app, ["sources", "test", "air-net", "--config", str(config)])
        assert tested.exit_code == 0, tested.output
        assert "5 items, 7 readings would be ingested, 3 refused" in tested.output
        assert "aq-net-4712  harbour  pm25  21 ug/m3" in tested.output
        assert "refused item 4: unknown_district" in tested.output
        # test produced nothing (an eighth reading is waited for a few seconds: none comes)
        assert len(consume_until(bootstrap, topics.readings, lambda r: len(r) > 7, 5)) == 7

        removed = runner.invoke(app, ["sources", "remove", "air-net", "--config", str(config)])
        assert removed.exit_code == 0, removed.output
        wait_until(lambda: "air-net" not in poller.states, 10, "the poller drops the source")
        missing = runner.invoke(app, ["sources", "test", "air-net", "--config", str(config)])
        assert missing.exit_code == 2 and "no source 'air-net'" in missing.output
    finally:
        stop.set()
        thread.join(15)


def test_the_sources_process_polls_a_source_added_while_it_runs_and_serves_its_health(
    settings: Settings, service: RecordedService, tmp_path: Path,
) -> None:
    ports = settings.metrics.ports.model_copy(update={"sources": free_port()})
    settings = settings.model_copy(update={
        "metrics": settings.metrics.model_copy(update={"ports": ports})})
    config = write_config(settings, tmp_path / "config.yaml")
    url = f"http://127.0.0.1:{ports.sources}/metrics"
    child = spawn("sources", [sys.executable, "-m", "cityheart", "sources", "run", "--config",
                              str(config)],
                  env={**os.environ, "CITYHEART_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
                       "AIR_KEY": "k-123"},
                  log_path=tmp_path / "sources.log")
    try:
        wait_until(lambda: _scrape_or_none(url), 30, "the poller serves /metrics")
        # added while it runs (as `cityheart sources add` does): polled without a restart,
        # with the secret the process read from its environment
        save_sources(tmp_path / "sources.yaml", [spec_of(service.url, auth={
            "type": "header", "header": "X-API-Key", "token_env": "AIR_KEY"})])
        wait_until(lambda: 'cityheart_source_readings_total{source="air-net"} 7.0'
                   in (_scrape_or_none(url) or ""), 30,
                   lambda: f"7 readings on /metrics:\n{(tmp_path / 'sources.log').read_text()}")
        assert service.headers[-1]["x-api-key"] == "k-123"
        readings = consume_all(settings.kafka.bootstrap, settings.kafka.topics.readings, 7, 10)
        assert len(readings) == 7
        health = load_health(tmp_path / "sources-health.json")["air-net"]
        assert (health["state"], health["readings"], health["refused"]) == ("closed", 7, 3)
    finally:
        code = child.stop(signal.SIGTERM, timeout=30)
    assert code == 0, (tmp_path / "sources.log").read_text()


def _scrape_or_none(url: str) -> str | None:
    try:
        return scrape(url)
    except OSError:
        return None


def test_a_slow_service_does_not_hold_up_the_others(
    settings: Settings, service: RecordedService, tmp_path: Path,
) -> None:
    slow = RecordedService(recorded())
    slow.hold = threading.Event()
    slow.start()
    path = tmp_path / "sources.yaml"
    save_sources(path, [spec_of(slow.url, name="slow-net"),     # first in the registry
                        spec_of(service.url, mapping={**spec_of(service.url).mapping.model_dump(),
                                                      "device_prefix": "fast-"})])
    settings = settings.model_copy(update={
        "sources": settings.sources.model_copy(update={"timeout_s": 25.0})})
    poller = Poller(settings, SourcesFile(path), health_path=None)
    round_done = threading.Thread(target=poller.tick, daemon=True)
    try:
        round_done.start()
        wait_until(lambda: slow.requests == 1 and service.requests == 1, 10,
                   "both asked while the slow one has not answered")
        assert round_done.is_alive()
        slow.hold.set()
        round_done.join(20)
        health = poller.health()
        assert (health["slow-net"]["readings"], health["air-net"]["readings"]) == (7, 7)
    finally:
        slow.hold.set()
        slow.stop()
