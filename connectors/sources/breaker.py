"""A pulled source's failure policy: retry delays and a circuit breaker. Pure; time comes in.

    breaker = Breaker(failures=5, cooldown_s=300)
    if breaker.allows(now):                 # closed, or open long enough for one probe
        ok = fetch()
        breaker.succeeded() if ok else breaker.failed(now)
    breaker.state                           # "closed" | "open" | "half_open"
    retry_delay(errors=3, initial_s=1, maximum_s=60)   # 4.0: the wait before the next try

Closed, every poll goes ahead. ``failures`` failed polls in a row open it: the source is left
alone for ``cooldown_s`` (its service is down; asking it every interval helps nobody), then
the breaker is half open and lets one probe through: a success closes it, a failure opens it
for another cool-down.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Breaker", "BreakerState", "retry_delay"]

BreakerState = Literal["closed", "open", "half_open"]


def retry_delay(errors: int, initial_s: float, maximum_s: float) -> float:
    """The wait after the ``errors``-th failure in a row: initial, doubled each time, capped."""
    return min(initial_s * 2.0 ** max(0, errors - 1), maximum_s)


class Breaker:
    """Closed, open or half open, by failures in a row and the time since it opened."""

    def __init__(self, failures: int, cooldown_s: float) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.errors = 0  # failures in a row
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """closed, open (no requests) or half_open (a probe may go)."""
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._probing else "open"

    def reopens_at(self) -> float | None:
        """When an open breaker lets a probe through (None when it is not open)."""
        return None if self.opened_at is None else self.opened_at + self.cooldown_s

    def allows(self, now: float) -> bool:
        """Whether a request may go now (an open breaker past its cool-down turns half open)."""
        if self.opened_at is None or self._probing:
            return True
        if now >= self.opened_at + self.cooldown_s:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        """A request succeeded: closed, no failures."""
        self.errors = 0
        self.opened_at = None
        self._probing = False

    def failed(self, now: float) -> None:
        """A request failed: a failed probe, or the threshold reached, opens the breaker."""
        self.errors += 1
        if self._probing or (self.opened_at is None and self.errors >= self.threshold):
            self.opened_at = now
            self._probing = False
