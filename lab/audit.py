"""Read back what the pipeline stored, to reconcile it with what went in (``cityheart soak``).

    stored = stored_readings(database_url)       # {(device_id, seq): rows}, 2+ = duplicated
    count_rows(database_url, "readings")          # rows of one of AUDITED_TABLES
    duplicate_groups(database_url)                # {"alerts": n, ...}: one thing under 2+ ids
    alert_ids(database_url)                       # every stored alert id
    records = read_topic(bootstrap, "incidents")  # [(key, value)] up to the end as of now
    conflicting_events(records)                   # event ids whose records differ (a bad replay)

Only reads; every query is a fixed statement (identifiers through ``psycopg.sql``). A database
that cannot be reached raises :class:`~models.errors.ConnectorError` naming it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import orjson
import psycopg
from confluent_kafka import KafkaException, TopicPartition
from psycopg import sql

from connectors.kafka import tail_consumer
from connectors.storage.options import masked_url
from models.errors import ConnectorError

__all__ = [
    "AUDITED_TABLES",
    "alert_ids",
    "conflicting_events",
    "count_rows",
    "duplicate_groups",
    "read_topic",
    "stored_readings",
]

log = logging.getLogger(__name__)

AUDITED_TABLES = ("readings", "vitals", "alerts", "incidents", "incident_events", "indicators")
"""Tables :func:`count_rows` counts."""

_READINGS = (
    "SELECT device_id, seq, count(*) FROM readings WHERE seq IS NOT NULL GROUP BY device_id, seq"
)
_DUPLICATES = {
    # the same alert facts under two ids: a replay that made new ids
    "alerts": "SELECT count(*) FROM (SELECT 1 FROM alerts GROUP BY rule, district, kind, "
              "severity, window_start, ts HAVING count(*) > 1) AS d",
    # the same incident opened twice: two ids for one rule, district, kind and opening time
    "incidents": "SELECT count(*) FROM (SELECT 1 FROM incidents GROUP BY rule, district, kind, "
                 "opened_at HAVING count(*) > 1) AS d",
    # two events in the same place of an incident's history
    "incident_events": "SELECT count(*) FROM (SELECT 1 FROM incident_events "
                       "GROUP BY incident_id, sequence HAVING count(*) > 1) AS d",
}


def _connect(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as exc:
        msg = f"cannot connect: {exc}"
        raise ConnectorError("postgresql", masked_url(url), msg) from exc


def stored_readings(url: str) -> dict[tuple[str, int], int]:
    """Rows per (device_id, seq) in the readings table (readings without a seq are left out)."""
    with _connect(url) as conn:
        return {(device, int(seq)): int(n) for device, seq, n in conn.execute(_READINGS)}


def count_rows(url: str, table: str) -> int:
    """Rows in ``table``, one of :data:`AUDITED_TABLES`."""
    if table not in AUDITED_TABLES:
        msg = f"table {table!r} is not one of {AUDITED_TABLES}"
        raise ValueError(msg)
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    with _connect(url) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def duplicate_groups(url: str) -> dict[str, int]:
    """Per table, how many groups of rows describe one thing twice (see ``_DUPLICATES``)."""
    found = {}
    with _connect(url) as conn:
        for table, query in _DUPLICATES.items():
            row = conn.execute(query).fetchone()
            found[table] = int(row[0]) if row else 0
    return found


def alert_ids(url: str) -> set[str]:
    """The id of every stored alert."""
    with _connect(url) as conn:
        return {str(row[0]) for row in conn.execute("SELECT id FROM alerts")}


def read_topic(
    bootstrap: str, topic: str, *, timeout: float = 60.0
) -> list[tuple[bytes | None, bytes]]:
    """Every record of ``topic`` from its beginning to its end as of this call: (key, value)."""
    consumer = tail_consumer(bootstrap, [topic], start="beginning")
    try:
        ends = {}
        for tp in consumer.assignment():
            _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 10)
            if high > 0:
                ends[tp.partition] = high
        records: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                msg = f"could not read topic {topic!r} to its end within {timeout:g} s"
                raise ConnectorError("kafka", bootstrap, msg)
            for record in consumer.consume(1000, 0.5):
                if record.error() is not None:
                    continue
                records.append((record.key(), record.value() or b""))
                if record.offset() + 1 >= ends.get(record.partition(), 0):
                    ends.pop(record.partition(), None)
        return records
    except KafkaException as exc:
        msg = f"cannot read topic {topic!r}: {exc.args[0]}"
        raise ConnectorError("kafka", bootstrap, msg) from exc
    finally:
        consumer.close()


def conflicting_events(records: Iterable[tuple[bytes | None, bytes]]) -> dict[str, int]:
    """Incident event records (the incidents topic) that share an id: ``repeated`` ids (a
    replay wrote them again), ``conflicting`` ids whose records differ beyond the ``ts`` and
    the incident snapshot, ``ts_differs`` ids whose records differ only in ``ts``."""
    seen: dict[str, dict[str, Any]] = {}
    repeated: set[str] = set()
    conflicting: set[str] = set()
    ts_differs: set[str] = set()
    for _, value in records:
        event = orjson.loads(value)
        event.pop("incident", None)
        event_id = str(event.get("id"))
        first = seen.setdefault(event_id, event)
        if first is event:
            continue
        repeated.add(event_id)
        if first != event:
            same_but_ts = {**first, "ts": None} == {**event, "ts": None}
            (ts_differs if same_but_ts else conflicting).add(event_id)
            if len(conflicting) + len(ts_differs) <= 5:
                differ = {k: (first.get(k), event.get(k)) for k in {*first, *event}
                          if first.get(k) != event.get(k)}
                log.warning("incident event %s written twice, differing: %s", event_id, differ)
    return {"repeated": len(repeated), "conflicting": len(conflicting),
            "ts_differs": len(ts_differs)}
