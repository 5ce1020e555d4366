"""Waiting in tests: poll a condition until it holds, with a deadline, and fail naming what was
awaited (never a bare sleep).

    row = wait_until(lambda: fetch_row(url), timeout=60, what="the stored alert")
    wait_until(lambda: log.exists(), 30, lambda: f"the log; the folder holds {list(tmp)}")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str | Callable[[], str], *,
               every: float = 0.05) -> T:
    """Call ``condition`` every ``every`` seconds until it returns something truthy; return that.

    After ``timeout`` seconds the test fails with "timed out after <timeout> s waiting for
    <what>" (``what`` may be a callable, called then, to say what was seen meanwhile).
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout:g} s waiting for {described}")
        time.sleep(every)  # polling a real server or process for a condition, with a deadline
    return value
