"""Tables the writers fill, and the functions that turn cityheart's records into their rows.

    TABLES["readings"].columns      # ("ts", "device_id", "district", ...), in row order
    reading_row(reading)            # a models.readings.Reading (or its Kafka JSON as a dict)
    vital_row(record)               # a ``vitals`` wire record (dict with ISO times)
    alert_row(record)               # an ``alerts`` wire record
    indicator_row(record)           # an indicator record ("record": "indicator" on vitals)
    vitals_topic_row(record)        # ("vitals" | "indicators", row) of any vitals-topic record
    incident_row(record), incident_event_row(record)
    report_row(record)              # a ``reports`` record (models.reports.Report's JSON)
    ROW_BUILDERS["vitals"]          # the builder of a table by name

Times come in as epoch seconds or ISO 8601 strings and leave as aware UTC datetimes. Each table
has a key: writing a row whose key is stored already either does nothing (readings, alerts,
incident events, reports: a replay changes nothing) or replaces it (vitals and indicators: a
re-run with new logic wins; incidents: only by a later ``sequence``, the last event applied).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from psycopg.types.json import Jsonb

from models.readings import Reading

__all__ = [
    "ROW_BUILDERS",
    "TABLES",
    "TableSpec",
    "alert_row",
    "incident_event_row",
    "incident_row",
    "indicator_row",
    "reading_row",
    "report_row",
    "to_datetime",
    "vital_row",
    "vitals_topic_row",
]

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A table the writers fill: its columns (with PostgreSQL types, for binary COPY), its key,
    and what a row whose key exists does: ``nothing`` or ``update`` (only when ``newer`` is
    greater than the stored value, if ``newer`` names a column: the first version of a row at
    one ``newer`` value wins, as ON CONFLICT DO NOTHING keeps the first of the others; a replay
    after a restart then changes nothing)."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    key: tuple[str, ...]
    on_conflict: Literal["nothing", "update"] = "nothing"
    newer: str | None = None

    def key_of(self, row: Row) -> tuple[Any, ...]:
        """The key values of ``row``."""
        return tuple(row[self.columns.index(name)] for name in self.key)


def _spec(name: str, columns: str, key: str, **kwargs: Any) -> TableSpec:
    pairs = [part.split(":") for part in columns.split()]
    return TableSpec(
        name, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), tuple(key.split()),
        **kwargs,
    )


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "readings",
            "ts:timestamptz device_id:text district:text kind:text value:float8 unit:text "
            "seq:int8 lat:float8 lon:float8",
            "device_id kind ts",
        ),
        _spec(
            "vitals",
            "window_start:timestamptz window_end:timestamptz district:text kind:text unit:text "
            "count:int4 mean:float8 min:float8 max:float8 last:float8 devices:int4 late:int4 "
            "emitted_at:timestamptz",
            "district kind window_start",
            on_conflict="update",
        ),
        _spec(
            "indicators",
            "ts:timestamptz district:text indicator:text value:float8 level:text unit:text "
            "score:float8 window_start:timestamptz inputs:int4 coverage:float8 confident:bool "
            "components:jsonb details:jsonb emitted_at:timestamptz",
            "district indicator ts",
            on_conflict="update",
        ),
        _spec(
            "alerts",
            "id:text rule:text district:text kind:text severity:text value:float8 "
            "threshold:float8 direction:text stat:text unit:text window_start:timestamptz "
            "window_end:timestamptz ts:timestamptz emitted_at:timestamptz message:text "
            "details:jsonb lat:float8 lon:float8",
            "id",
        ),
        _spec(
            "incidents",
            "id:text state:text severity:text district:text rule:text kind:text title:text "
            "departments:text[] opened_at:timestamptz updated_at:timestamptz "
            "acknowledged_at:timestamptz resolved_at:timestamptz closed_at:timestamptz "
            "outcome:text alert_ids:text[] sequence:int4 record:jsonb lat:float8 lon:float8 "
            "radius_m:float8",
            "id",
            on_conflict="update",
            newer="sequence",
        ),
        _spec(
            "reports",
            "id:text kind:text text:text severity:text district:text ts:timestamptz "
            "reporter:text source:text received_at:timestamptz lat:float8 lon:float8 "
            "attachments:text[]",
            "id",
        ),
        _spec(
            "incident_events",
            "id:text incident_id:text sequence:int4 ts:timestamptz actor:text action:text "
            "comment:text departments:text[] details:jsonb",
            "id",
        ),
    )
}


def to_datetime(value: float | str | datetime | None) -> datetime | None:
    """Epoch seconds, an ISO 8601 string with a zone, or a datetime, as an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            msg = f"time {value!r} has no time zone"
            raise ValueError(msg)
        return moment.astimezone(UTC)
    return datetime.fromtimestamp(value, UTC)


def reading_row(reading: Reading | Mapping[str, Any]) -> Row:
    """A ``readings`` row of a Reading or of its Kafka JSON record, with its position: the
    reading's own, or its device's registered one that the bridge placed it by (None: none)."""
    if isinstance(reading, Reading):
        lat, lon = _position(reading.lat, reading.lon)
        return (
            datetime.fromtimestamp(reading.ts, UTC), reading.device_id, reading.district,
            reading.kind, reading.value, reading.unit, reading.seq, lat, lon,
        )
    r = reading
    return (
        to_datetime(r["ts"]), r["device_id"], r["district"], r["kind"], float(r["value"]),
        r["unit"], r.get("seq"), *_position(r.get("lat"), r.get("lon")),
    )


def vital_row(record: Mapping[str, Any]) -> Row:
    """A ``vitals`` row of a vitals wire record."""
    r = record
    return (
        to_datetime(r["window_start"]), to_datetime(r["window_end"]), r["district"], r["kind"],
        r["unit"], int(r["count"]), float(r["mean"]), float(r["min"]), float(r["max"]),
        float(r["last"]), int(r.get("devices", 0)), int(r.get("late", 0)),
        to_datetime(r.get("emitted_at")),
    )


def indicator_row(record: Mapping[str, Any]) -> Row:
    """An ``indicators`` row of an indicator record (``"record": "indicator"`` on the vitals
    topic): district, indicator, value, ``window_end`` (or ``ts``), the rest optional."""
    r = record
    components, details = r.get("components"), r.get("details")
    return (
        to_datetime(r["window_end"] if "window_end" in r else r["ts"]), r["district"],
        r["indicator"], float(r["value"]), r.get("level"), r.get("unit"),
        _float(r.get("score")), to_datetime(r.get("window_start")), r.get("inputs"),
        _float(r.get("coverage")), r.get("confident"),
        None if components is None else Jsonb(components),
        None if details is None else Jsonb(details), to_datetime(r.get("emitted_at")),
    )


def vitals_topic_row(record: Mapping[str, Any]) -> tuple[str, Row]:
    """(table, row) of a record of the ``vitals`` topic: indicator records (``"record":
    "indicator"``) go to ``indicators``, window records to ``vitals``."""
    if record.get("record") == "indicator":
        return "indicators", indicator_row(record)
    return "vitals", vital_row(record)


ALERT_COLUMNS = frozenset((
    "id", "rule", "district", "kind", "severity", "value", "threshold", "direction", "stat",
    "unit", "window_start", "window_end", "ts", "emitted_at", "message", "lat", "lon",
))
"""The wire fields an ``alerts`` row has columns for; the rest go to ``details``."""


def alert_row(record: Mapping[str, Any]) -> Row:
    """An ``alerts`` row of an alerts wire record; fields beyond the columns (an anomaly's
    expected value, band and score, say) are kept in ``details``."""
    r = record
    details = {k: v for k, v in r.items() if k not in ALERT_COLUMNS}
    return (
        r["id"], r["rule"], r["district"], r["kind"], r["severity"], _float(r.get("value")),
        _float(r.get("threshold")), r.get("direction"), r.get("stat"), r.get("unit"),
        to_datetime(r.get("window_start")), to_datetime(r.get("window_end")),
        to_datetime(r["ts"]), to_datetime(r.get("emitted_at")), r.get("message", ""),
        Jsonb(details) if details else None, *_position(r.get("lat"), r.get("lon")),
    )


def incident_row(record: Mapping[str, Any]) -> Row:
    """An ``incidents`` row of an incident record (``Incident.to_record()``): id, state,
    district, opened_at required; the whole record is kept in the ``record`` column, and its
    place (``lat``, ``lon``, ``radius_m``) in columns of their own."""
    r = record
    lat, lon = _position(r.get("lat"), r.get("lon"))
    return (
        r["id"], r["state"], r.get("severity"), r["district"], r.get("rule"), r.get("kind"),
        r.get("title") or "", list(r.get("departments") or ()), to_datetime(r["opened_at"]),
        to_datetime(r.get("updated_at") or r["opened_at"]), to_datetime(r.get("acknowledged_at")),
        to_datetime(r.get("resolved_at")), to_datetime(r.get("closed_at")), r.get("outcome"),
        list(r.get("alert_ids") or ()), int(r.get("sequence") or 0), Jsonb(dict(r)), lat, lon,
        None if lat is None else float(r.get("radius_m") or 0.0),
    )


def incident_event_row(record: Mapping[str, Any]) -> Row:
    """An ``incident_events`` row of an event record (``IncidentEvent.to_record()``): id,
    incident_id, ts, actor, action required (sequence read from an ``<incident>:<n>`` id)."""
    r = record
    sequence = r.get("sequence")
    if sequence is None:
        tail = str(r["id"]).rpartition(":")[2]
        sequence = int(tail) if tail.isdigit() else 0
    details = r.get("details")
    return (
        r["id"], r["incident_id"], int(sequence), to_datetime(r["ts"]), r["actor"],
        r["action"], r.get("comment"), list(r.get("departments") or ()),
        None if details is None else Jsonb(dict(details)),
    )


def report_row(record: Mapping[str, Any]) -> Row:
    """A ``reports`` row of a reports record (:func:`models.reports.encode_report`)."""
    r = record
    return (
        r["id"], r["kind"], r["text"], r["severity"], r["district"], to_datetime(r["ts"]),
        r["reporter"], r["source"], to_datetime(r["received_at"]), _float(r.get("lat")),
        _float(r.get("lon")), list(r.get("attachments") or ()),
    )


def _position(lat: Any, lon: Any) -> tuple[float | None, float | None]:
    """(lat, lon) as floats when both are given, else (None, None)."""
    if lat is None or lon is None:
        return None, None
    return float(lat), float(lon)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


ROW_BUILDERS: dict[str, Callable[[Any], Row]] = {
    "readings": reading_row,
    "vitals": vital_row,
    "indicators": indicator_row,
    "alerts": alert_row,
    "incidents": incident_row,
    "incident_events": incident_event_row,
    "reports": report_row,
}
