"""At the flow's start: compare incident history with the event log, take up what the log lost.

    restored = reconcile_incidents(settings, write=True)   # before the flow is built
    flow = build_kafka_flow(settings, restored=restored)

Reads the incidents history may still have to act on (PostgreSQL: not resolved or closed, or
updated within :data:`flows.incidents.QUIET_S`) and the highest event sequence of each incident
in the ``incidents`` topic, and lets :func:`alerts.reconcile.reconcile` decide (its module doc
says why incidents are rebuilt rather than closed). With ``write`` the ``restore`` events are
produced to the incidents topic and the incidents' dispatch queues before the flow starts, so
the recorder stores them, the board and departments see them, and a later restart finds them in
the log. Only one flow process writes them (the only one, or process 0 of a cluster); the other
members take up only the incidents history and the log agree on, and the rest as they read the
restore events back.

History is read from the database config names. An embedded one (``database.embedded``) is
started by ``cityheart up``, which then names it to the flow (CITYHEART_DATABASE_URL); a flow
started on its own with an embedded database configured does not reconcile. When the database
cannot be reached in ``database.pool.timeout_s`` (at most :data:`CONNECT_S`), the flow starts
without (logged as an error): live vital signs and alerts must not wait for history.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import orjson

from alerts.lifecycle import Incident
from alerts.reconcile import Reconciliation, reconcile
from connectors.kafka import ReliableProducer, read_to_end
from connectors.storage import Storage, StorageOptions
from connectors.storage.history import incident_record
from connectors.storage.schema import LATEST, schema_version
from flows.incidents import QUIET_S
from flows.topics import IncidentOutputs
from models.errors import ConnectorError
from settings.config import Settings

__all__ = ["CONNECT_S", "logged_sequences", "reconcile_incidents"]

log = logging.getLogger(__name__)

CONNECT_S = 5.0
"""The longest the flow waits at start for the history database."""


def reconcile_incidents(
    settings: Settings, *, write: bool, now: float | None = None
) -> dict[str, list[Incident]]:
    """Reconcile (see the module doc); the incidents the flow's state starts with, by district."""
    if settings.database.embedded:
        log.info("flow: no history database named (the embedded one runs under `cityheart "
                 "up`): incidents are not reconciled with history")
        return {}
    now = time.time() if now is None else now
    try:
        stored = stored_incidents(settings, updated_since=now - QUIET_S)
    except ConnectorError as exc:
        log.error("flow: incidents not reconciled with history (%s): incidents the event log "
                  "lost stay unknown to the flow until it restarts with the database", exc)
        return {}
    topics = settings.kafka.topics
    logged = logged_sequences(read_to_end(settings.kafka.bootstrap, topics.incidents))
    plan = reconcile(stored, logged, now=now, keep_s=QUIET_S)
    if plan.restored and write:
        _write(settings, plan)
    elif plan.restored:  # another process writes them: this one reads them back
        restored = {incident.id for _, incident in plan.restored}
        plan = Reconciliation((), tuple(i for i in plan.adopted if i.id not in restored))
    log.info("flow: %d incidents in history to act on, %d in the event log; %d taken up again "
             "with a restore event, %d in all", len(stored), len(logged), len(plan.restored),
             len(plan.adopted))
    return plan.by_district()


def stored_incidents(settings: Settings, *, updated_since: float) -> list[Incident]:
    """History's incidents not resolved or closed, or updated since ``updated_since``; none
    when the database holds no cityheart history yet."""
    options = StorageOptions.from_database(settings.database)
    options = replace(options, pool_min=1, pool_max=1,
                      pool_timeout_s=min(options.pool_timeout_s, CONNECT_S))
    with Storage.open(options, migrate_schema=False, name="cityheart-flow") as storage:
        with storage.pool.connection() as conn:
            if schema_version(conn) < LATEST:
                log.info("flow: no incident history yet in %s", options.masked_url)
                return []
        rows = storage.history.live_incidents(updated_since=updated_since)
    incidents = []
    for row in rows:
        try:
            incidents.append(Incident.from_record(incident_record(row)))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("flow: stored incident %s cannot be read, not reconciled: %s",
                      row.get("id"), exc)
    return incidents


def logged_sequences(messages: Iterable[Any]) -> dict[str, int]:
    """Incident id -> the highest event sequence among ``messages`` of the incidents topic."""
    highest: dict[str, int] = {}
    for message in messages:
        try:
            record = orjson.loads(message.value())
            incident_id, sequence = str(record["incident_id"]), int(record["sequence"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        highest[incident_id] = max(sequence, highest.get(incident_id, 0))
    return highest


def _write(settings: Settings, plan: Reconciliation) -> None:
    topics = settings.kafka.topics
    outputs = IncidentOutputs(topics)
    producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=5)
    for event, incident in plan.restored:
        for record in outputs.event_records(event, incident):
            producer.produce(record.topic or topics.incidents, record.value, key=record.key)
        log.warning("flow: incident %s (%s, %s) was missing from the event log: restored from "
                    "history at event %d", incident.id, incident.district, incident.state,
                    event.sequence)
    producer.flush(30)
