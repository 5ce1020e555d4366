"""The dispatch API end to end: readings -> flow -> incident -> recorder -> HTTP API -> commands
through the flow -> events back in PostgreSQL and in the department's dispatch queue.

Real Tansu, real PostgreSQL, the flow and the recorder as the child processes production runs,
the dashboard's HTTP server in this process, real HTTP clients with signed tokens.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from connectors.tokens import Claims, issue_token, verify_token
from settings.config import Settings
from tests.support import consume_all
from tests.support.dispatch import dispatch_stack, raise_pollution
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

SECRET = "test-secret-0123456789abcdef-0123"


def token(role: str, department: str | None = None, sub: str | None = None) -> str:
    return issue_token(role=role, department=department, sub=sub or f"{role}-1", secret=SECRET,
                       now=time.time(), ttl_s=3600)


def call(base: str, method: str, path: str, who: str | None, body: dict | None = None
         ) -> tuple[int, Any]:
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if who is not None:
        request.add_header("Authorization", f"Bearer {who}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    """``condition()`` once truthy, polling the real server every 0.2 s (see wait_until)."""
    return wait_until(condition, timeout, what, every=0.2)


@pytest.fixture
def stack(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """flow + recorder children, the dashboard's API in-process, on this test's topics."""

    def authenticate(text: str) -> Claims:
        return verify_token(text, secret=SECRET, now=time.time())

    with dispatch_stack(settings, database_url, tmp_path, authenticate=authenticate) as running:
        yield running


def test_a_dispatcher_works_an_incident_through_its_lifecycle_and_others_see_it_masked(
    stack: SimpleNamespace,
) -> None:
    base, settings = stack.url, stack.settings
    operator, viewer = token("operator", sub="olga"), token("viewer")
    env_bureau = token("dispatcher", "environment-bureau", sub="ana")
    police = token("dispatcher", "traffic-police", sub="pavel")
    raise_pollution(settings)

    def listed() -> list[dict]:
        status, document = call(base, "GET", "/api/incidents", operator)
        assert status == 200, document
        return document["incidents"]

    (incident,) = wait_for(listed, 90, "the incident in the API")
    incident_id = incident["id"]
    assert (incident["state"], incident["district"], incident["departments"]) == (
        "open", "industrial-east", ["environment-bureau"])
    assert set(incident["allowed_actions"]) >= {"acknowledge", "comment"}

    # a dispatcher of another department neither sees nor acts on it
    assert call(base, "GET", "/api/incidents", police)[1]["incidents"] == []
    status, refused = call(base, "POST", f"/api/incidents/{incident_id}/actions", police,
                           {"action": "acknowledge"})
    assert (status, refused["error"]) == (404, "not_found")
    # a viewer may see it but takes no actions
    status, refused = call(base, "POST", f"/api/incidents/{incident_id}/actions", viewer,
                           {"action": "acknowledge"})
    assert (status, refused["error"]) == (403, "forbidden")
    # no token at all, or a forged one: 401 (auth is not required here, but a bad token is bad)
    assert call(base, "POST", f"/api/incidents/{incident_id}/actions", env_bureau + "x",
                {"action": "acknowledge"})[0] == 401

    def act(body: dict, who: str = env_bureau) -> tuple[int, dict]:
        return call(base, "POST", f"/api/incidents/{incident_id}/actions", who, body)

    status, acked = act({"action": "ack", "comment": "looking at it"})
    assert status == 200, acked
    assert acked["incident"]["state"] == "acknowledged"
    assert (acked["event"]["action"], acked["event"]["actor"]) == ("acknowledge", "ana")
    status, again = act({"action": "acknowledge"})
    assert (status, again["error"]) == (409, "conflict"), again
    status, invalid = act({"action": "dispatch"})
    assert (status, invalid["error"]) == (422, "invalid"), invalid
    assert act({"action": "dispatch", "team": "env-patrol-3"})[1]["incident"]["state"] == (
        "dispatched")
    assert act({"action": "comment", "comment": "source: the cement works at gate 2"})[0] == 200
    status, resolved = act({"action": "resolve", "outcome": "false_alarm",
                            "comment": "sensor cleaned"})
    assert status == 200, resolved
    assert (resolved["incident"]["state"], resolved["incident"]["outcome"]) == (
        "resolved", "false_alarm")
    assert resolved["incident"]["allowed_actions"] == ["comment"]  # closing is for operators

    def timeline(who: str) -> dict:
        status, document = call(base, "GET", f"/api/incidents/{incident_id}", who)
        assert status == 200, document
        return document

    def stored_resolve() -> dict | None:
        document = timeline(operator)
        return document if document["incident"]["state"] == "resolved" else None

    full = wait_for(stored_resolve, 60, "the resolve stored by the recorder")
    actions = [e["action"] for e in full["events"]]
    assert actions[0] == "open"
    assert actions[-4:] == ["acknowledge", "dispatch", "comment", "resolve"]
    assert any(e.get("comment") == "source: the cement works at gate 2" for e in full["events"])
    assert full["incident"]["teams"] == ["env-patrol-3"]

    masked = timeline(viewer)
    text = orjson.dumps(masked).decode()
    assert [e["action"] for e in masked["events"]] == actions
    for secret in ("cement works", "looking at it", "ana", "env-patrol-3", "pm25-ie-"):
        assert secret not in text, f"a viewer sees {secret!r}"

    # the department's dispatch queue carries the same events, in order
    queue = consume_all(settings.kafka.bootstrap, settings.kafka.topics.dispatch(
        "environment-bureau"), len(actions), timeout=30)
    assert [orjson.loads(m.value())["action"] for m in queue] == actions
    assert {m.key() for m in queue} == {incident_id.encode()}

    # the KPIs count the response and the false alarm
    status, kpi = call(base, "GET", "/api/kpi?since=1h", operator)
    assert status == 200, kpi
    (bureau,) = [d for d in kpi["departments"] if d["department"] == "environment-bureau"]
    assert (bureau["opened"], bureau["acknowledged"], bureau["resolved"],
            bureau["false_alarms"], bureau["backlog"]) == (1, 1, 1, 1, 0)
    status, own = call(base, "GET", "/api/kpi?since=1h", police)
    assert [d["department"] for d in own["departments"]] == ["traffic-police"]
    assert call(base, "GET", "/api/kpi", viewer)[0] == 403


def test_the_incident_command_acts_as_its_tokens_role(stack: SimpleNamespace) -> None:
    from typer.testing import CliRunner

    from cityheart.cli import app

    base, settings = stack.url, stack.settings
    raise_pollution(settings)
    operator = token("operator", sub="olga")

    def listed() -> list[dict]:
        return call(base, "GET", "/api/incidents", operator)[1]["incidents"]

    (incident,) = wait_for(listed, 90, "the incident in the API")
    config = str(stack.config)
    runner = CliRunner()

    def cityheart(*args: str, who: str) -> Any:
        return runner.invoke(app, ["incident", incident["id"], *args, "--api", base,
                                   "--config", config], env={"CITYHEART_TOKEN": who})

    refused = cityheart("ack", who=token("dispatcher", "traffic-police"))
    assert refused.exit_code == 1 and "not_found" in refused.output
    acked = cityheart("ack", "--comment", "on our way", who=token(
        "dispatcher", "environment-bureau", sub="ana"))
    assert acked.exit_code == 0, acked.output
    assert f"{incident['id']}  acknowledged" in acked.output
    missing = cityheart("resolve", who=operator)
    assert missing.exit_code == 1 and "invalid" in missing.output  # no outcome given

    def shown() -> str | None:
        result = cityheart("show", who=operator)
        return result.output if "acknowledge  ana" in result.output else None

    timeline = wait_for(shown, 60, "the acknowledgement in the stored timeline")
    assert '"on our way"' in timeline
    as_json = cityheart("show", "--json", who=token("viewer"))
    assert as_json.exit_code == 0
    assert "on our way" not in as_json.output and "ana" not in as_json.output
