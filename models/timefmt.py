"""UTC time as cityheart writes it: epoch seconds inside, ISO 8601 with ``Z`` on the wire.

    iso(1795669200.125) == "2026-11-26T05:00:00.125Z"
    from_iso("2026-11-26T05:00:00.125Z") == 1795669200.125
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_iso", "iso"]


def iso(ts: float) -> str:
    """Epoch seconds as an ISO 8601 UTC string with milliseconds and a ``Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_iso(text: str) -> float:
    """An ISO 8601 time with a zone (``Z`` or an offset) as epoch seconds."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        msg = f"time {text!r} has no time zone"
        raise ValueError(msg)
    return moment.timestamp()
