"""Several processes of one component (flow cluster members, bridge members), started and stopped
together by a parent process.

    code = run_members("flow", [(f"flow process {i}", argv(i)) for i in range(n)])

:func:`run_members` starts them and watches them until one exits or a signal comes, then stops
them all; it is made of the two steps below, which other callers use on their own::

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
import threading
import time
from collections.abc import Sequence

from cityheart.runtime.servers import ChildProcess, spawn

__all__ = ["STOP_TIMEOUT_S", "run_members", "stop_all", "wait_for_first_exit"]

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
"""How long members may take to stop after SIGTERM before they are killed."""


def run_members(
    component: str,
    members: Sequence[tuple[str, Sequence[str]]],
    *,
    always_running: bool = False,
    signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM),
) -> int:
    """Start each ``(name, argv)`` member, wait until one exits or one of ``signals`` comes
    (on the main thread they raise KeyboardInterrupt meanwhile), then stop them all together.

    Returns the exiting member's non-zero code, else that of stopping the others; with
    ``always_running`` (a member never exits normally, as bridge members) an exit with 0 is a
    failure too and gives 1 when the others stop cleanly.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = {
        sig: signal.signal(sig, signal.default_int_handler) for sig in signals
    } if on_main_thread else {}
    children: list[ChildProcess] = []
    try:
        for name, argv in members:
            children.append(spawn(name, list(argv)))
        exited = wait_for_first_exit(children)
        code = exited.process.returncode
        if code or always_running:
            log.error("%s exited with code %s: stopping the others", exited.name, code)
        return code or stop_all(children) or (1 if always_running else 0)
    except KeyboardInterrupt:
        log.info("%s stopped by signal", component)
        return stop_all(children)
    finally:
        stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
