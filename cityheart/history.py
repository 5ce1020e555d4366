"""``cityheart history``: what happened, when, and what was done, from the stored history.

    cityheart history --district old-town --indicator aqi --since 1h      # a series
    cityheart history --json --district D --kind pm25 --since 7d           # one JSON object a line
    cityheart history latest [--district D]                                 # newest vitals
    cityheart history alerts --since 1d [--severity critical] [--kind pm25]
    cityheart history incidents --since 7d [--state open]
    cityheart history events [--incident ID] --since 1d
    cityheart history readings --kind pm25 --near 48.14,11.565 --radius 500m --since 1h
    cityheart history alerts --within old-town | --bbox 48.13,11.55,48.15,11.61

``--since``/``--until`` take a duration ago (``15m``, ``1h``, ``7d``), ``now`` or an ISO 8601
time with a zone. A series' resolution (raw, 1m, 1h, 1d) follows the range unless
``--resolution`` says otherwise. ``readings`` lists a kind's raw readings (each device's, with
its position). Readings, alerts and incidents take one spatial filter (``--near LAT,LON
--radius 500m``, ``--within DISTRICT``, ``--bbox S,W,N,E``: :mod:`cityheart.spatial_cli`), by
the reading's, alert's or incident's centre's position. The database is the one of
``--database-url`` (or CITYHEART_DATABASE_URL), else config.yaml's ``database``; when it is
not running (an embedded one runs while ``cityheart up`` does) the command fails at once with
one line naming the URL and how to start it. Exit codes: 0 done, 2 a bad argument; a database
error raises ConnectorError (exit 1).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, get_args

import orjson

from alerts.lifecycle import STATES
from alerts.rules import Severity as AlertSeverity
from cityheart.spatial_cli import SpatialOptions, spatial_filter
from connectors.storage import Storage, StorageOptions
from connectors.storage.pages import Pages
from connectors.storage.pool import check_reachable
from connectors.storage.schema import LATEST, schema_version
from models.choices import check_choices
from models.errors import ConnectorError
from models.history import RESOLUTIONS, parse_time
from models.spatial import SpatialFilter
from models.vitals.records import CITY
from settings.config import Settings
from settings.incidents import SEVERITIES
from settings.indicators import INDICATORS

__all__ = ["WHAT", "open_history_storage", "run_history"]

log = logging.getLogger(__name__)

WHAT = ("series", "latest", "alerts", "incidents", "events", "readings")
SPATIAL_WHAT = ("readings", "alerts", "incidents")
ALERT_SEVERITIES = get_args(AlertSeverity)


def run_history(
    settings: Settings,
    *,
    what: str = "series",
    districts: Sequence[str] = (),
    indicator: str | None = None,
    kind: str | None = None,
    since: str = "1h",
    until: str = "now",
    resolution: str | None = None,
    severities: Sequence[str] = (),
    states: Sequence[str] = (),
    incident: str | None = None,
    limit: int = 1000,
    as_json: bool = False,
    url: str | None = None,
    now: float | None = None,
    spatial: SpatialOptions = (None, None, None, None),
) -> int:
    """Print the history asked for to stdout; return the exit code."""
    now = time.time() if now is None else now
    try:
        start, end = parse_time(since, now=now), parse_time(until, now=now)
        _check(what, districts, indicator, kind, resolution, start, end)
        _check_choices(settings, what, districts, indicator, kind, severities, states)
        where = spatial_filter(settings, spatial)
        if where is not None and what not in SPATIAL_WHAT:
            msg = f"--near, --within and --bbox filter {', '.join(SPATIAL_WHAT)}, not {what}"
            raise ValueError(msg)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with open_history_storage(settings, url) as storage:
        records = _query(storage, what, districts, indicator, kind, start, end, resolution,
                         severities, states, incident, limit, where)
    for record in records:
        print(orjson.dumps(record).decode() if as_json else _line(what, record), flush=True)
    return 0


def _check(
    what: str, districts: Sequence[str], indicator: str | None, kind: str | None,
    resolution: str | None, start: float, end: float,
) -> None:
    if what not in WHAT:
        msg = f"{what!r} is not one of {', '.join(WHAT)}"
        raise ValueError(msg)
    if end <= start:
        msg = "--until must be after --since"
        raise ValueError(msg)
    if resolution is not None and resolution not in RESOLUTIONS:
        msg = f"resolution {resolution!r} is not one of {', '.join(RESOLUTIONS)}"
        raise ValueError(msg)
    if what == "readings" and kind is None:
        msg = "readings need --kind"
        raise ValueError(msg)
    if what == "series":
        if len(districts) != 1:
            msg = f"a series needs exactly one --district, got {len(districts)}"
            raise ValueError(msg)
        if (indicator is None) == (kind is None):
            msg = "a series needs either --indicator or --kind"
            raise ValueError(msg)


def _check_choices(
    settings: Settings, what: str, districts: Sequence[str], indicator: str | None,
    kind: str | None, severities: Sequence[str], states: Sequence[str],
) -> None:
    """Refuse a filter value that cannot match anything, listing the valid ones."""
    check_choices(districts, [*settings.district_ids(), CITY], "--district")
    check_choices([indicator], INDICATORS, "--indicator")
    kinds = [*settings.kinds, *INDICATORS] if what == "alerts" else list(settings.kinds)
    check_choices([kind], kinds, "--kind")
    check_choices(severities, ALERT_SEVERITIES if what == "alerts" else SEVERITIES, "--severity")
    check_choices(states, STATES, "--state")


def _query(
    storage: Storage, what: str, districts: Sequence[str], indicator: str | None,
    kind: str | None, start: float, end: float, resolution: str | None,
    severities: Sequence[str], states: Sequence[str], incident: str | None, limit: int,
    where: SpatialFilter | None = None,
) -> list[dict[str, Any]]:
    history = storage.history
    if what == "readings":
        pages = Pages(storage.pool, postgis=storage.flavour.postgis)
        rows = pages.readings(kind=kind or "", districts=districts, level="raw", since=start,
                              until=end, limit=limit, spatial=where)
        keep = ("ts", "device_id", "district", "kind", "value", "unit", "seq", "lat", "lon")
        return [{k: row.get(k) for k in keep} for row in rows]
    if what == "series":
        source = "indicators" if indicator else "readings"
        name = indicator or kind or ""
        series = history.series(districts[0], name, source=source, since=start, until=end,
                                resolution=resolution)  # type: ignore[arg-type]
        return series.records()
    if what == "latest":
        if indicator:
            return history.latest("indicators", districts=districts, names=[indicator])
        return history.latest("vitals", districts=districts, names=[kind] if kind else [])
    if what == "alerts":
        return history.alerts(since=start, until=end, districts=districts,
                              kinds=[kind] if kind else [], severities=severities, limit=limit,
                              spatial=where)
    if what == "incidents":
        return history.incidents(since=start, until=end, districts=districts, states=states,
                                 severities=severities, limit=limit, spatial=where)
    return history.incident_events(incident_id=incident, since=start, until=end, limit=limit)


def _line(what: str, r: dict[str, Any]) -> str:
    if what == "readings":
        at = f"{r['lat']:.6f},{r['lon']:.6f}" if r.get("lat") is not None else "-"
        return (f"{r['ts']}  {r['district']:<16} {r['kind']:<14} {r['value']:.2f} "
                f"{r['unit']:<8} {r['device_id']}  {at}")
    if what == "series":
        label = r.get("kind") or r.get("indicator")
        extra = r.get("device_id") or r.get("level") or ""
        return (f"{r['ts']}  {r['district']:<16} {label:<14} {r['resolution']:<3}  "
                f"mean {r['value']:.2f}  min {r['min']:.2f}  max {r['max']:.2f}  "
                f"n {r['count']}  {extra}").rstrip()
    if what == "latest":
        if "indicator" in r:
            return (f"{r['ts']}  {r['district']:<16} {r['indicator']:<14} {r['value']:.2f} "
                    f"{r.get('unit') or ''}  {r.get('level') or ''}").rstrip()
        return (f"{r['window_end']}  {r['district']:<16} {r['kind']:<14} mean {r['mean']:.2f}  "
                f"min {r['min']:.2f}  max {r['max']:.2f} {r['unit']}")
    if what == "alerts":
        return (f"{r['ts']}  {r['district']:<16} {r['kind']:<14} {r['severity'].upper():<8}  "
                f"{r['message']}")
    if what == "incidents":
        closed = f"  closed {r['closed_at']}" if r.get("closed_at") else ""
        return (f"{r['opened_at']}  {r['district']:<16} {r['state']:<12} "
                f"{(r.get('severity') or '-'):<8}  {r['id']}  {r['title']}{closed}")
    comment = f"  {r['comment']}" if r.get("comment") else ""
    return f"{r['ts']}  {r['incident_id']}  {r['actor']}  {r['action']}{comment}"


@contextlib.contextmanager
def open_history_storage(settings: Settings, url: str | None) -> Iterator[Storage]:
    """The history database: ``url``, else config's ``database:``. ConnectorError at once, in
    one line naming the URL and how to start it, when it is not running; also when it holds no
    history."""
    database = settings.database
    options = StorageOptions(url=url) if url else StorageOptions.from_database(database)
    try:
        check_reachable(options)
    except ConnectorError as exc:
        if url:
            hint = "is the server of --database-url (CITYHEART_DATABASE_URL) running?"
        elif database.embedded:
            hint = ("the embedded database runs while `cityheart up` does: start it, or point "
                    "--database-url (CITYHEART_DATABASE_URL) at a running server")
        else:
            hint = "is the server of config.yaml's database.url running?"
        msg = f"cannot connect ({exc.reason}); {hint}"
        raise ConnectorError("postgresql", options.masked_url, msg) from None
    storage = Storage.open(options, migrate_schema=False, name="cityheart-history")
    try:
        with storage.pool.connection() as conn:
            version = schema_version(conn)
        if version < LATEST:
            msg = f"no cityheart history in this database (schema v{version}, need v{LATEST})"
            raise ConnectorError("postgresql", options.masked_url, msg)
        yield storage
    finally:
        storage.close()
