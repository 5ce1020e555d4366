"""Pure helpers for history queries: durations, relative times, the resolution of a range.

    parse_duration("90s") == 90.0;  parse_duration("1h") == 3600.0;  parse_duration("7d")
    parse_time("1h", now=now) == now - 3600       # "1h" means one hour ago
    parse_time("2026-11-26T08:00:00Z", now=now)   # or an ISO 8601 time with a zone, or "now"
    choose_resolution(since, until) -> "raw" | "1m" | "1h" | "1d"
    bucket_floor(ts, "1h")                         # the start of ts's UTC hour

A chart asks for a district's series over a range; :func:`choose_resolution` picks the finest
resolution that keeps it to about :data:`MAX_POINTS` points: raw up to an hour, then 1-minute,
1-hour and 1-day buckets. Buckets are aligned to UTC (multiples of their length since the epoch),
as TimescaleDB's ``time_bucket`` and PostgreSQL's ``date_bin`` from 2000-01-01 align them.

No I/O and no clock: ``now`` comes in as an argument.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from models.timefmt import from_iso, iso

__all__ = [
    "MAX_POINTS",
    "RAW_MAX_S",
    "RESOLUTIONS",
    "STEP_S",
    "Resolution",
    "Series",
    "SeriesPoint",
    "bucket_floor",
    "choose_resolution",
    "parse_duration",
    "parse_time",
]

Resolution = Literal["raw", "1m", "1h", "1d"]

RESOLUTIONS: tuple[Resolution, ...] = ("raw", "1m", "1h", "1d")
"""Every resolution, finest first."""

STEP_S: dict[Resolution, float] = {"raw": 0.0, "1m": 60.0, "1h": 3600.0, "1d": 86400.0}
"""Bucket length of each resolution in seconds (0: single readings)."""

MAX_POINTS = 1440
"""The most buckets a chosen resolution gives for a range (a day of minutes)."""

RAW_MAX_S = 3600.0
"""Ranges up to this long are shown as single readings."""

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str | float) -> float:
    """Seconds in ``text``: a number with an optional unit s, m, h, d or w (``"15m"``, ``90``)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            msg = f"duration {text!r} is not a number with an optional unit s, m, h, d or w"
            raise ValueError(msg)
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if not math.isfinite(seconds) or seconds < 0:
        msg = f"duration {text!r} must be a finite number of seconds >= 0"
        raise ValueError(msg)
    return seconds


def parse_time(text: str | float, *, now: float) -> float:
    """Epoch seconds of ``text``: ``"now"``, a duration ago (``"1h"``), or ISO 8601 with a zone."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    stripped = str(text).strip()
    if stripped == "now":
        return now
    if _DURATION.match(stripped):
        return now - parse_duration(stripped)
    try:
        return from_iso(stripped.replace("z", "Z"))
    except ValueError:
        msg = (
            f"time {text!r} is not 'now', a duration ago such as '1h' or '7d', "
            "or an ISO 8601 time with a zone such as 2026-11-26T08:00:00Z"
        )
        raise ValueError(msg) from None


def choose_resolution(
    since: float, until: float, *, max_points: int = MAX_POINTS, raw_max_s: float = RAW_MAX_S
) -> Resolution:
    """The finest resolution showing ``[since, until)`` in at most about ``max_points`` points."""
    if until <= since:
        msg = f"range [{iso(since)}, {iso(until)}) is empty: 'until' must be after 'since'"
        raise ValueError(msg)
    span = until - since
    if span <= raw_max_s:
        return "raw"
    for resolution in ("1m", "1h"):
        if span / STEP_S[resolution] <= max_points:
            return resolution
    return "1d"


def bucket_floor(ts: float, resolution: Resolution) -> float:
    """The start of the UTC-aligned bucket of ``resolution`` that holds ``ts``."""
    step = STEP_S[resolution]
    if step == 0:
        return ts
    return math.floor(ts / step) * step


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One point of a history series.

    For buckets, ``ts`` is the bucket start, ``value`` the mean of what fell in it, ``min`` and
    ``max`` its extremes and ``count`` how many values; a raw point is one reading or indicator
    value (``count`` 1) and may name its ``device_id`` or ``level``.
    """

    ts: float
    value: float
    min: float
    max: float
    count: int
    device_id: str | None = None
    level: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form, time as ISO 8601 UTC; absent optional fields left out."""
        record: dict[str, Any] = {
            "ts": iso(self.ts),
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "count": self.count,
        }
        if self.device_id is not None:
            record["device_id"] = self.device_id
        if self.level is not None:
            record["level"] = self.level
        return record


@dataclass(frozen=True, slots=True)
class Series:
    """A district's series of one kind (``source`` readings) or indicator over a range."""

    district: str
    name: str
    source: Literal["readings", "indicators"]
    resolution: Resolution
    since: float
    until: float
    points: tuple[SeriesPoint, ...]

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready object per point, each naming the district, series and resolution."""
        label = "kind" if self.source == "readings" else "indicator"
        return [
            {"district": self.district, label: self.name, "resolution": self.resolution,
             **point.as_dict()}
            for point in self.points
        ]
