"""The ``incidents:`` section of config.yaml: departments, routing, correlation (by district and
by place), suppression.

Frozen, validated pydantic models (no I/O), meant to sit in :class:`settings.config.Settings` as
``settings.incidents``; unknown keys are refused. Every block is optional::

    incidents:
      grouping_window_s: 900
      departments:
        - {id: water-authority, name: Water Authority, sla_ack_s: 300, sla_resolve_s: 7200,
           escalation: [{name: shift-lead, notify: [water-shift-lead]},
                        {name: director, notify: [water-director], after_s: 1800}],
           escalation_repeat: 0}
      routing:
        rules: [{kinds: [water_level, rainfall], departments: [water-authority]}]
        default: [operations]
      correlation: [{id: flood-risk, kinds: [rainfall, water_level], window_s: 3600}]
      spatial_rules: [{name: burst-main, kinds: [water_pressure, water_level, traffic],
                       within_m: 500, within_s: 600, departments: [water-authority]}]
      suppression: [{id: pump-works, districts: [harbour], start: 2026-11-26T06:00:00Z,
                     end: 2026-11-26T10:00:00Z, reason: pump station maintenance}]

    settings.incidents.department("water-authority").escalation_after_s()   # (300.0, 1800.0)
    incident_problems(settings.incidents, alert_kinds={...}, district_ids=[...])

Severities of incidents are :data:`SEVERITIES`, mildest first: alerts bring ``warning`` or
``critical``; escalation can raise an incident one step further, up to ``emergency``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "SEVERITIES",
    "CorrelationRule",
    "Department",
    "EscalationLevel",
    "IncidentSettings",
    "RoutingRule",
    "RoutingSettings",
    "Severity",
    "SpatialRule",
    "SuppressionWindow",
    "incident_problems",
    "severity_rank",
]

Severity = Literal["warning", "critical", "emergency"]
SEVERITIES: tuple[Severity, ...] = ("warning", "critical", "emergency")
"""Incident severities, mildest first."""

_ID = r"^[a-z0-9][a-z0-9_.-]*$"
Id = Annotated[str, Field(pattern=_ID)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def severity_rank(severity: str) -> int:
    """0 for warning, 1 for critical, 2 for emergency; ValueError for anything else."""
    if severity not in SEVERITIES:
        msg = f"severity {severity!r} is not one of {list(SEVERITIES)}"
        raise ValueError(msg)
    return SEVERITIES.index(severity)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EscalationLevel(_Frozen):
    """One step of a department's escalation ladder.

    ``after_s``: the step fires when an incident has gone unacknowledged this long since it
    was opened (or reopened); absent, step n fires after n x the department's ``sla_ack_s``.
    """

    name: str
    notify: tuple[str, ...] = ()
    after_s: Seconds | None = None
    raise_severity: bool = True


class Department(_Frozen):
    """A department that receives incidents, with its service levels and escalation ladder."""

    id: Id
    name: str
    sla_ack_s: Seconds
    sla_resolve_s: Seconds
    escalation: tuple[EscalationLevel, ...] = ()
    escalation_repeat: Annotated[int, Field(ge=0, le=100)] = 0
    """After its last step the ladder runs again from the first this many times, each round
    starting when the previous one ended (step n of round r fires at r x last + after_s)."""

    def escalation_after_s(self) -> tuple[float, ...]:
        """When each escalation step fires (every round), in seconds unacknowledged since
        (re)opening."""
        once = [
            level.after_s if level.after_s is not None else (n + 1) * self.sla_ack_s
            for n, level in enumerate(self.escalation)
        ]
        if not once:
            return ()
        return tuple(after + r * once[-1] for r in range(self.escalation_repeat + 1)
                     for after in once)

    def escalation_step(self, number: int) -> EscalationLevel:
        """Step ``number`` (1-based, counting through the repeated rounds) of the ladder."""
        return self.escalation[(number - 1) % len(self.escalation)]

    @model_validator(mode="after")
    def _consistent(self) -> Department:
        if self.sla_resolve_s < self.sla_ack_s:
            msg = (f"sla_resolve_s ({self.sla_resolve_s:g}) must not be shorter than "
                   f"sla_ack_s ({self.sla_ack_s:g})")
            raise ValueError(msg)
        times = self.escalation_after_s()
        for before, after in zip(times, times[1:], strict=False):
            if after <= before:
                msg = f"escalation steps must fire later and later, got after_s {list(times)}"
                raise ValueError(msg)
        return self


class RoutingRule(_Frozen):
    """Send matching incidents to ``departments``; an empty filter matches everything."""

    departments: Annotated[tuple[Id, ...], Field(min_length=1)]
    kinds: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    min_severity: Severity = "warning"


class RoutingSettings(_Frozen):
    """Routing rules (every matching rule adds its departments) and the fallback departments."""

    rules: tuple[RoutingRule, ...] = ()
    default: tuple[Id, ...] = ()


class CorrelationRule(_Frozen):
    """Alerts of these kinds in one district, within ``window_s`` of each other, are one
    incident (heavy rain + rising water level)."""

    id: Id
    kinds: Annotated[tuple[str, ...], Field(min_length=2)]
    window_s: Seconds
    title: str | None = None

    @model_validator(mode="after")
    def _distinct(self) -> CorrelationRule:
        if len(set(self.kinds)) != len(self.kinds):
            msg = f"kinds {list(self.kinds)} repeat a kind"
            raise ValueError(msg)
        return self


class SpatialRule(_Frozen):
    """Located alerts of these kinds, in any district, within ``within_m`` metres and
    ``within_s`` seconds of an incident of another of them, join it (a water-pressure drop, a
    flooded road and a traffic slowdown near each other: one burst main); the incident is also
    routed to ``departments``."""

    name: Id
    kinds: Annotated[tuple[str, ...], Field(min_length=2)]
    within_m: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    within_s: Seconds
    departments: tuple[str, ...] = ()
    title: str | None = None

    @model_validator(mode="after")
    def _distinct(self) -> SpatialRule:
        if len(set(self.kinds)) != len(self.kinds):
            msg = f"kinds {list(self.kinds)} repeat a kind"
            raise ValueError(msg)
        return self


class SuppressionWindow(_Frozen):
    """A maintenance window: alerts of these districts or devices (and kinds, if given) open no
    incident, and incidents there do not escalate, from ``start`` until ``end``."""

    id: Id
    start: AwareDatetime
    end: AwareDatetime
    districts: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    reason: str = ""

    @property
    def start_ts(self) -> float:
        """``start`` in epoch seconds."""
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        """``end`` in epoch seconds."""
        return self.end.timestamp()

    @model_validator(mode="after")
    def _sane(self) -> SuppressionWindow:
        if self.end <= self.start:
            msg = f"end {self.end.isoformat()} must be after start {self.start.isoformat()}"
            raise ValueError(msg)
        if not self.districts and not self.devices:
            msg = "a suppression window needs districts or devices (it would silence the city)"
            raise ValueError(msg)
        return self


class IncidentSettings(_Frozen):
    """Everything about turning alerts into incidents and incidents into work."""

    grouping_window_s: Seconds = 900.0
    departments: tuple[Department, ...] = ()
    routing: RoutingSettings = RoutingSettings()
    correlation: tuple[CorrelationRule, ...] = ()
    spatial_rules: tuple[SpatialRule, ...] = ()
    suppression: tuple[SuppressionWindow, ...] = ()

    def department(self, department_id: str) -> Department:
        """The department with this id; KeyError naming the known ids if there is none."""
        for department in self.departments:
            if department.id == department_id:
                return department
        msg = f"department {department_id!r} is not one of {[d.id for d in self.departments]}"
        raise KeyError(msg)

    def departments_by_id(self) -> dict[str, Department]:
        """The departments keyed by id."""
        return {d.id: d for d in self.departments}


def incident_problems(
    incidents: IncidentSettings, *, alert_kinds: Collection[str], district_ids: Sequence[str]
) -> list[tuple[str, str]]:
    """(dotted key, reason) for every reference of ``incidents`` that does not resolve.

    ``alert_kinds``: what an alert's ``kind`` can be (sensor kinds and indicator names).
    """
    where = "incidents"
    problems: list[tuple[str, str]] = []
    ids = [d.id for d in incidents.departments]
    for number, department_id in enumerate(ids):
        if ids.index(department_id) != number:
            problems.append((f"{where}.departments[{number}].id", f"{department_id!r} is repeated"))

    def check(key: str, values: Sequence[str], known: Collection[str], what: str) -> None:
        for value in values:
            if value not in known:
                problems.append((key, f"{value!r} is not a {what}"))

    routing = incidents.routing
    for number, rule in enumerate(routing.rules):
        key = f"{where}.routing.rules[{number}]"
        check(f"{key}.departments", rule.departments, ids, "department id")
        check(f"{key}.kinds", rule.kinds, alert_kinds, "kind")
        check(f"{key}.districts", rule.districts, district_ids, "district id")
    check(f"{where}.routing.default", routing.default, ids, "department id")
    for number, correlation in enumerate(incidents.correlation):
        check(f"{where}.correlation[{number}].kinds", correlation.kinds, alert_kinds, "kind")
    names = [rule.name for rule in incidents.spatial_rules]
    for number, spatial in enumerate(incidents.spatial_rules):
        key = f"{where}.spatial_rules[{number}]"
        if names.index(spatial.name) != number:
            problems.append((f"{key}.name", f"{spatial.name!r} is repeated"))
        check(f"{key}.kinds", spatial.kinds, alert_kinds, "kind")
        check(f"{key}.departments", spatial.departments, ids, "department id")
    for number, window in enumerate(incidents.suppression):
        key = f"{where}.suppression[{number}]"
        check(f"{key}.districts", window.districts, district_ids, "district id")
        check(f"{key}.kinds", window.kinds, alert_kinds, "kind")
    return problems
