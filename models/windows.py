"""Event-time tumbling windows per district and kind, with a late allowance: pure, picklable.

Readings are grouped per key (``"<district>/<kind>"``) into windows of ``length`` seconds
aligned to the epoch (``[k*length, (k+1)*length)``). The flow first folds a batch of readings
into partial :class:`Window` aggregates, one per key and window (:func:`preaggregate`), then merges
them into the key's :class:`KeyWindows`::

    parts = preaggregate(readings, 10.0)            # one Window per key and window
    windows = KeyWindows(length=10.0, allowance=1.0)    # the state of one key
    for part in parts_of_this_key:                      # oldest window first
        running = windows.merge(part, now)              # the running window, or None if late
    for closed in windows.close_due(now):               # windows the watermark has passed
        record = vital_record(closed, unit, windows.take_late(), emitted_at=now)
    windows.next_close_time()                           # wall time to call close_due again

The watermark follows bytewax's ``EventClock``: the greatest event time seen for the key minus
the allowance, advanced by the wall-clock time elapsed since that reading arrived (``now`` is
always an argument; this module reads no clock). A window closes once the watermark reaches its
end. A part for a window whose end the watermark has already reached is *late*: it is not
aggregated but counted, both in :attr:`KeyWindows.late_pending` (reported, then reset, by the
next vital record of the key) and in :attr:`KeyWindows.late_total`.

Parts of one batch are merged oldest window first, so readings of a batch are judged as if the
batch had arrived in event-time order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from models.readings import Reading
from models.timefmt import iso

__all__ = ["KeyWindows", "Window", "preaggregate", "vital_record", "window_start"]


def window_start(ts: float, length: float) -> float:
    """The start of the epoch-aligned window of ``length`` seconds that contains ``ts``."""
    return (ts // length) * length


class Window:
    """The running aggregate of one key's readings in one window (or a part of it).

    ``last`` is the value of the reading with the greatest event time ``last_ts`` (on a tie,
    the one merged later); ``devices`` holds the distinct device ids.
    """

    __slots__ = (
        "district", "kind", "start", "end", "count", "total", "min", "max", "last_ts", "last",
        "devices",
    )

    def __init__(
        self, district: str, kind: str, start: float, end: float,
        value: float, ts: float, device: str,
    ) -> None:
        self.district = district
        self.kind = kind
        self.start = start
        self.end = end
        self.count = 1
        self.total = value
        self.min = value
        self.max = value
        self.last_ts = ts
        self.last = value
        self.devices = {device}

    @property
    def key(self) -> str:
        """``"<district>/<kind>"``, the key the flow partitions state by."""
        return f"{self.district}/{self.kind}"

    @property
    def mean(self) -> float:
        """The mean of the values aggregated so far."""
        return self.total / self.count

    def stat(self, name: str) -> float:
        """The statistic ``name``: ``mean``, ``min``, ``max`` or ``last``."""
        if name not in ("mean", "min", "max", "last"):
            msg = f"window statistic {name!r} is not one of mean, min, max, last"
            raise ValueError(msg)
        return float(getattr(self, name))

    def add(self, value: float, ts: float, device: str) -> None:
        """Fold one more reading into this aggregate."""
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if ts >= self.last_ts:
            self.last_ts = ts
            self.last = value
        self.devices.add(device)

    def merge(self, other: Window) -> None:
        """Fold another aggregate of the same key and window into this one."""
        if other.start != self.start or other.kind != self.kind or (
            other.district != self.district
        ):
            msg = (
                f"cannot merge window {other.key}@{other.start} into {self.key}@{self.start}"
            )
            raise ValueError(msg)
        self.count += other.count
        self.total += other.total
        if other.min < self.min:
            self.min = other.min
        if other.max > self.max:
            self.max = other.max
        if other.last_ts >= self.last_ts:
            self.last_ts = other.last_ts
            self.last = other.last
        self.devices |= other.devices

    def __repr__(self) -> str:
        return (
            f"Window({self.key} [{self.start:g}, {self.end:g}) count={self.count} "
            f"mean={self.mean:g} min={self.min:g} max={self.max:g} last={self.last:g} "
            f"devices={len(self.devices)})"
        )

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


def preaggregate(readings: Iterable[Reading], length: float) -> list[Window]:
    """Fold ``readings`` into one partial Window per key and window.

    The parts are sorted by district, kind, then window start: each key's parts oldest first.
    """
    parts: dict[tuple[str, str, float], Window] = {}
    for reading in readings:
        ts = reading.ts
        start = (ts // length) * length
        slot = (reading.district, reading.kind, start)
        part = parts.get(slot)
        if part is None:
            parts[slot] = Window(
                reading.district, reading.kind, start, start + length,
                reading.value, ts, reading.device_id,
            )
        else:
            part.add(reading.value, ts, reading.device_id)
    return [parts[slot] for slot in sorted(parts)]


class KeyWindows:
    """The open windows of one key, its watermark and its count of late readings.

    Picklable (bytewax snapshots it); ``copy.deepcopy`` gives an independent snapshot.
    """

    def __init__(self, length: float, allowance: float) -> None:
        if not (length > 0 and math.isfinite(length)):
            msg = f"window length {length!r} s must be a positive number"
            raise ValueError(msg)
        if not (allowance >= 0 and math.isfinite(allowance)):
            msg = f"late allowance {allowance!r} s must be a number >= 0"
            raise ValueError(msg)
        self.length = length
        self.allowance = allowance
        self.open: dict[float, Window] = {}
        self.late_pending = 0
        self.late_total = 0
        self._base = -math.inf  # greatest event time seen minus the allowance
        self._base_at = -math.inf  # wall time when _base was set
        self._now = -math.inf  # latest wall time seen: the watermark never goes back

    def watermark(self, now: float) -> float:
        """The event time up to which windows are complete, at wall time ``now``."""
        if now > self._now:
            self._now = now
        if self._base == -math.inf:
            return -math.inf
        return self._base + (self._now - self._base_at)

    def merge(self, part: Window, now: float) -> Window | None:
        """Merge ``part`` (taking ownership of it); return the running window, or None if late.

        A late part's readings are added to :attr:`late_pending` and :attr:`late_total`.
        """
        watermark = self.watermark(now)
        if part.end <= watermark:
            self.late_pending += part.count
            self.late_total += part.count
            return None
        window = self.open.get(part.start)
        if window is None:
            self.open[part.start] = window = part
        else:
            window.merge(part)
        base = part.last_ts - self.allowance
        if base > watermark:
            self._base = base
            self._base_at = self._now
        return window

    def close_due(self, now: float) -> list[Window]:
        """Remove and return the windows the watermark has reached at ``now``, oldest first."""
        watermark = self.watermark(now)
        due = sorted(start for start, window in self.open.items() if window.end <= watermark)
        return [self.open.pop(start) for start in due]

    def close_all(self) -> list[Window]:
        """Remove and return every open window, oldest first (the input has ended)."""
        return [self.open.pop(start) for start in sorted(self.open)]

    def next_close_time(self) -> float | None:
        """The wall time at which the watermark reaches the oldest open window's end, if any."""
        if not self.open:
            return None
        end = min(self.open) + self.length
        return self._base_at + (end - self._base)

    def take_late(self) -> int:
        """The late readings not reported yet; reset to 0 (they go in the next vital record)."""
        late, self.late_pending = self.late_pending, 0
        return late


def vital_record(window: Window, unit: str, late: int, *, emitted_at: float) -> dict:
    """The ``vitals`` wire record (JSON-ready dict) of a closed window."""
    return {
        "district": window.district,
        "kind": window.kind,
        "unit": unit,
        "window_start": iso(window.start),
        "window_end": iso(window.end),
        "count": window.count,
        "mean": window.total / window.count,
        "min": window.min,
        "max": window.max,
        "last": window.last,
        "devices": len(window.devices),
        "late": late,
        "emitted_at": iso(emitted_at),
    }
