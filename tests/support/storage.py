"""Helpers the storage tests share: deterministic history to store, and what queries must answer.

The expected answers are computed here in plain Python from the readings themselves, not from
any rollup, so a query is checked against an independent computation.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

from models.readings import Reading

T0 = 1767225600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0


def readings(
    days: float = 3.0, *, every_s: float = 150.0, district: str = "old-town", kind: str = "pm25",
    devices: int = 2, seed: int = 1, start: float = T0,
) -> list[Reading]:
    """Readings of ``devices`` devices, one every ``every_s`` s in turn, over ``days`` days."""
    rng = random.Random(seed)
    count = int(days * DAY / every_s)
    return [
        Reading(
            f"{kind}-{district}-{i % devices:03d}", district, kind,
            round(rng.uniform(5.0, 120.0), 3), "ug/m3", start + i * every_s + (i % devices),
            i,
        )
        for i in range(count)
    ]


def buckets(values: list[tuple[float, float]], step: float) -> list[tuple[float, float, float,
                                                                          float, int]]:
    """(bucket start, mean, min, max, count) of (ts, value) pairs in UTC buckets of ``step``."""
    groups: dict[float, list[float]] = defaultdict(list)
    for ts, value in values:
        groups[math.floor(ts / step) * step].append(value)
    return [
        (start, sum(vs) / len(vs), min(vs), max(vs), len(vs))
        for start, vs in sorted(groups.items())
    ]


def points(series: object) -> list[tuple[float, float, float, float, int]]:
    """A Series' points as (ts, mean, min, max, count) tuples."""
    return [(p.ts, p.value, p.min, p.max, p.count) for p in series.points]  # type: ignore[attr-defined]


def same_points(got: list[tuple], expected: list[tuple], rel: float = 1e-9) -> bool:
    """Whether two point lists agree: times and counts exactly, values within ``rel``."""
    if len(got) != len(expected):
        return False
    for g, e in zip(got, expected, strict=True):
        if g[0] != e[0] or g[4] != e[4]:
            return False
        if any(not math.isclose(a, b, rel_tol=rel, abs_tol=1e-9) for a, b in zip(g[1:4], e[1:4],
                                                                                 strict=True)):
            return False
    return True
