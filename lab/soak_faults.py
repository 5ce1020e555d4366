"""Faults for ``cityheart soak``: kill one part of the running city (SIGKILL), start it again,
and time how long until it works again.

    faults = FaultInjector(city, settings, feed=audit, publisher=publisher, persistence=dir)
    result = faults.inject("bridge")     # FaultResult(component, restarted_s, recovered_s, ...)

=============  ===========================================  ==================================
fault          what is killed, how it comes back            recovered when
=============  ===========================================  ==================================
``bridge``     the bridge process; restarted at once         it has subscribed again (its log)
``flow``       one flow worker process (a cluster member,    the feed shows a vital sign the
               or the flow process itself); the flow is      new flow emitted
               restarted at once once it has exited
``feed``       the feed process; restarted at once           the audit client is subscribed
                                                             again
``database``   PostgreSQL, all its processes; started        the recorder stored rows again
               again on the same data directory and port
``mqtt``       mosquitto; started again on the same port     the bridge subscribed again and
               with its persistence directory                the publisher got a PUBACK
=============  ===========================================  ==================================

Components are restarted with :meth:`cityheart.runtime.up.Supervisor.restart_now` (no backoff),
servers in place in :attr:`cityheart.runtime.up.RunningCity.servers` (so the stack stops the new
one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cityheart.runtime.postgres import EmbeddedPostgres, start_postgres
from cityheart.runtime.servers import EmbeddedServer, start_mqtt_broker
from cityheart.runtime.up import RunningCity
from lab.audit import count_rows
from lab.soak_watch import AckedPublisher, FeedAudit
from models.errors import ConnectorError
from settings.config import Settings

__all__ = ["FAULTS", "FaultInjector", "FaultResult"]

log = logging.getLogger(__name__)

FAULTS = ("bridge", "flow", "feed", "database", "mqtt")
"""What a soak can kill, in the order of the pipeline's servers and components."""

EXIT_TIMEOUT_S = 60.0
RECOVERY_TIMEOUT_S = 120.0


@dataclass
class FaultResult:
    """One fault: what was killed when, and how long until it ran and worked again."""

    component: str
    at_s: float
    """Seconds since the soak started publishing."""
    killed_pid: int
    restarted_s: float
    """From the kill until the process (or server) was running again."""
    recovered_s: float | None
    """From the kill until it worked again (None: not within RECOVERY_TIMEOUT_S)."""
    detail: str = ""


def _children(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _wait(condition: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


class FaultInjector:
    """Kill and restart parts of ``city``; see the module doc."""

    def __init__(
        self, city: RunningCity, settings: Settings, *, feed: FeedAudit,
        publisher: AckedPublisher, persistence: Path | None, database_url: str,
        log_dir: Path, started: float, choose: Callable[[list[int]], int],
    ) -> None:
        self.city = city
        self.settings = settings
        self.feed = feed
        self.publisher = publisher
        self.persistence = persistence
        self.database_url = database_url
        self.log_dir = log_dir
        self.started = started
        self._choose = choose

    def inject(self, component: str) -> FaultResult:
        """Kill ``component`` (one of :data:`FAULTS`), bring it back, time its recovery."""
        inject = {
            "bridge": self._bridge, "flow": self._flow, "feed": self._feed,
            "database": self._database, "mqtt": self._mqtt,
        }.get(component)
        if inject is None:
            msg = f"unknown fault {component!r}; known: {', '.join(FAULTS)}"
            raise ValueError(msg)
        at = time.monotonic()
        pid, restarted, recovered, detail = inject()
        done = time.monotonic()
        result = FaultResult(
            component, round(at - self.started, 1), pid, round(restarted - at, 2),
            round(done - at, 2) if recovered else None, detail,
        )
        log.info("soak: %s killed (pid %d) at %.1f s, running again after %.2f s, recovered "
                 "after %s s", component, pid, result.at_s, result.restarted_s,
                 result.recovered_s)
        return result

    # -- components ---------------------------------------------------------------------------

    def _bridge_ready(self) -> int:
        """The bridge's READY notices so far: one per MQTT subscription, restarts included."""
        return self.city.supervisor.readiness["bridge"].ready_count

    def _kill_component(self, name: str, victim: int | None = None) -> tuple[int, float]:
        """SIGKILL component ``name`` (or ``victim``, one of its processes), wait until the
        component exited, start it again; (pid killed, when it was started again)."""
        child = self.city.supervisor.child(name)
        if child is None or not child.running:
            msg = f"component {name!r} is not running"
            raise RuntimeError(msg)
        pid = victim or child.process.pid
        os.kill(pid, signal.SIGKILL)
        try:
            child.process.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # a cluster parent that did not notice: kill it
            log.warning("soak: %s did not exit within %g s of its member's death; killing it",
                        name, EXIT_TIMEOUT_S)
            child.process.kill()
            child.process.wait()
        self.city.supervisor.restart_now(name)
        return pid, time.monotonic()

    def _bridge(self) -> tuple[int, float, bool, str]:
        before = self._bridge_ready()
        pid, restarted = self._kill_component("bridge")
        ok = _wait(lambda: self._bridge_ready() > before, RECOVERY_TIMEOUT_S)
        return pid, restarted, ok, "subscribed again"

    def _feed(self) -> tuple[int, float, bool, str]:
        before = self.feed.subscriptions
        pid, restarted = self._kill_component("feed")
        ok = _wait(lambda: self.feed.subscriptions > before, RECOVERY_TIMEOUT_S)
        return pid, restarted, ok, "the audit client resubscribed"

    def _flow(self) -> tuple[int, float, bool, str]:
        child = self.city.supervisor.child("flow")
        assert child is not None
        members = _children(child.process.pid)
        victim = self._choose(members) if members else None
        what = f"cluster member {members.index(victim)} of {len(members)}" if victim else "process"
        pid, restarted = self._kill_component("flow", victim)
        since = time.time()
        ok = _wait(lambda: self.feed.latest_emitted > since, RECOVERY_TIMEOUT_S)
        return pid, restarted, ok, f"flow {what}; recovered: the feed showed a new vital sign"

    # -- servers ------------------------------------------------------------------------------

    def _server(self, kind: str) -> tuple[int, EmbeddedServer | EmbeddedPostgres]:
        for index, server in enumerate(self.city.servers):
            if getattr(server, "kind", "postgres") == kind:
                return index, server
        msg = f"no embedded {kind} server is running"
        raise RuntimeError(msg)

    def _database(self) -> tuple[int, float, bool, str]:
        index, server = self._server("postgres")
        assert isinstance(server, EmbeddedPostgres)
        pid = server.child.process.pid
        # the postmaster and every backend (each in a session of its own), as a crash would
        processes = [pid, *_children(pid)]
        for each in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
        server.child.process.wait()
        _wait(lambda: not any(Path(f"/proc/{each}").exists() for each in processes[1:]),
              EXIT_TIMEOUT_S)
        database = self.settings.database
        restarted = start_postgres(server.data_dir, server.port, database=database.name,
                                   log_path=self.log_dir / "postgres.log")
        self.city.servers[index] = restarted
        at = time.monotonic()
        before = self._rows()
        ok = _wait(lambda: self._rows() > before, RECOVERY_TIMEOUT_S, every=0.5)
        return pid, at, ok, "recovered: the recorder stored readings again"

    def _rows(self) -> int:
        try:
            return count_rows(self.database_url, "readings")
        except ConnectorError:
            return -1

    def _mqtt(self) -> tuple[int, float, bool, str]:
        index, server = self._server("mosquitto")
        assert isinstance(server, EmbeddedServer)
        pid = server.child.process.pid
        ready = self._bridge_ready()
        os.kill(pid, signal.SIGKILL)
        server.child.process.wait()
        server.stop()  # removes its scratch directory; the persistence directory stays
        killed = time.monotonic()
        restarted = start_mqtt_broker(server.port, prefer="mosquitto",
                                      log_path=self.log_dir / "mqtt-broker.log",
                                      persistence_dir=self.persistence)
        self.city.servers[index] = restarted
        at = time.monotonic()
        ok = _wait(lambda: self._bridge_ready() > ready and self.publisher.last_ack > killed,
                   RECOVERY_TIMEOUT_S)
        detail = "persistent sessions restored" if self.persistence else "no persistence"
        return pid, at, ok, f"{detail}; recovered: the bridge subscribed and a PUBACK came"
