"""Incidents people open and hand over, end to end: an operator opens one from a phone call,
assigns it, transfers it, and the other department's dispatcher resolves it; the timeline
holds every step with its actor, and the incident is published as CAP 1.2.

Real Tansu, real PostgreSQL, the flow and the recorder as the child processes production runs,
the dashboard's HTTP server in this process, real HTTP clients with signed tokens, and the
``cityheart incident`` command.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cityheart.cli import app
from connectors.tokens import Claims, issue_token, verify_token
from settings.config import Settings
from tests.support import consume_all
from tests.support.dispatch import dispatch_stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

SECRET = "test-secret-0123456789abcdef-0123"


def token(role: str, department: str | None = None, sub: str | None = None) -> str:
    return issue_token(role=role, department=department, sub=sub or f"{role}-1", secret=SECRET,
                       now=time.time(), ttl_s=3600)


@pytest.fixture
def stack(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    def authenticate(text: str) -> Claims:
        return verify_token(text, secret=SECRET, now=time.time())

    with dispatch_stack(settings, database_url, tmp_path, authenticate=authenticate) as running:
        yield running


def test_an_incident_from_a_call_is_assigned_transferred_and_resolved_by_the_other_department(
    stack: SimpleNamespace,
) -> None:
    from tests.cityheart.test_dispatch_api import call

    base, settings = stack.url, stack.settings
    operator = token("operator", sub="olga")
    water = token("dispatcher", "water-authority", sub="ana")
    grid = token("dispatcher", "grid-operator", sub="gus")
    runner = CliRunner()

    def cityheart(*args: str, who: str) -> Any:
        return runner.invoke(app, ["incident", *args, "--api", base, "--config",
                                   str(stack.config)], env={"CITYHEART_TOKEN": who})

    # the operator takes a call and opens the incident from the command line
    refused = cityheart("create", "--kind", "water_level", "--title", "Quay flooded",
                        "--severity", "serious", "--district", "harbour", who=operator)
    assert refused.exit_code == 1 and "'warning', 'critical', 'emergency'" in refused.output
    created = cityheart("create", "--kind", "water_level", "--title", "Quay flooded at pier 4",
                        "--severity", "warning", "--district", "harbour", "--description",
                        "caller: water over the quay", "--reporter", "harbour master (phone)",
                        "--json", who=operator)
    assert created.exit_code == 0, created.output
    incident = orjson.loads(created.output)["incident"]
    incident_id = incident["id"]
    assert (incident["state"], incident["departments"], incident["reporter"]) == (
        "open", ["water-authority"], "harbour master (phone)")

    # by position, through the API: the district is found from it
    lat, lon = _inside(settings, "old-town")
    status, second = call(base, "POST", "/api/incidents", operator, {
        "kind": "traffic_speed", "title": "Lorry stuck under the bridge", "severity": "warning",
        "lat": lat, "lon": lon})
    assert status == 201, second
    assert (second["incident"]["district"], second["incident"]["departments"]) == (
        "old-town", ["traffic-police"])
    viewer = call(base, "POST", "/api/incidents", token("viewer"), {
        "kind": "noise", "title": "x", "severity": "warning", "district": "harbour"})
    assert viewer[0] == 403

    assigned = cityheart(incident_id, "assign", "--to", "wei", who=operator)
    assert assigned.exit_code == 0, assigned.output
    # the grid operator's dispatcher may not touch it yet: it is not theirs
    status, refused_doc = call(base, "POST", f"/api/incidents/{incident_id}/actions", grid,
                               {"action": "acknowledge"})
    assert (status, refused_doc["error"]) == (404, "not_found")
    status, unknown = call(base, "POST", f"/api/incidents/{incident_id}/actions", water,
                           {"action": "transfer", "target": "fire-brigade"})
    assert status == 422 and "'grid-operator'" in unknown["detail"]
    moved = cityheart(incident_id, "transfer", "--department", "grid-operator", "--comment",
                      "the pumps lost power: a grid matter", who=water)
    assert moved.exit_code == 0, moved.output
    assert "no longer routed to you" in moved.output
    # the water authority handed it over: it is no longer theirs to act on
    assert call(base, "POST", f"/api/incidents/{incident_id}/actions", water,
                {"action": "acknowledge"})[0] == 404

    def act(body: dict, who: str = grid) -> dict:
        status, document = call(base, "POST", f"/api/incidents/{incident_id}/actions", who,
                                body)
        assert status == 200, document
        return document

    act({"action": "acknowledge", "comment": "crew on the way"})
    done = act({"action": "resolve", "outcome": "confirmed", "comment": "power restored"})
    assert (done["incident"]["state"], done["incident"]["departments"]) == (
        "resolved", ["grid-operator"])

    def stored() -> dict | None:
        status, document = call(base, "GET", f"/api/incidents/{incident_id}", operator)
        return document if status == 200 and document["incident"]["state"] == "resolved" else None

    timeline = wait_until(stored, 60, "the resolve stored by the recorder", every=0.2)["events"]
    steps = [(e["action"], e["actor"]) for e in timeline]
    assert steps == [("open", "olga"), ("assign", "olga"), ("transfer", "ana"),
                     ("acknowledge", "gus"), ("resolve", "gus")]
    assert timeline[1]["details"]["assignee"] == "wei"
    assert timeline[2]["details"] | {"command_id": None} == {
        "department": "grid-operator", "from": "water-authority", "command_id": None}
    assert timeline[2]["comment"] == "the pumps lost power: a grid matter"

    # the grid operator's queue has it from the transfer on; the water authority's up to it
    grid_queue = consume_all(settings.kafka.bootstrap, settings.kafka.topics.dispatch(
        "grid-operator"), 3, timeout=30)
    assert [orjson.loads(m.value())["action"] for m in grid_queue] == [
        "transfer", "acknowledge", "resolve"]
    water_queue = consume_all(settings.kafka.bootstrap, settings.kafka.topics.dispatch(
        "water-authority"), 3, timeout=30)
    assert [orjson.loads(m.value())["action"] for m in water_queue] == [
        "open", "assign", "transfer"]

    # and the public warning: a CAP update that references the original alert
    cap = cityheart(incident_id, "cap", who=operator)
    assert cap.exit_code == 0, cap.output
    assert cap.output.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "<msgType>Update</msgType>" in cap.output
    assert f"<references>cityheart@riverton,{incident_id}-1," in cap.output
    assert "<responseType>AllClear</responseType>" in cap.output
    assert call(base, "GET", f"/api/incidents/{incident_id}/cap", token("viewer"))[0] == 403


def test_link_and_merge_mark_both_incidents(stack: SimpleNamespace) -> None:
    from tests.cityheart.test_dispatch_api import call

    base = stack.url
    operator = token("operator", sub="olga")

    def report(title: str) -> str:
        status, document = call(base, "POST", "/api/incidents", operator, {
            "kind": "noise", "title": title, "severity": "warning", "district": "university"})
        assert status == 201, document
        return str(document["incident"]["id"])

    main, duplicate, related = report("Loud party"), report("Loud music"), report("Fireworks")
    status, merged = call(base, "POST", f"/api/incidents/{duplicate}/actions", operator,
                          {"action": "merge", "target": main})
    assert status == 200, merged
    assert (merged["incident"]["state"], merged["incident"]["merged_into"]) == ("closed", main)
    assert merged["linked_back"]["ok"], merged
    status, linked = call(base, "POST", f"/api/incidents/{related}/actions", operator,
                          {"action": "link", "target": main})
    assert status == 200 and linked["linked_back"]["ok"], linked
    status, missing = call(base, "POST", f"/api/incidents/{related}/actions", operator,
                           {"action": "link", "target": "inc-nowhere"})
    assert (status, missing["error"]) == (404, "not_found")

    def main_links() -> list | None:
        status, document = call(base, "GET", f"/api/incidents/{main}", operator)
        links = document["incident"].get("links") if status == 200 else None
        return links if links and len(links) == 2 else None

    assert wait_until(main_links, 60, "both links stored", every=0.2) == [duplicate, related]


def _inside(settings: Settings, district_id: str) -> tuple[float, float]:
    """A point well inside a district: its centroid."""
    district = next(d for d in settings.districts if d.id == district_id)
    lon, lat = district.centroid
    return lat, lon


def test_a_maintenance_window_added_at_run_time_silences_a_district_until_it_ends(
    stack: SimpleNamespace,
) -> None:
    from tests.cityheart.test_dispatch_api import call
    from tests.support.dispatch import raise_pollution

    base, settings = stack.url, stack.settings
    operator = token("operator", sub="olga")
    bureau = token("dispatcher", "environment-bureau", sub="ana")
    runner = CliRunner()

    def cityheart(*args: str, who: str = operator) -> Any:
        return runner.invoke(app, ["suppress", *args, "--api", base, "--config",
                                   str(stack.config)], env={"CITYHEART_TOKEN": who})

    raise_pollution(settings)

    def listed() -> list[dict]:
        return call(base, "GET", "/api/incidents", operator)[1]["incidents"]

    (incident,) = wait_until(listed, 90, "the incident in the API", every=0.2)
    status, refused = call(base, "POST", "/api/suppressions", bureau, {
        "districts": ["industrial-east"], "for": "1h"})
    assert (status, refused["error"]) == (403, "forbidden")
    assert cityheart("add", "--district", "industrial-east", who=operator).exit_code == 2
    # from an hour ago (alerts carry the time of their readings) for two hours
    added = cityheart("add", "filter-works", "--district", "industrial-east", "--kind", "pm25",
                      "--start", "1h", "--for", "2h", "--reason", "stack filter replacement")
    assert added.exit_code == 0, added.output
    assert f"incidents covered: {incident['id']}" in added.output
    # listed, for dispatchers too, with config.yaml's windows; no restart was needed
    status, windows = call(base, "GET", "/api/suppressions", bureau)
    assert status == 200, windows
    (window,) = [w for w in windows["windows"] if w["id"] == "filter-works"]
    assert (window["districts"], window["kinds"], window["source"]) == (
        ["industrial-east"], ["pm25"], "runtime")
    assert "filter-works" in cityheart("list").output

    # more pollution there joins nothing while the window lasts
    def stored_alerts() -> int:
        return len(stack.storage.history.alerts(since=time.time() - 3600,
                                                districts=["industrial-east"], limit=100))

    def comment(text: str) -> dict:
        status, commented = call(base, "POST", f"/api/incidents/{incident['id']}/actions",
                                 operator, {"action": "comment", "comment": text})
        assert status == 200, commented
        return dict(commented["incident"])

    alert_count = comment("filters out until noon")["alert_count"]
    before = stored_alerts()
    raise_pollution(settings, devices="pm25-more", start=time.time() // 10 * 10 - 10)
    wait_until(lambda: stored_alerts() > before, 60, "the second episode's alert stored",
               every=0.2)
    assert comment("more smoke reported")["alert_count"] == alert_count

    ended = cityheart("end", "filter-works")
    assert ended.exit_code == 0, ended.output
    assert "filter-works" not in cityheart("list").output
    assert cityheart("end", "filter-works").exit_code == 1  # not running any more

    def timeline() -> list | None:
        status, document = call(base, "GET", f"/api/incidents/{incident['id']}", operator)
        actions = [(e["action"], e["actor"]) for e in document["events"]]
        return actions if ("unsuppress", "olga") in actions else None

    actions = wait_until(timeline, 60, "the window in the stored timeline", every=0.2)
    assert actions[-4:] == [("suppress", "olga"), ("comment", "olga"), ("comment", "olga"),
                            ("unsuppress", "olga")]
