"""Components say they are ready over systemd's notify protocol; the supervisor counts it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityheart.runtime.readiness import ReadinessListener
from connectors.notify import NOTIFY_SOCKET, Notifier
from models.errors import ConnectorError


@pytest.fixture
def listener() -> Iterator[ReadinessListener]:
    ready = ReadinessListener(Path(tempfile.mkdtemp(prefix="ch-")) / "component.notify")
    yield ready
    ready.close()


def test_every_ready_notice_is_counted_and_the_status_kept(listener: ReadinessListener) -> None:
    notifier = Notifier.from_environ(listener.environ())
    notifier.status("subscribed to city/#")
    notifier.ready()
    assert listener.wait_ready(timeout=10) == 1
    notifier.ready()  # ready anew, as the bridge is after a reconnect
    assert listener.wait_ready(after=1, timeout=10) == 2
    assert listener.status == "subscribed to city/#"


def test_a_child_process_reaches_its_supervisor(listener: ReadinessListener) -> None:
    code = ("import os; from connectors.notify import Notifier; "
            "Notifier.from_environ(os.environ).ready()")
    env = {**os.environ, **listener.environ()}
    assert env[NOTIFY_SOCKET] == str(listener.path)  # systemd's variable: Type=notify units work
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    assert listener.wait_ready(timeout=20, process=None) == 1
    assert child.wait(20) == 0


def test_a_component_that_dies_before_it_is_ready_is_reported_at_once(
    listener: ReadinessListener,
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    child.wait(20)
    with pytest.raises(ConnectorError, match="exited with code 3 before saying it was ready"):
        listener.wait_ready(timeout=60, process=child)


def test_without_a_socket_a_notifier_sends_nothing_and_never_fails() -> None:
    notifier = Notifier.from_environ({})
    assert notifier.path is None
    notifier.ready()
    Notifier("/nonexistent/dir/socket").ready()  # a supervisor gone: no exception
