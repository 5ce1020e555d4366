"""The supervisor's side of readiness: a Unix socket per component that counts its notices.

    listener = ReadinessListener(workdir / "bridge.notify")
    env = {**os.environ, **listener.environ()}          # NOTIFY_SOCKET for the child
    ... start the child ...
    listener.wait_ready(after=0, timeout=30, process=child.process)   # its first READY=1
    listener.ready_count                                # READY=1 notices so far (re-subscriptions)

Components send ``READY=1`` with :class:`connectors.notify.Notifier` (systemd's notify protocol),
so the supervisor never has to match their log text. A thread reads the socket until
:meth:`close`.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from pathlib import Path

from connectors.notify import NOTIFY_SOCKET
from models.errors import ConnectorError

__all__ = ["ReadinessListener"]

log = logging.getLogger(__name__)


class ReadinessListener:
    """Listens on the Unix datagram socket at ``path`` for one component's notices."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._changed = threading.Condition()
        self._ready = 0
        self.status = ""
        self._closed = False
        self._thread = threading.Thread(target=self._read, name=f"ready:{path.name}", daemon=True)
        self._thread.start()

    def environ(self) -> dict[str, str]:
        """The environment that points a child at this socket."""
        return {NOTIFY_SOCKET: str(self.path)}

    @property
    def ready_count(self) -> int:
        """How many ``READY=1`` notices arrived."""
        with self._changed:
            return self._ready

    def wait_ready(
        self, *, after: int = 0, timeout: float, process: subprocess.Popen | None = None
    ) -> int:
        """Wait until more than ``after`` READY notices arrived; return the count. Raise
        ConnectorError after ``timeout`` s, or at once if ``process`` exited first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._ready <= after:
                if process is not None and process.poll() is not None:
                    msg = f"exited with code {process.returncode} before saying it was ready"
                    raise ConnectorError("process", str(self.path), msg)
                left = deadline - time.monotonic()
                if left <= 0:
                    msg = f"not ready within {timeout:g} s (last status: {self.status or 'none'})"
                    raise ConnectorError("process", str(self.path), msg)
                self._changed.wait(min(left, 0.2))
            return self._ready

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        self._closed = True
        self._thread.join(2)
        self._sock.close()
        self.path.unlink(missing_ok=True)

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._changed:
                for line in data.decode(errors="replace").splitlines():
                    key, _, value = line.partition("=")
                    if key == "READY" and value == "1":
                        self._ready += 1
                    elif key == "STATUS":
                        self.status = value
                self._changed.notify_all()
            log.debug("%s: %r", self.path.name, data)
