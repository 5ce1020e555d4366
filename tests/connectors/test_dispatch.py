"""A department's dispatch queue: a consumer that was down gets exactly what it missed, in order.

Real Tansu; the events are made with alerts.lifecycle, as the flow makes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from alerts.lifecycle import Incident, IncidentEvent, act, apply
from cityheart.cli import app
from connectors.dispatch.consumer import DispatchConsumer, load_checkpoint, save_checkpoint
from connectors.dispatch.queue import CheckpointError, DispatchLedger, DispatchLimits
from connectors.kafka import KafkaRecord, create_topics
from models.timefmt import iso
from settings.config import Settings
from tests.support import unique, write_config
from tests.support.kafka import produce

DEPARTMENT = "water-authority"
T0 = 1_795_669_200.0


def lifecycle(name: str, *, start: float = T0) -> list[dict[str, Any]]:
    """The dispatch records of one incident's whole life: open, alert, acknowledge, dispatch,
    comment, resolve, close (sequences 1 to 7)."""
    details = {"id": f"alert-{name}-1", "rule": "water_level.high", "kind": "water_level",
               "severity": "warning", "value": 3.2, "district": "harbour",
               "title": f"water level in harbour ({name})"}
    opened = IncidentEvent(f"inc-{name}", 1, start, "system", "open", None, (DEPARTMENT,), details)
    incident: Incident = apply(None, opened)
    pairs = [(opened, incident)]
    more = {**details, "id": f"alert-{name}-2", "severity": "critical", "value": 3.9}
    joined = IncidentEvent(incident.id, 2, start + 60, "system", "alert", None, (DEPARTMENT,),
                           more)
    incident = apply(incident, joined)
    pairs.append((joined, incident))
    steps: list[tuple[str, dict[str, Any]]] = [
        ("acknowledge", {}), ("dispatch", {"team": "pump-crew-3"}),
        ("comment", {"comment": "pumps running"}), ("resolve", {"outcome": "confirmed"}),
        ("close", {}),
    ]
    for number, (action, extra) in enumerate(steps, start=2):
        incident, event = act(incident, action, actor="ana", at=start + 60 * number, **extra)
        pairs.append((event, incident))
    return [{**e.to_record(), "incident": i.to_record()} for e, i in pairs]


def produce_events(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    """Write dispatch records to ``topic`` as the flow does, keyed by their incident."""
    produce(bootstrap, [KafkaRecord(r["incident_id"].encode(), orjson.dumps(r)) for r in records],
            topic=topic, flush_s=30)


def drain(consumer: DispatchConsumer, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Everything the consumer delivers until it is caught up with the topic."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not consumer.caught_up():
        assert time.monotonic() < deadline, f"not caught up within {timeout:g} s: {seen}"
        consumer.poll(seen.append, timeout=0.2)
    return seen


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


def per_incident(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for record in records:
        found.setdefault(record["incident_id"], []).append(record["sequence"])
    return found


@pytest.mark.timeout(120)
def test_a_consumer_that_was_down_gets_exactly_what_it_missed_in_order(
    settings: Settings, tmp_path: Path
) -> None:
    bootstrap = settings.kafka.bootstrap
    topic = unique("dispatch")  # three partitions: incidents spread over them
    create_topics(bootstrap, [topic], partitions=3)
    a, b, c, d = (lifecycle(n) for n in ("a", "b", "c", "d"))
    checkpoint = tmp_path / "water.json"

    first = a[:3] + b[:2] + c[:4]
    produce_events(bootstrap, topic, first)
    with DispatchConsumer(bootstrap, topic, checkpoint) as consumer:
        seen = drain(consumer)
    assert sorted(ids(seen)) == sorted(ids(first))
    assert per_incident(seen) == {"inc-a": [1, 2, 3], "inc-b": [1, 2], "inc-c": [1, 2, 3, 4]}

    # down for a while: the rest of a and b, d routed here mid-life, and duplicates of
    # events already handled and of events not yet handled
    missed = a[3:] + b[2:5] + d[3:]
    produce_events(bootstrap, topic,
                   a[1:3] + missed[:4] + c[:4] + missed[4:] + missed[2:6] + b[4:5])

    with DispatchConsumer(bootstrap, topic, checkpoint) as consumer:
        seen = drain(consumer)
        ledger = consumer.ledger
    assert sorted(ids(seen)) == sorted(ids(missed)), "missed events lost or repeated"
    assert per_incident(seen) == {"inc-a": [4, 5, 6, 7], "inc-b": [3, 4, 5], "inc-d": [4, 5, 6, 7]}
    assert ledger.duplicates == 2 + 4 + 4 + 1
    assert ledger.gaps == 0   # d starting at 4 is normal: its record carries the whole incident
    assert seen[ids(seen).index("inc-d:000004")]["incident"]["teams"] == ["pump-crew-3"]

    with DispatchConsumer(bootstrap, topic, checkpoint) as consumer:
        assert drain(consumer) == []   # nothing new: nothing again


@pytest.mark.timeout(120)
def test_a_failing_handler_repeats_only_the_event_it_failed_on(
    settings: Settings, tmp_path: Path
) -> None:
    bootstrap = settings.kafka.bootstrap
    topic = settings.kafka.topics.dispatch(DEPARTMENT)
    records = lifecycle("e")
    produce_events(bootstrap, topic, records)
    checkpoint = tmp_path / "water.json"
    seen: list[dict[str, Any]] = []

    def fragile(record: dict[str, Any]) -> None:
        if record["sequence"] == 3 and not any(r["sequence"] == 3 for r in seen):
            seen.append(record)
            raise RuntimeError("dispatcher screen crashed")
        seen.append(record)

    with DispatchConsumer(bootstrap, topic, checkpoint) as consumer:
        with pytest.raises(RuntimeError, match="screen crashed"):
            consumer.run(fragile, once=True)
        assert load_checkpoint(checkpoint, topic).marks["inc-e"].sequence == 2
        consumer.run(fragile, once=True)   # the same consumer goes on: event 3 again, then on
    assert [r["sequence"] for r in seen] == [1, 2, 3, 3, 4, 5, 6, 7]

    saved = load_checkpoint(checkpoint, topic)
    assert saved.offsets == {0: 7} and saved.handled == 7
    with DispatchConsumer(bootstrap, topic, checkpoint) as consumer:
        assert drain(consumer) == []


@pytest.mark.timeout(60)
def test_two_consumers_cannot_share_a_checkpoint(settings: Settings, tmp_path: Path) -> None:
    bootstrap = settings.kafka.bootstrap
    topic = settings.kafka.topics.dispatch(DEPARTMENT)
    checkpoint = tmp_path / "water.json"
    with DispatchConsumer(bootstrap, topic, checkpoint):
        with pytest.raises(CheckpointError, match="another dispatch consumer"):
            DispatchConsumer(bootstrap, topic, checkpoint).open()
    with DispatchConsumer(bootstrap, topic, checkpoint):   # free again once the first closed
        pass


def test_a_checkpoint_of_another_topic_or_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ops.json"
    save_checkpoint(path, DispatchLedger("dispatch.operations", offsets={0: 3}))
    assert load_checkpoint(path, "dispatch.operations").offsets == {0: 3}
    with pytest.raises(CheckpointError, match="'dispatch.operations', not in 'dispatch.grid'"):
        load_checkpoint(path, "dispatch.grid")
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="ops.json: not JSON"):
        load_checkpoint(path, "dispatch.operations")
    assert load_checkpoint(tmp_path / "none.json", "x").offsets == {}   # no file: the beginning
    assert [p.name for p in tmp_path.iterdir()] == ["ops.json"]   # no temp files left behind


def test_the_ledger_recognises_duplicates_and_gaps_and_stays_bounded() -> None:
    ledger = DispatchLedger("t")
    a, b = lifecycle("a"), lifecycle("b", start=T0 + 86400)
    verdicts = []
    for offset, record in enumerate([a[0], a[1], a[1], a[0], a[3], b[2], b[3], *a[4:], *b[4:6]]):
        check = ledger.check(record)
        verdicts.append(check.verdict)
        ledger.commit(0, offset, check)
    assert verdicts == ["first", "new", "duplicate", "duplicate", "gap", "first", "new",
                        "new", "new", "new", "new", "new"]
    assert (ledger.handled, ledger.duplicates, ledger.gaps) == (10, 2, 1)
    assert ledger.offsets == {0: 12}
    assert {k: (m.sequence, m.state) for k, m in ledger.marks.items()} == {
        "inc-a": (7, "closed"), "inc-b": (6, "resolved")}
    assert DispatchLedger.from_record(ledger.to_record(), source="x") == ledger

    limits = DispatchLimits(closed_s=3600, resolved_s=7 * 86400, max_incidents=10)
    b_resolved = ledger.marks["inc-b"].ts
    assert ledger.forget(now=b_resolved, limits=limits) == ["inc-a"]   # closed a day ago
    assert ledger.forget(now=b_resolved + 6 * 86400, limits=limits) == []
    assert ledger.forget(now=b_resolved + 8 * 86400, limits=limits) == ["inc-b"]

    for n in range(5):
        record = lifecycle(f"n{n}", start=T0 + n)[0]
        ledger.commit(0, 100 + n, ledger.check(record))
    assert ledger.forget(now=T0, limits=DispatchLimits(max_incidents=3)) == ["inc-n0", "inc-n1"]
    assert ledger.check(a[6]).verdict == "first"   # forgotten: a late copy counts as new again


def test_an_unknown_department_is_named_with_the_known_ones(settings: Settings,
                                                            tmp_path: Path) -> None:
    config = write_config(settings, tmp_path / "config.yaml")
    result = CliRunner().invoke(app, ["dispatch", "--department", "fire-brigade", "--once",
                                      "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown department 'fire-brigade'" in result.stderr
    assert "water-authority" in result.stderr and "operations" in result.stderr


@pytest.mark.timeout(180)
def test_cityheart_dispatch_prints_new_events_until_a_signal_then_resumes(
    settings: Settings, tmp_path: Path
) -> None:
    bootstrap = settings.kafka.bootstrap
    topic = settings.kafka.topics.dispatch(DEPARTMENT)
    config = write_config(settings, tmp_path / "config.yaml")
    checkpoint = tmp_path / "var" / "water.json"
    f, g = lifecycle("f"), lifecycle("g")
    produce_events(bootstrap, topic, f[:4])
    args = [sys.executable, "-m", "cityheart", "dispatch", "--department", DEPARTMENT, "--json",
            "--checkpoint", str(checkpoint), "--config", str(config)]

    live = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = read_lines(live, 4)
        produce_events(bootstrap, topic, f[2:6])   # 2 repeats, 2 new, picked up live
        lines += read_lines(live, 2)
        live.send_signal(signal.SIGTERM)
        assert live.wait(30) == 0, live.stderr.read() if live.stderr else ""
    finally:
        live.kill()
        live.wait()
    assert ids([orjson.loads(x) for x in lines]) == ids(f[:6])

    produce_events(bootstrap, topic, f[4:] + g[:3] + f[5:])   # while no one was reading
    done = subprocess.run([*args, "--once"], capture_output=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr.decode()
    records = [orjson.loads(x) for x in done.stdout.splitlines()]
    assert ids(records) == ids(f[6:] + g[:3])
    assert records[-1]["incident"]["state"] == "acknowledged"

    human = CliRunner().invoke(app, ["dispatch", "--department", DEPARTMENT, "--once",
                                     "--checkpoint", str(tmp_path / "again.json"),
                                     "--config", str(config)])
    assert human.exit_code == 0, human.output
    line = human.stdout.splitlines()[3]   # f's dispatch
    assert line.startswith(iso(T0 + 180)) and "inc-f" in line and "#4 dispatch" in line
    assert "dispatched" in line and "critical" in line and "harbour" in line
    assert "ana" in line and "team pump-crew-3" in line


def read_lines(process: subprocess.Popen, count: int, timeout: float = 60.0) -> list[bytes]:
    """``count`` lines of the process's stdout, failing after ``timeout`` s."""
    stdout = process.stdout
    assert stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(
        target=lambda: lines.extend(stdout.readline() for _ in range(count)), daemon=True
    )
    reader.start()
    reader.join(timeout)
    assert len(lines) == count and all(lines), f"got {lines} of {count} lines in {timeout:g} s"
    return [line.rstrip(b"\n") for line in lines]
