"""`cityheart up` with notifications on: the demo's pollution alert reaches the on-call person's
inbox and the department's webhook within 5 s of reaching the operators' feed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from alerts.oncall import who
from cityheart.runtime.servers import free_port
from settings.oncall import OncallSchedule
from tests.support import FeedRecorder, shipped_config, wait_until
from tests.support.notify import SmtpInbox, WebhookReceiver

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

HOOK_SECRET = "the-environment-bureau-webhook-secret-0123"


def test_up_with_notifications_tells_the_on_call_person_and_the_department(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver(secret=HOOK_SECRET.encode())
    receiver.start()
    with SmtpInbox() as inbox:
        config = shipped_config()
        config["mqtt"]["url"] = f"mqtt://127.0.0.1:{free_port()}"
        config["kafka"]["bootstrap"] = f"127.0.0.1:{free_port()}"
        config["feed"]["port"] = free_port()
        config["dashboard"]["port"] = free_port()
        config["database"]["url"] = f"postgresql://postgres@127.0.0.1:{free_port()}/cityheart"
        config["database"]["data_dir"] = str(tmp_path / "pgdata")
        config["flow"]["window_s"] = 3
        config["simulator"]["scenarios"]["demo"][0].update(start_s=1, ramp_s=2)
        config["notifications"] = {
            "enabled": True, "state_dir": str(tmp_path / "notify"),
            "channels": [
                {"id": "mail", "type": "email", "host": "127.0.0.1", "port": inbox.port,
                 "sender": "cityheart@city.example"},
                {"id": "env-hook", "type": "webhook", "url": receiver.url,
                 "secret_env": "CITYHEART_ENV_HOOK_SECRET"}],
            "people": [{"id": "ana", "contacts": {"mail": "ana@city.example"}},
                       {"id": "ben", "contacts": {"mail": "ben@city.example"}}],
            "subscriptions": [
                {"department": "environment-bureau", "channels": ["env-hook"]},
                {"person": "oncall", "departments": ["environment-bureau"]}],
        }
        schedule = {"department": "environment-bureau", "rotation": ["ana", "ben"]}
        config["oncall"] = [schedule]
        on_call = who(OncallSchedule.model_validate(schedule), time.time())
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        stderr_path = tmp_path / "up.err"
        process = subprocess.Popen(
            [sys.executable, "-m", "cityheart", "up", "--config", str(path)],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr_path.open("wb"), text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1",
                 "CITYHEART_ENV_HOOK_SECRET": HOOK_SECRET},
        )
        try:
            line = process.stdout.readline()
            assert line.startswith("feed: ws://"), (line, stderr_path.read_text())
            with FeedRecorder(line.split(" ", 1)[1].strip()) as feed:
                feed.wait_for(lambda m: m["type"] == "alert"
                              and m["district"] == "industrial-east", timeout=90)
                alerted = time.time()
            address = f"{on_call}@city.example"
            wait_until(lambda: inbox.to(address), 30, lambda: (
                f"mail to {address}; "
                f"{(tmp_path / 'var' / 'log' / 'notifier.log').read_text()[-2000:]}"))
            wait_until(lambda: receiver.deliveries, 30, "the department's webhook")
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(60)
            receiver.stop()
    assert code == 0, stderr_path.read_text()
    delay = inbox.arrival(address) - alerted
    assert delay < 5.0, f"the alert reached the inbox {delay:.1f} s after the feed"
    opened = [d for d in receiver.deliveries.values() if d["event"]["action"] == "open"]
    assert opened and all(d["department"] == "environment-bureau" for d in opened)
    assert receiver.bad_signatures == 0
