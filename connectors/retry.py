"""Retry timing, pure: how long to wait between attempts. The sleeping happens elsewhere.

    for delay in backoff():        # 0.1, 0.2, 0.4, ... 5.0, 5.0, ...
        ...try again after `delay` seconds...

Connectors take such a generator (and an ``is_retryable(exc)`` of their own) as arguments, so
tests can pass zero delays or count attempts.

Why not tenacity or stamina: both own the retry loop (they call the function, sleep and decide
when to stop), and what our two loops do at the end differs from what they model. The feed
client gives up in two ways (its connect window raises, the caller's deadline returns False
and keeps the client usable); the storage writer raises a ConnectorError naming the rows, the
table and the retries so far, and counts retries in its stats. Expressed in tenacity that is a
``stop_any``, a ``retry_error_callback`` and a ``before_sleep`` per loop, longer than the loops
themselves. What is left for a library is this generator, five lines that are pure and
injected (STYLE habit 5); a dependency would not earn its place for them.
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
