"""Several processes of one component (flow cluster members, bridge members), started and stopped
together by a parent process.

    children = [spawn(f"flow process {i}", argv(i)) for i in range(n)]
    exited = wait_for_first_exit(children)      # blocks until one of them exits
    code = stop_all(children)                   # SIGTERM all at once, kill stragglers

The members are stopped all at once, not one by one: a Bytewax cluster member waits for its
peers while it stops, so stopping them in turn could hang until the timeout.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import time
from collections.abc import Sequence

from connectors.servers import ChildProcess

__all__ = ["STOP_TIMEOUT_S", "stop_all", "wait_for_first_exit"]

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
"""How long members may take to stop after SIGTERM before they are killed."""


def wait_for_first_exit(children: Sequence[ChildProcess], poll_s: float = 0.2) -> ChildProcess:
    """The first child to exit (waiting for it)."""
    while all(child.running for child in children):
        time.sleep(poll_s)
    return next(child for child in children if not child.running)


def stop_all(children: Sequence[ChildProcess], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM every running child at once, then wait (killing one that takes too long); the
    first non-zero exit code, else 0."""
    for child in children:
        if child.running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    codes = []
    for child in children:
        try:
            codes.append(child.process.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %g s: killing it", child.name, timeout_s)
            child.process.kill()
            codes.append(child.process.wait())
    return next((code for code in codes if code), 0)
