"""Which configured servers would listen on the same port: refused when config.yaml is loaded.

Pure, no sockets: ``Settings.reference_problems`` lists the ports of this deployment's servers
(the feed, the dashboard, each component's ``/metrics`` and the embedded MQTT, Kafka and
PostgreSQL servers) as :class:`Listener` and calls :func:`port_clashes`::

    port_clashes([Listener("feed.port", 8766), Listener("dashboard.port", 8766)])
    # [("dashboard.port", "port 8766 is also feed.port's; give each server its own port")]

A listener may span several ports (the n-th bridge or flow process serves ``/metrics`` on its
port + n). Port 0 (any free port) never clashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Listener", "port_clashes"]


@dataclass(frozen=True)
class Listener:
    """The config key of a server and the ``count`` ports from ``port`` it listens on."""

    key: str
    port: int
    count: int = 1

    @property
    def ports(self) -> range:
        """The ports taken (none for port 0)."""
        return range(self.port, self.port + self.count) if self.port else range(0)

    def describe(self) -> str:
        """``key`` and its port(s), for a message."""
        if self.count == 1:
            return f"{self.key} ({self.port})"
        return f"{self.key} ({self.port}-{self.port + self.count - 1}, {self.count} processes)"


def port_clashes(listeners: Sequence[Listener]) -> list[tuple[str, str]]:
    """(key, reason) for each listener that shares a port with one before it."""
    problems: list[tuple[str, str]] = []
    for number, later in enumerate(listeners):
        for earlier in listeners[:number]:
            shared = sorted(set(earlier.ports) & set(later.ports))
            if shared:
                reason = (f"port {shared[0]} is taken twice: by {earlier.describe()} and by "
                          f"{later.describe()}; give each server its own port")
                problems.append((later.key, reason))
                break
    return problems
