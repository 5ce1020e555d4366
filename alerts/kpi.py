"""Department KPIs from incident events: response times, SLA shares, backlog, false alarms.

Feed it the stored events (``IncidentEvent`` s or their records, any order, duplicates allowed)
and the departments of config.yaml; ``now`` comes in as an argument::

    rows = department_kpis(events, settings.incidents.departments, now=now,
                           since=now - 7 * 86400, period_s=86400)
    rows[0].to_record()   # {"department": "water-authority", "period_start": "...Z", ...}

An incident counts for every department it was routed to, in the period (UTC-aligned multiples
of ``period_s``, or ``[since, until)`` as a whole) in which it was opened:

- ``opened``, ``acknowledged``, ``resolved``: incidents, and how many of them were ever
  acknowledged and resolved (a reopened incident keeps its first response);
- ``mean_ack_s``, ``median_ack_s``: first acknowledgement minus opening; the same for resolve;
- ``ack_within_sla``: of the incidents whose outcome against the department's ``sla_ack_s`` is
  known at ``now`` (acknowledged, or unacknowledged past the deadline), the share acknowledged
  in time (None when none is known yet); ``resolve_within_sla`` likewise with ``sla_resolve_s``;
- ``backlog``: those still open, acknowledged or dispatched now;
- ``false_alarms``: those whose standing outcome (resolved or closed) is ``false_alarm``, also
  counted per alert rule and per detector (``detector`` or ``device_id`` of their alerts).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from alerts.lifecycle import IncidentEvent, state_after
from models.timefmt import iso
from settings.incidents import Department

__all__ = ["DepartmentKpi", "IncidentFacts", "department_kpis", "incident_facts"]

_ACTIVE = ("open", "acknowledged", "dispatched")


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What the KPIs need of one incident, read from its events."""

    incident_id: str
    opened_at: float
    departments: tuple[str, ...]
    acknowledged_at: float | None
    resolved_at: float | None
    state: str
    outcome: str | None
    rules: tuple[str, ...]
    detectors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DepartmentKpi:
    """One department's KPIs over one period (``period_start``/``end`` None: unbounded)."""

    department: str
    period_start: float | None
    period_end: float | None
    opened: int = 0
    acknowledged: int = 0
    resolved: int = 0
    mean_ack_s: float | None = None
    median_ack_s: float | None = None
    mean_resolve_s: float | None = None
    median_resolve_s: float | None = None
    ack_within_sla: float | None = None
    resolve_within_sla: float | None = None
    backlog: int = 0
    false_alarms: int = 0
    false_alarms_by_rule: dict[str, int] = field(default_factory=dict)
    false_alarms_by_detector: dict[str, int] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict; times ISO 8601 UTC, durations and shares rounded to 3 decimals."""
        record: dict[str, Any] = {}
        for spec in fields(self):
            name, value = spec.name, getattr(self, spec.name)
            if name.startswith("period_") and value is not None:
                value = iso(value)
            elif isinstance(value, float):
                value = round(value, 3)
            record[name] = value
        return record


def incident_facts(events: Iterable[IncidentEvent | Mapping[str, Any]]) -> list[IncidentFacts]:
    """One :class:`IncidentFacts` per incident with an ``open`` event among ``events``."""
    unique: dict[tuple[str, int], IncidentEvent] = {}
    for item in events:
        event = item if isinstance(item, IncidentEvent) else IncidentEvent.from_record(item)
        unique.setdefault((event.incident_id, event.sequence), event)
    by_incident: dict[str, list[IncidentEvent]] = {}
    for key in sorted(unique):
        by_incident.setdefault(key[0], []).append(unique[key])
    return [f for f in map(_facts, by_incident.values()) if f is not None]


def department_kpis(
    events: Iterable[IncidentEvent | Mapping[str, Any]], departments: Sequence[Department], *,
    now: float, since: float | None = None, until: float | None = None,
    period_s: float | None = None,
) -> list[DepartmentKpi]:
    """KPIs per department (config order, then others by id) and period (oldest first).

    Without ``period_s`` every configured department gets a row, even an idle one.
    """
    if period_s is not None and not (math.isfinite(period_s) and period_s > 0):
        msg = f"period_s={period_s!r} must be a positive number of seconds"
        raise ValueError(msg)
    groups: dict[tuple[str, float | None], list[IncidentFacts]] = {}
    if period_s is None:
        groups = {(d.id, since): [] for d in departments}
    for facts in incident_facts(events):
        if (since is not None and facts.opened_at < since) or (
            until is not None and facts.opened_at >= until
        ):
            continue
        start = since if period_s is None else math.floor(facts.opened_at / period_s) * period_s
        for department in facts.departments:
            groups.setdefault((department, start), []).append(facts)
    order = {d.id: n for n, d in enumerate(departments)}
    slas = {d.id: d for d in departments}

    def sort_key(key: tuple[str, float | None]) -> tuple[int, str, float]:
        return (order.get(key[0], len(order)), key[0], -math.inf if key[1] is None else key[1])

    rows = []
    for department_id, start in sorted(groups, key=sort_key):
        end = until if period_s is None else start + period_s  # type: ignore[operator]
        rows.append(_kpi(department_id, start, end, groups[(department_id, start)],
                         slas.get(department_id), now))
    return rows


def _facts(events: list[IncidentEvent]) -> IncidentFacts | None:
    opened = next((e for e in events if e.action == "open"), None)
    if opened is None:
        return None
    departments: dict[str, None] = {}
    rules: dict[str, None] = {}
    detectors: dict[str, None] = {}
    state, outcome = "open", None
    acknowledged = resolved = None
    for event in events:
        departments.update(dict.fromkeys(event.departments))
        if event.action in ("open", "alert"):
            rules[event.details["rule"]] = None
            if event.details.get("detector"):
                detectors[event.details["detector"]] = None
        if event.action == "acknowledge" and acknowledged is None:
            acknowledged = event.ts
        if event.action == "resolve":
            resolved = event.ts if resolved is None else resolved
            outcome = event.details.get("outcome")
        state = state_after(event.action) or state
    return IncidentFacts(
        opened.incident_id, opened.ts, tuple(departments), acknowledged, resolved, state,
        outcome if state in ("resolved", "closed") else None, tuple(rules), tuple(detectors),
    )


def _within(
    pairs: list[tuple[float, float | None]], sla_s: float | None, now: float
) -> float | None:
    """Share of (start, done) pairs done within sla_s, of those whose verdict is known."""
    if sla_s is None:
        return None
    known = [done is not None or now - start > sla_s for start, done in pairs]
    met = [done is not None and done - start <= sla_s for start, done in pairs]
    return sum(met) / sum(known) if any(known) else None


def _kpi(
    department: str, start: float | None, end: float | None, incidents: list[IncidentFacts],
    sla: Department | None, now: float,
) -> DepartmentKpi:
    acks = [i.acknowledged_at - i.opened_at for i in incidents if i.acknowledged_at is not None]
    fixes = [i.resolved_at - i.opened_at for i in incidents if i.resolved_at is not None]
    false_alarms = [i for i in incidents if i.outcome == "false_alarm"]
    return DepartmentKpi(
        department=department, period_start=start, period_end=end, opened=len(incidents),
        acknowledged=len(acks), resolved=len(fixes),
        mean_ack_s=statistics.fmean(acks) if acks else None,
        median_ack_s=statistics.median(acks) if acks else None,
        mean_resolve_s=statistics.fmean(fixes) if fixes else None,
        median_resolve_s=statistics.median(fixes) if fixes else None,
        ack_within_sla=_within([(i.opened_at, i.acknowledged_at) for i in incidents],
                               None if sla is None else sla.sla_ack_s, now),
        resolve_within_sla=_within([(i.opened_at, i.resolved_at) for i in incidents],
                                   None if sla is None else sla.sla_resolve_s, now),
        backlog=sum(i.state in _ACTIVE for i in incidents),
        false_alarms=len(false_alarms),
        false_alarms_by_rule=dict(Counter(r for i in false_alarms for r in i.rules)),
        false_alarms_by_detector=dict(Counter(d for i in false_alarms for d in i.detectors)),
    )
