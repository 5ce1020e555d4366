"""Routing incidents to departments, and the ``incidents:`` block of config.yaml it reads."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from alerts.lifecycle import Incident
from alerts.routing import merge, route, route_incident
from settings.incidents import IncidentSettings, incident_problems
from settings.indicators import INDICATORS
from tests.support import shipped_config

# The block proposed for config.yaml (kept here so that it is known to validate).
CONFIG_BLOCK = """
incidents:
  grouping_window_s: 900
  departments:
    - id: environment-bureau
      name: Environment Bureau
      sla_ack_s: 900
      sla_resolve_s: 14400
      escalation:
        - {name: duty-officer, notify: [env-duty-officer]}
        - {name: bureau-head, notify: [env-bureau-head], after_s: 3600}
    - id: traffic-police
      name: Traffic Police
      sla_ack_s: 300
      sla_resolve_s: 3600
      escalation:
        - {name: shift-commander, notify: [traffic-shift-commander]}
    - id: water-authority
      name: Water Authority
      sla_ack_s: 300
      sla_resolve_s: 7200
      escalation:
        - {name: shift-lead, notify: [water-shift-lead]}
        - {name: director, notify: [water-director], after_s: 1200}
    - id: grid-operator
      name: Grid Operator
      sla_ack_s: 300
      sla_resolve_s: 3600
      escalation:
        - {name: control-room-lead, notify: [grid-control-lead]}
    - id: emergency-management
      name: Emergency Management
      sla_ack_s: 120
      sla_resolve_s: 3600
      escalation:
        - {name: duty-manager, notify: [em-duty-manager]}
        - {name: director, notify: [em-director], after_s: 600}
    - id: operations
      name: City Operations Centre
      sla_ack_s: 600
      sla_resolve_s: 14400
      escalation:
        - {name: shift-supervisor, notify: [ops-shift-supervisor]}
  routing:
    rules:
      - {kinds: [pm25, pm10, no2, o3, co, so2, aqi, aqi_instant, noise],
         departments: [environment-bureau]}
      - {kinds: [traffic_speed, traffic], departments: [traffic-police]}
      - {kinds: [water_level, water_pressure, rainfall], departments: [water-authority]}
      - {kinds: [power_load, power], departments: [grid-operator]}
      - {kinds: [crowd_density, crowd], departments: [traffic-police, emergency-management]}
      - {kinds: [water_level, crowd_density, crowd], min_severity: critical,
         departments: [emergency-management]}
      - {min_severity: emergency, departments: [emergency-management]}
    default: [operations]
  correlation:
    - {id: flood-risk, kinds: [rainfall, water_level], window_s: 3600, title: Flood risk}
    - {id: smog, kinds: [pm25, pm10, no2, aqi], window_s: 1800, title: Smog episode}
  suppression: []
"""


def _settings() -> IncidentSettings:
    return IncidentSettings.model_validate(yaml.safe_load(CONFIG_BLOCK)["incidents"])


def test_the_proposed_config_block_validates_against_the_city_of_config_yaml() -> None:
    settings = _settings()
    city = shipped_config()
    kinds = {*city["kinds"], *INDICATORS}
    districts = [d["id"] for d in city["districts"]]
    assert incident_problems(settings, alert_kinds=kinds, district_ids=districts) == []
    assert settings.department("water-authority").escalation_after_s() == (300.0, 1200.0)
    assert settings.department("operations").escalation_after_s() == (600.0,)


@pytest.mark.parametrize(
    ("district", "kinds", "severity", "expected"),
    [
        ("harbour", ["pm25"], "warning", ("environment-bureau",)),
        ("harbour", ["water_level"], "warning", ("water-authority",)),
        ("harbour", ["water_level"], "critical", ("water-authority", "emergency-management")),
        ("old-town", ["crowd_density"], "warning", ("traffic-police", "emergency-management")),
        ("old-town", ["rainfall", "water_level"], "critical",
         ("water-authority", "emergency-management")),
        ("old-town", ["device_health"], "critical", ("operations",)),
        ("old-town", ["pm25"], "emergency", ("environment-bureau", "emergency-management")),
    ],
)
def test_routing_by_kind_and_severity(
    district: str, kinds: list[str], severity: str, expected: tuple[str, ...]
) -> None:
    routing = _settings().routing
    assert route(routing, district=district, kinds=kinds, severity=severity) == expected


def test_routing_by_district_and_rule() -> None:
    routing = IncidentSettings.model_validate({
        "departments": [{"id": d, "name": d, "sla_ack_s": 60, "sla_resolve_s": 600}
                        for d in ("harbour-master", "water", "ops")],
        "routing": {"rules": [
            {"districts": ["harbour"], "kinds": ["water_level"], "departments": ["harbour-master"]},
            {"rules": ["water-level"], "departments": ["water", "harbour-master"]},
        ], "default": ["ops"]},
    }).routing
    assert route(routing, district="harbour", kinds=["water_level"], severity="warning") == (
        "harbour-master",)
    assert route(routing, district="riverside", kinds=["water_level"], severity="warning") == (
        "ops",)
    assert route(routing, district="harbour", kinds=["water_level"], severity="warning",
                 rules=["water-level"]) == ("harbour-master", "water")


def test_an_incident_keeps_its_owner_first_when_routing_grows() -> None:
    incident = Incident(id="inc-1", district="harbour", rule="r", kind="rainfall", title="t",
                        severity="critical", departments=("operations",),
                        kinds=("rainfall", "water_level"), rules=("r",))
    assert route_incident(_settings().routing, incident) == (
        "operations", "water-authority", "emergency-management")
    assert merge(("a", "b"), ("b", "c", "a", "c")) == ("a", "b", "c")


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"grouping_window": 60}, "Extra inputs are not permitted"),
        ({"grouping_window_s": 0}, "greater than 0"),
        ({"departments": [{"id": "w", "name": "W", "sla_ack_s": 600, "sla_resolve_s": 60}]},
         "must not be shorter than sla_ack_s"),
        ({"departments": [{"id": "w", "name": "W", "sla_ack_s": 600, "sla_resolve_s": 6000,
                           "escalation": [{"name": "a"}, {"name": "b", "after_s": 300}]}]},
         "later and later, got after_s [600.0, 300.0]"),
        ({"departments": [{"id": "Water", "name": "W", "sla_ack_s": 1, "sla_resolve_s": 1}]},
         "should match pattern"),
        ({"routing": {"rules": [{"kinds": ["pm25"], "departments": []}]}}, "at least 1 item"),
        ({"routing": {"rules": [{"departments": ["x"], "min_severity": "info"}]}},
         "'warning', 'critical' or 'emergency'"),
        ({"correlation": [{"id": "c", "kinds": ["rainfall"], "window_s": 60}]},
         "at least 2 items"),
        ({"correlation": [{"id": "c", "kinds": ["rainfall", "rainfall"], "window_s": 60}]},
         "repeat a kind"),
        ({"suppression": [{"id": "s", "districts": ["harbour"], "start": "2026-11-26T06:00:00Z",
                           "end": "2026-11-26T05:00:00Z"}]}, "must be after start"),
        ({"suppression": [{"id": "s", "start": "2026-11-26T05:00:00Z",
                           "end": "2026-11-26T06:00:00Z"}]}, "needs districts or devices"),
        ({"suppression": [{"id": "s", "districts": ["harbour"], "start": "2026-11-26T05:00:00",
                           "end": "2026-11-26T06:00:00Z"}]}, "timezone"),
    ],
)
def test_a_wrong_incidents_block_is_refused_naming_the_problem(block: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        IncidentSettings.model_validate(block)
    assert fragment in str(caught.value)


def test_references_that_do_not_resolve_are_named_by_key() -> None:
    settings = IncidentSettings.model_validate({
        "departments": [{"id": d, "name": d, "sla_ack_s": 60, "sla_resolve_s": 600}
                        for d in ("water", "water")],
        "routing": {"rules": [{"kinds": ["pm26"], "districts": ["docks"],
                               "departments": ["fire"]}], "default": ["ops"]},
        "correlation": [{"id": "c", "kinds": ["rainfall", "snow"], "window_s": 60}],
    })
    problems = incident_problems(settings, alert_kinds={"pm25", "rainfall"},
                                 district_ids=["harbour"])
    assert problems == [
        ("incidents.departments[1].id", "'water' is repeated"),
        ("incidents.routing.rules[0].departments", "'fire' is not a department id"),
        ("incidents.routing.rules[0].kinds", "'pm26' is not a kind"),
        ("incidents.routing.rules[0].districts", "'docks' is not a district id"),
        ("incidents.routing.default", "'ops' is not a department id"),
        ("incidents.correlation[0].kinds", "'snow' is not a kind"),
    ]
    with pytest.raises(KeyError, match="'fire' is not one of \\['water', 'water'\\]"):
        settings.department("fire")


def test_settings_are_frozen() -> None:
    settings = _settings()
    with pytest.raises(ValidationError):
        settings.grouping_window_s = 1  # type: ignore[misc]
