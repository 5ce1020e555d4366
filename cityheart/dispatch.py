"""``cityheart dispatch``: a department's dispatch queue, every incident event routed to it.

    cityheart dispatch --department water-authority               # readable lines, until Ctrl-C
    cityheart dispatch --department water-authority --json --once # JSON lines, exit when caught up
    cityheart dispatch --department operations --checkpoint /srv/ops.json

It reads the department's topic (``settings.kafka.topics.dispatch(department)``, created if
missing) from where its checkpoint (default ``var/dispatch/<department>.json``) says, so a
restart prints exactly the events it has not printed yet, in order per incident, duplicates
skipped (see :mod:`connectors.dispatch.consumer`). Human lines::

    2026-11-26T08:00:10.000Z  inc-5f0c  #3 dispatch  dispatched  critical  harbour  ana  team crew-3

With ``--json`` one JSON object a line: the event record with its ``incident``. Exit codes: 0
stopped (SIGINT, SIGTERM, or caught up with ``--once``), 1 a Kafka or checkpoint error, 2 an
unknown department.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from connectors.dispatch.consumer import DispatchConsumer
from connectors.kafka import create_topics
from settings.config import Settings

__all__ = ["default_checkpoint", "format_event", "run_dispatch"]

log = logging.getLogger(__name__)


def default_checkpoint(department: str) -> Path:
    """Where ``cityheart dispatch`` keeps a department's position unless told otherwise."""
    return Path("var") / "dispatch" / f"{department}.json"


def run_dispatch(
    settings: Settings,
    *,
    department: str,
    checkpoint: Path | None = None,
    as_json: bool = False,
    once: bool = False,
) -> int:
    """Print the department's new dispatch events to stdout until a signal (or caught up with
    ``once``); return the exit code."""
    known = [d.id for d in settings.incidents.departments]
    if department not in known:
        print(f"error: unknown department {department!r}; known: {', '.join(known) or 'none'}",
              file=sys.stderr)
        return 2
    topic = settings.kafka.topics.dispatch(department)
    path = checkpoint or default_checkpoint(department)

    def show(record: dict[str, Any]) -> None:
        print(orjson.dumps(record).decode() if as_json else format_event(record), flush=True)

    create_topics(settings.kafka.bootstrap, [topic], settings.kafka.partitions)
    consumer = DispatchConsumer(settings.kafka.bootstrap, topic, path)
    with _stop_on_signals() as stop, consumer:
        try:
            ledger = consumer.run(show, stop=stop, once=once)
        except BrokenPipeError:
            # the reader went away (``| head``): stop quietly, and keep Python from complaining
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    log.info("dispatch %s: %d events handled, %d duplicates skipped, %d gaps, %d invalid",
             department, ledger.handled, ledger.duplicates, ledger.gaps, ledger.invalid)
    return 0


def format_event(record: Mapping[str, Any]) -> str:
    """One readable line: time, incident, sequence, action, state, severity, district, actor,
    team or outcome, comment."""
    incident = record.get("incident") or {}
    details = record.get("details") or {}
    extra = [f"team {details['team']}" if details.get("team") else "",
             f"outcome {details['outcome']}" if details.get("outcome") else "",
             f"\"{record['comment']}\"" if record.get("comment") else ""]
    return (f"{record.get('ts', '?')}  {record.get('incident_id', '?')}  "
            f"#{record.get('sequence', '?')} {record.get('action', '?'):<11} "
            f"{incident.get('state', '?'):<12} {incident.get('severity', '?'):<9} "
            f"{incident.get('district', '?'):<16} {record.get('actor', '?')}  "
            f"{'  '.join(e for e in extra if e)}").rstrip()


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event SIGINT and SIGTERM set while the block runs (main thread only)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
