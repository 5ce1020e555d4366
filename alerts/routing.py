"""Which departments an incident goes to: config.yaml's ``incidents.routing`` rules, pure.

A rule matches when each of its filters does (an empty filter matches everything): one of its
``kinds`` is among the incident's kinds, one of its ``rules`` among the incident's alert rules,
the district is one of its ``districts``, and the severity is at least ``min_severity``. Every
matching rule adds its departments, in rule order; when none matches, ``routing.default``
applies::

    route(settings.incidents.routing, district="harbour", kinds=("water_level",),
          severity="critical")                     # ("water-authority", "emergency-management")
    route_incident(routing, incident)              # the same for an Incident's kinds and rules
    merge(incident.departments, new)               # departments only grow; the first stays first

The first department is the incident's owner: its SLA and escalation ladder apply (see
:mod:`alerts.escalation`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from alerts.lifecycle import Incident
from settings.incidents import RoutingRule, RoutingSettings, severity_rank

__all__ = ["matches", "merge", "route", "route_incident"]


def matches(
    rule: RoutingRule, *, district: str, kinds: Collection[str], severity: str,
    rules: Collection[str] = (),
) -> bool:
    """Whether ``rule`` takes an incident with these facts."""
    return (
        (not rule.kinds or any(kind in kinds for kind in rule.kinds))
        and (not rule.rules or any(name in rules for name in rule.rules))
        and (not rule.districts or district in rule.districts)
        and severity_rank(severity) >= severity_rank(rule.min_severity)
    )


def route(
    routing: RoutingSettings, *, district: str, kinds: Collection[str], severity: str,
    rules: Collection[str] = (),
) -> tuple[str, ...]:
    """The departments, in order and without repeats, that an incident with these facts goes to."""
    found: tuple[str, ...] = ()
    for rule in routing.rules:
        if matches(rule, district=district, kinds=kinds, severity=severity, rules=rules):
            found = merge(found, rule.departments)
    return found or tuple(routing.default)


def route_incident(routing: RoutingSettings, incident: Incident) -> tuple[str, ...]:
    """The departments ``incident`` goes to now, its current ones first."""
    new = route(routing, district=incident.district, kinds=incident.kinds,
                severity=incident.severity, rules=incident.rules)
    return merge(incident.departments, new)


def merge(current: Iterable[str], new: Iterable[str]) -> tuple[str, ...]:
    """``current`` followed by the departments of ``new`` it lacks."""
    merged = list(dict.fromkeys(current))
    merged += [d for d in dict.fromkeys(new) if d not in merged]
    return tuple(merged)
