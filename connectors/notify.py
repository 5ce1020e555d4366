"""Readiness notices to a supervisor, over systemd's notify protocol (``sd_notify``).

A component says it is ready, and says it again whenever it becomes ready anew (the bridge after
each MQTT subscription), by sending ``READY=1`` as one datagram to the Unix socket its supervisor
named in ``NOTIFY_SOCKET``::

    notifier = Notifier.from_environ(os.environ)    # at the edge; without the variable: a no-op
    notifier.ready()                                # "READY=1"
    notifier.status("subscribed to city/#")         # "STATUS=..." (free text for people)

``cityheart up`` listens with :class:`cityheart.runtime.readiness.ReadinessListener`; under systemd
a unit with ``Type=notify`` gets the same notices. A lost notice is harmless (datagrams to a
socket nobody reads any more are dropped), so sending never raises.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Mapping

__all__ = ["NOTIFY_SOCKET", "Notifier"]

log = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
"""The environment variable naming the supervisor's socket (systemd's name)."""


class Notifier:
    """Sends notices to the socket at ``path`` (None: sends nothing)."""

    def __init__(self, path: str | None) -> None:
        self.path = path or None
        if self.path is not None and self.path.startswith("@"):  # Linux abstract namespace
            self.path = "\0" + self.path[1:]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Notifier:
        """The notifier that ``NOTIFY_SOCKET`` in ``environ`` asks for."""
        return cls(environ.get(NOTIFY_SOCKET))

    def ready(self) -> None:
        """Tell the supervisor this component is ready (again)."""
        self.send("READY=1")

    def status(self, text: str) -> None:
        """A one-line status for people (``systemctl status`` shows it)."""
        self.send(f"STATUS={text}")

    def send(self, notice: str) -> None:
        """Send ``notice`` (``KEY=value`` lines) as one datagram; never raises."""
        if self.path is None:
            return
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(notice.encode(), self.path)
            return
        log.debug("could not send %r to %s", notice, self.path)
