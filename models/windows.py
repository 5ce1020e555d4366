"""Event-time tumbling windows per district and kind, with a late allowance: pure, picklable.

Readings are grouped per key (``"<district>/<kind>"``) into windows of ``length`` seconds
aligned to the epoch (``[k*length, (k+1)*length)``). The flow first folds a batch of readings
into partial :class:`Window` aggregates, one per key and window (:func:`preaggregate`), then merges
them into the key's :class:`KeyWindows`::

    parts = preaggregate(readings, 10.0)            # one Window per key and window (or
                                                    # Preaggregate: readings and batches)
    windows = KeyWindows(length=10.0, allowance=1.0, max_lead=0.0)  # the state of one key
    for part in parts_of_this_key:                      # oldest window first
        running = windows.merge(part, now)              # the running window, or None if late
    for closed in windows.close_due(now):               # windows the watermark has passed
        record = vital_record(closed, unit, windows.take_late(), emitted_at=now)
    windows.next_close_time()                           # wall time to call close_due again
    windows.passed(now)                                 # the window boundary the key is done to

The watermark follows bytewax's ``EventClock``: the greatest event time seen for the key minus
the allowance, advanced by the wall-clock time elapsed since that reading arrived (``now`` is
always an argument; this module reads no clock). A window closes once the watermark reaches its
end. With ``max_lead`` set, an event time more than ``max_lead`` seconds ahead of ``now`` moves
the watermark only as far as ``now + max_lead - allowance``: a device whose clock runs ahead keeps
its reading (in the window of its own time stamp) but cannot make every other device's readings
late. The default (no limit) lets event time alone move the watermark, for a clock that stands
still (tests) or lags the data.

A part for a window whose end the watermark has already reached is *late*: it is not
aggregated but counted, both in :attr:`KeyWindows.late_pending` (reported, then reset, by the
next vital record of the key) and in :attr:`KeyWindows.late_total`.

Parts of one batch are merged oldest window first, so readings of a batch are judged as if the
batch had arrived in event-time order.

Besides count, sum, min, max and last, a window keeps one :class:`DeviceRun` per device (its
count, sum, value range and first/last event time: device health and per-device indicators
need no per-reading state of their own) and, for decibel kinds (``decibel_kinds`` of
:func:`preaggregate`), the sum of the readings' energy ``10 ** (L / 10)``, so the Leq of any
union of parts is exact (:attr:`Window.leq`).
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, KeysView, Sequence
from typing import Any

from models.readings import Reading
from models.timefmt import iso

__all__ = [
    "DeviceRun", "KeyWindows", "Preaggregate", "Window", "preaggregate", "vital_record",
    "window_start",
]


def window_start(ts: float, length: float) -> float:
    """The start of the epoch-aligned window of ``length`` seconds that contains ``ts``."""
    return (ts // length) * length


class DeviceRun:
    """One device's readings within a window (or a part of it): what device health needs.

    ``count`` and ``total`` (for the device's mean), the value range ``lo``..``hi`` (a range
    within the stuck tolerance over enough readings means a stuck sensor) and the first and
    last event times. Runs of consecutive parts merge exactly (:meth:`merge`).
    """

    __slots__ = ("count", "first_ts", "hi", "last_ts", "lo", "total")

    def __init__(self, value: float, ts: float) -> None:
        self.count = 1
        self.total = value
        self.lo = value
        self.hi = value
        self.first_ts = ts
        self.last_ts = ts

    @property
    def mean(self) -> float:
        """The device's mean value in the window."""
        return self.total / self.count

    def merge(self, other: DeviceRun) -> None:
        """Fold another part of the same device and window into this one."""
        self.count += other.count
        self.total += other.total
        if other.lo < self.lo:
            self.lo = other.lo
        if other.hi > self.hi:
            self.hi = other.hi
        if other.first_ts < self.first_ts:
            self.first_ts = other.first_ts
        if other.last_ts > self.last_ts:
            self.last_ts = other.last_ts

    def __getstate__(self) -> tuple[int, float, float, float, float, float]:
        return (self.count, self.total, self.lo, self.hi, self.first_ts, self.last_ts)

    def __setstate__(self, state: tuple[int, float, float, float, float, float]) -> None:
        self.count, self.total, self.lo, self.hi, self.first_ts, self.last_ts = state

    def __repr__(self) -> str:
        return (
            f"DeviceRun(count={self.count} mean={self.mean:g} range=[{self.lo:g}, {self.hi:g}] "
            f"ts=[{self.first_ts:g}, {self.last_ts:g}])"
        )


class Window:
    """The running aggregate of one key's readings in one window (or a part of it).

    ``last`` is the value of the reading with the greatest event time ``last_ts`` (on a tie,
    the one merged later); ``runs`` holds one :class:`DeviceRun` per device (``devices`` is
    their ids). ``energy`` is the sum of ``10 ** (value / 10)`` for kinds measured in decibels
    (sound levels average as energy: Leq = ``10 * log10(energy / count)``), else None.
    """

    __slots__ = (
        "district", "kind", "start", "end", "count", "total", "min", "max", "last_ts", "last",
        "runs", "energy",
    )

    def __init__(
        self, district: str, kind: str, start: float, end: float,
        value: float, ts: float, device: str, *, decibels: bool = False,
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
        self.runs = {device: DeviceRun(value, ts)}
        self.energy = 10.0 ** (value * 0.1) if decibels else None

    @property
    def key(self) -> str:
        """``"<district>/<kind>"``: the Kafka key of the window's vital record."""
        return f"{self.district}/{self.kind}"

    @property
    def devices(self) -> KeysView[str]:
        """The distinct device ids aggregated so far."""
        return self.runs.keys()

    @property
    def mean(self) -> float:
        """The mean of the values aggregated so far."""
        return self.total / self.count

    @property
    def leq(self) -> float | None:
        """The energy-average level ``10 * log10(energy / count)`` (decibel kinds), else None."""
        if self.energy is None:
            return None
        return 10.0 * math.log10(self.energy / self.count)

    def stat(self, name: str) -> float:
        """The statistic ``name``: ``mean``, ``min``, ``max`` or ``last``."""
        if name not in ("mean", "min", "max", "last"):
            msg = f"window statistic {name!r} is not one of mean, min, max, last"
            raise ValueError(msg)
        return float(getattr(self, name))

    def add(self, value: float, ts: float, device: str) -> None:
        """Fold one more reading into this aggregate (the per-reading path: keep it lean)."""
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if ts >= self.last_ts:
            self.last_ts = ts
            self.last = value
        run = self.runs.get(device)
        if run is None:
            self.runs[device] = DeviceRun(value, ts)
        else:
            run.count += 1
            run.total += value
            if value < run.lo:
                run.lo = value
            elif value > run.hi:
                run.hi = value
            if ts > run.last_ts:
                run.last_ts = ts
            elif ts < run.first_ts:
                run.first_ts = ts
        if self.energy is not None:
            self.energy += 10.0 ** (value * 0.1)

    def merge(self, other: Window) -> None:
        """Fold another aggregate of the same key and window into this one (taking its runs)."""
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
        runs = self.runs
        for device, run in other.runs.items():
            mine = runs.get(device)
            if mine is None:
                runs[device] = run
            else:
                mine.merge(run)
        if self.energy is not None and other.energy is not None:
            self.energy += other.energy

    def __repr__(self) -> str:
        return (
            f"Window({self.key} [{self.start:g}, {self.end:g}) count={self.count} "
            f"mean={self.mean:g} min={self.min:g} max={self.max:g} last={self.last:g} "
            f"devices={len(self.runs)})"
        )

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


def preaggregate(
    readings: Iterable[Reading], length: float, decibel_kinds: Container[str] = ()
) -> list[Window]:
    """Fold ``readings`` into one partial Window per key and window (:class:`Preaggregate`)."""
    parts = Preaggregate(length, decibel_kinds)
    parts.add_readings(readings)
    return parts.windows()


class Preaggregate:
    """One partial Window per key and window, of readings folded in the order they come: as
    :class:`~models.readings.Reading` objects, or as a batch's columns
    (:class:`~models.reading_batch.ReadingBatch`), without an object per reading.

    Windows of the kinds in ``decibel_kinds`` also sum the readings' energy (for Leq).
    """

    def __init__(self, length: float, decibel_kinds: Container[str] = ()) -> None:
        self._length = length
        self._decibels = decibel_kinds
        self._parts: dict[tuple[str, str, float], Window] = {}

    def add_readings(self, readings: Iterable[Reading]) -> None:
        """Fold ``readings`` in."""
        parts, length, decibels = self._parts, self._length, self._decibels
        for r in readings:
            ts = r.ts
            start = (ts // length) * length
            slot = (r.district, r.kind, start)
            part = parts.get(slot)
            if part is None:
                parts[slot] = Window(r.district, r.kind, start, start + length, r.value, ts,
                                     r.device_id, decibels=r.kind in decibels)
            else:
                part.add(r.value, ts, r.device_id)

    def add_columns(
        self, series: Sequence[tuple[str, ...]], series_ix: Iterable[int],
        device_ids: Iterable[str], values: Iterable[float], stamps: Iterable[float],
    ) -> None:
        """Fold in readings given as columns: reading i is of ``series[series_ix[i]]``
        (district, kind, ...), from ``device_ids[i]``, ``values[i]`` at ``stamps[i]``."""
        parts, length = self._parts, self._length
        keys = [(s[0], s[1]) for s in series]
        decibels = [s[1] in self._decibels for s in series]
        for ix, device, value, ts in zip(series_ix, device_ids, values, stamps, strict=True):
            start = (ts // length) * length
            district, kind = keys[ix]
            slot = (district, kind, start)
            part = parts.get(slot)
            if part is None:
                parts[slot] = Window(district, kind, start, start + length, value, ts, device,
                                     decibels=decibels[ix])
            else:
                part.add(value, ts, device)

    def windows(self) -> list[Window]:
        """The parts, sorted by district, kind, then window start: each key's oldest first."""
        parts = self._parts
        return [parts[slot] for slot in sorted(parts)]


class KeyWindows:
    """The open windows of one key, its watermark and its count of late readings.

    Picklable (bytewax snapshots it); ``copy.deepcopy`` gives an independent snapshot.
    """

    max_lead = math.inf  # for snapshots taken before there was a lead limit

    def __init__(self, length: float, allowance: float, max_lead: float = math.inf) -> None:
        if not (length > 0 and math.isfinite(length)):
            msg = f"window length {length!r} s must be a positive number"
            raise ValueError(msg)
        if not (allowance >= 0 and math.isfinite(allowance)):
            msg = f"late allowance {allowance!r} s must be a number >= 0"
            raise ValueError(msg)
        if not max_lead >= 0:
            msg = f"watermark max_lead {max_lead!r} s must be a number >= 0"
            raise ValueError(msg)
        self.length = length
        self.allowance = allowance
        self.max_lead = max_lead
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
        last_ts = part.last_ts
        if last_ts > self._now + self.max_lead:  # a clock running ahead: do not follow it
            last_ts = self._now + self.max_lead
        base = last_ts - self.allowance
        if base > watermark:
            self._base = base
            self._base_at = self._now
        return window

    def resume(self, now: float) -> None:
        """Carry on at wall time ``now`` after a restart from a snapshot: the watermark goes on
        from where it stood when the snapshot's state last saw the clock, so the downtime does
        not close windows whose readings the flow is about to read again."""
        if self._base != -math.inf and self._now != -math.inf and now > self._now:
            self._base += self._now - self._base_at
            self._base_at = self._now = now

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
        return self.wall_time_of(min(self.open) + self.length)

    def wall_time_of(self, event_time: float) -> float | None:
        """The wall time at which the watermark reaches ``event_time`` (None before any data)."""
        if self._base == -math.inf:
            return None
        return self._base_at + (event_time - self._base)

    def passed(self, now: float) -> float:
        """The latest window boundary the watermark has reached at ``now`` (-inf before data).

        Every window ending at or before it is closed: the key has nothing more to say about
        that span of event time.
        """
        watermark = self.watermark(now)
        if watermark == -math.inf:
            return watermark
        return (watermark // self.length) * self.length

    def take_late(self) -> int:
        """The late readings not reported yet; reset to 0 (they go in the next vital record)."""
        late, self.late_pending = self.late_pending, 0
        return late


def vital_record(window: Window, unit: str, late: int, *, emitted_at: float) -> dict[str, Any]:
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
