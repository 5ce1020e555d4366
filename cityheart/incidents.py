"""``cityheart incidents`` and ``cityheart kpi``: incidents and department KPIs from history.

    cityheart incidents [--state open] [--district harbour] [--since 24h] [--json]
    cityheart incidents --near 48.14,11.565 --radius 2km | --within harbour | --bbox S,W,N,E
    cityheart kpi [--since 7d] [--period 1d] [--json]

``incidents`` lists the incidents open at some time since ``--since`` (the recorder stores
them from the ``incidents`` topic), oldest first; with ``--json`` one JSON object a line: the
incident record (id, state, severity, district, departments, opened_at, alert_count, ...);
a spatial filter keeps those whose centre it holds (:mod:`cityheart.spatial_cli`).
``kpi`` computes :func:`alerts.kpi.department_kpis` from the incident events stored since
``--since`` (incidents opened before it are left out), one row per department (and period with
``--period``); with ``--json`` one JSON object a line. The database is found as for
``cityheart history``. Exit codes: 0 done, 2 a bad argument.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson

from alerts.kpi import DepartmentKpi, department_kpis
from alerts.lifecycle import STATES
from cityheart.history import open_history_storage
from cityheart.spatial_cli import SpatialOptions, spatial_filter
from connectors.storage.history import incident_record
from models.choices import check_choices
from models.history import parse_duration, parse_time
from settings.config import Settings
from settings.incidents import SEVERITIES

__all__ = ["STATES", "run_incidents", "run_kpi"]

_MAX_EVENTS = 1_000_000


def run_incidents(
    settings: Settings,
    *,
    states: Sequence[str] = (),
    districts: Sequence[str] = (),
    since: str = "24h",
    limit: int = 1000,
    as_json: bool = False,
    url: str | None = None,
    now: float | None = None,
    spatial: SpatialOptions = (None, None, None, None),
) -> int:
    """Print the stored incidents asked for to stdout; return the exit code."""
    now = time.time() if now is None else now
    try:
        start = parse_time(since, now=now)
        check_choices(states, STATES, "--state")
        check_choices(districts, settings.district_ids(), "--district")
        where = spatial_filter(settings, spatial)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with open_history_storage(settings, url) as storage:
        rows = storage.history.incidents(since=start, districts=districts, states=states,
                                         limit=limit, spatial=where)
    for row in rows:
        record = incident_record(row)
        print(orjson.dumps(record).decode() if as_json else _incident_line(record), flush=True)
    return 0


def run_kpi(
    settings: Settings,
    *,
    since: str = "7d",
    period: str | None = None,
    as_json: bool = False,
    url: str | None = None,
    now: float | None = None,
) -> int:
    """Print the department KPIs since ``since`` to stdout; return the exit code."""
    now = time.time() if now is None else now
    try:
        start = parse_time(since, now=now)
        period_s = None if period is None else _period(period)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with open_history_storage(settings, url) as storage:
        events = storage.history.incident_events(since=start, limit=_MAX_EVENTS)
    rows = department_kpis(events, settings.incidents.departments, now=now, since=start,
                           period_s=period_s)
    for row in rows:
        print(orjson.dumps(row.to_record()).decode() if as_json else _kpi_line(row), flush=True)
    return 0


def _period(period: str) -> float:
    try:
        period_s = parse_duration(period)
    except ValueError as exc:
        msg = f"--period: {exc}"
        raise ValueError(msg) from None
    if period_s <= 0:
        msg = f"--period {period!r} must be a duration above zero, such as 1h, 1d or 7d"
        raise ValueError(msg)
    return period_s


def _incident_line(r: dict[str, Any]) -> str:
    severity = r.get("severity") or "-"
    width = max(len(s) for s in SEVERITIES)
    return (f"{r['opened_at']}  {r['district']:<16} {r['state']:<12} {severity:<{width}}  "
            f"{r['id']}  {','.join(r.get('departments') or []) or '-'}  "
            f"alerts {r.get('alert_count', '?')}  {r.get('title') or ''}").rstrip()


def _kpi_line(k: DepartmentKpi) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}s"

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    record = k.to_record()
    period = record["period_start"] or "all"
    return (f"{k.department:<22} {period:<24} opened {k.opened:<4} ack {k.acknowledged:<4} "
            f"resolved {k.resolved:<4} backlog {k.backlog:<4} "
            f"ack {seconds(k.median_ack_s)} (SLA {share(k.ack_within_sla)})  "
            f"resolve {seconds(k.median_resolve_s)} (SLA {share(k.resolve_within_sla)})  "
            f"false alarms {k.false_alarms}")
