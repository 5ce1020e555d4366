"""End to end: an alert reaches the on-call person's inbox and the department's webhook; nobody
acknowledges, so the escalation timer pages the next person; the link in that e-mail
acknowledges the incident. The flow and the notifier run as the processes production runs, on
the session's Tansu, with a real SMTP server and a real webhook receiver on loopback."""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.oncall import now_and_next
from cityheart.dashboard import web_root
from cityheart.runtime.servers import spawn
from cityheart.services.ack_links import AckLinks
from connectors.command_bus import CommandBus
from connectors.notifications.outbox import DeadLetters
from connectors.web_server import DashboardSettings, WebServer
from settings.config import Settings
from settings.incidents import Department, EscalationLevel
from settings.notifications import NotificationSettings
from settings.oncall import OncallSchedule
from tests.support.config import write_config
from tests.support.dispatch import raise_pollution
from tests.support.kafka import consume_until
from tests.support.notify import SmtpInbox, WebhookReceiver
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services

HOOK_SECRET = "a-webhook-secret-for-the-environment-bureau"
LINK_SECRET = "a-link-secret-of-this-test-deployment-0123"
DEPARTMENT = "environment-bureau"


def notified_settings(settings: Settings, tmp_path: Path, inbox: SmtpInbox,
                      receiver: WebhookReceiver) -> Settings:
    """The test's settings with notifications on, a two-person rotation and a short ladder:
    on open the webhook and the on-call person, after 4 s unacknowledged the next person."""
    quiet = {"escalation": ()}   # the other ladders: not this test's business
    departments = [
        d.model_copy(update=quiet) if d.id != DEPARTMENT else Department(
            id=DEPARTMENT, name=d.name, sla_ack_s=4, sla_resolve_s=3600,
            escalation=(EscalationLevel(name="backup", notify=("oncall-next",), after_s=4),))
        for d in settings.incidents.departments
    ]
    notifications = NotificationSettings.model_validate({
        "enabled": True, "state_dir": str(tmp_path / "notify"),
        "link_base_url": "http://127.0.0.1:1/",          # replaced by the test's server below
        "retry": {"attempts": 40, "initial_s": 0.1, "factor": 2, "max_s": 1},
        "channels": [
            {"id": "mail", "type": "email", "host": "127.0.0.1", "port": inbox.port,
             "sender": "cityheart@city.example"},
            {"id": "env-hook", "type": "webhook", "url": receiver.url,
             "secret_env": "CITYHEART_TEST_HOOK_SECRET"}],
        "people": [{"id": "ana", "contacts": {"mail": "ana@city.example"}},
                   {"id": "ben", "contacts": {"mail": "ben@city.example"}}],
        "subscriptions": [
            {"department": DEPARTMENT, "channels": ["env-hook"], "events": ["open", "escalate"]},
            {"person": "oncall", "departments": [DEPARTMENT], "events": ["open"]}],
    })
    schedule = OncallSchedule(department=DEPARTMENT, rotation=("ana", "ben"),
                              timezone="Europe/Lisbon")
    return settings.model_copy(update={
        "incidents": settings.incidents.model_copy(update={"departments": tuple(departments)}),
        "notifications": notifications, "oncall": (schedule,)})


def post_form(url: str, fields: dict[str, str]) -> tuple[int, str]:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def incident_events(settings: Settings, done: Any) -> list[dict[str, Any]]:
    """The incidents topic's events (each with ``written_at``, the record's broker time)."""
    records = consume_until(settings.kafka.bootstrap, settings.kafka.topics.incidents,
                            lambda rs: done([orjson.loads(r.value()) for r in rs]), timeout=60)
    return [{**orjson.loads(r.value()), "written_at": r.timestamp()[1] / 1000}
            for r in records]


def test_an_alert_pages_the_on_call_person_and_the_webhook_then_escalates_to_the_next(
    settings: Settings, tmp_path: Path,
) -> None:
    receiver = WebhookReceiver(secret=HOOK_SECRET.encode())
    receiver.start()
    with SmtpInbox() as inbox:
        bus = CommandBus(settings.kafka.bootstrap, settings.kafka.topics.commands,
                         settings.kafka.topics.command_results)
        bus.start()
        web = WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                        ack=AckLinks(LINK_SECRET, bus, timeout=30))
        web.start()
        city = notified_settings(settings, tmp_path, inbox, receiver)
        city = city.model_copy(update={"notifications": city.notifications.model_copy(
            update={"link_base_url": web.url})})
        on_call, following = now_and_next(city.oncall[0], at=time.time())
        assert following is not None
        first = f"{on_call.person}@city.example"
        second = f"{following.person}@city.example"
        config = write_config(city, tmp_path / "config.yaml")
        env = {**os.environ, "CITYHEART_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
               "CITYHEART_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
               "CITYHEART_TEST_HOOK_SECRET": HOOK_SECRET, "CITYHEART_NOTIFY_SECRET": LINK_SECRET}
        children = [spawn(name, [sys.executable, "-m", "cityheart", name, "--config",
                                 str(config)], env=env, log_path=tmp_path / f"{name}.log")
                    for name in ("flow", "notifier")]
        try:
            raise_pollution(city)
            logs = lambda: " / ".join(  # noqa: E731
                (tmp_path / f"{n}.log").read_text()[-1500:] for n in ("flow", "notifier"))
            # the department's webhook and the on-call person hear of the new incident
            wait_until(lambda: inbox.to(first), 90, lambda: f"mail to {first}; {logs()}")
            wait_until(lambda: _hook(receiver, "open"), 30, "the webhook's open notification")
            # nobody acknowledges: the escalation timer pages the next person (and the hook)
            wait_until(lambda: inbox.to(second), 60, lambda: f"mail to {second}; {logs()}")
            wait_until(lambda: _hook(receiver, "escalate"), 30, "the escalation on the hook")
            [page] = inbox.to(second)
            assert "ESCALATED" in page["Subject"]
            link = re.search(r"Acknowledge: (\S+)", page.get_content())
            assert link is not None, page.get_content()
            token = urllib.parse.parse_qs(urllib.parse.urlsplit(link.group(1)).query)["t"][0]
            status, text = post_form(f"{web.url}ack", {"t": token})
            assert status == 200, text
            assert "is acknowledged" in text
            events = incident_events(city, lambda es: _delivered(es) >= 4 and any(
                e["action"] == "acknowledge" for e in es))
        finally:
            for child in children:
                child.stop()
            web.close()
            bus.close()
            receiver.stop()
    [opened] = [e for e in events if e["action"] == "open"]
    assert inbox.arrival(first) - opened["written_at"] < 5.0   # the "under 5 s"
    actions = [e["action"] for e in events]
    assert actions.index("open") < actions.index("escalate") < actions.index("acknowledge")
    [ack] = [e for e in events if e["action"] == "acknowledge"]
    assert ack["actor"] == following.person
    assert ack["details"]["via"] == "link" and ack["details"]["notification"].startswith("ntf-")
    statuses = {(e["details"]["address"] or e["details"]["channel"], e["details"]["status"])
                for e in events if e["action"] == "notify"}
    assert {(first, "sent"), (first, "delivered"), (second, "delivered"),
            ("env-hook", "delivered")} <= statuses
    assert len(inbox.to(first)) == 1 and len(inbox.to(second)) == 1   # each once
    assert receiver.bad_signatures == 0
    assert DeadLetters(tmp_path / "notify").list() == []


def _hook(receiver: WebhookReceiver, action: str) -> bool:
    with receiver.lock:
        return any(d["event"]["action"] == action for d in receiver.deliveries.values())


def _delivered(events: list[dict[str, Any]]) -> int:
    return sum(1 for e in events
               if e["action"] == "notify" and e["details"].get("status") == "delivered")
