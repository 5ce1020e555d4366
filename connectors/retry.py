"""Retry timing, pure: how long to wait between attempts. The sleeping happens elsewhere.

    for delay in backoff():        # 0.1, 0.2, 0.4, ... 5.0, 5.0, ...
        ...try again after `delay` seconds...

Connectors take such a generator (and an ``is_retryable(exc)`` of their own) as arguments, so
tests can pass zero delays or count attempts.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["backoff"]


def backoff(initial: float = 0.1, factor: float = 2.0, maximum: float = 5.0) -> Iterator[float]:
    """Delays between attempts: initial, initial*factor, ... capped at maximum, forever."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, maximum)
