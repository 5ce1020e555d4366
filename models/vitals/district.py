"""One district's vital signs: its kinds' windows, device health, rolling state and indicators.

The flow keys its state by district. :class:`DistrictVitals` (built once from settings) works
on a picklable :class:`DistrictState` per district; time is always an argument::

    vitals = DistrictVitals(vitals_params(settings))  # settings.params
    state = vitals.new_state("old-town")
    running = vitals.merge(state, part, now)      # a Window part of one kind; None if late
    vitals.reject(state, rejection)               # an out-of-range reading of a device
    closed = vitals.close(state, now)             # closed windows, indicator records, city facts
    vitals.next_wake(state)                       # wall time to call close again

Each kind keeps its own event-time windows and watermark (:class:`~models.windows.KeyWindows`)
and its devices' :class:`~models.vitals.devices.WindowedTracker` s. When a kind's window
closes, its device runs feed the trackers and the kind's coverage is judged at the window's
end. The kind is then *done* up to the latest window boundary its watermark passed, with data
or without (a kind whose devices all fell silent still moves on with the wall clock).

A district window is computed once every kind the district has heard from is done with it, so
the indicators of one window see all its kinds; a kind window that arrives after its district
window was computed is counted in ``skipped`` (its vital record still goes out). When nothing
arrived for a whole window the district still publishes its ``device_health``, so silence
shows. Each computed window yields the district's indicator records and a
:class:`DistrictWindow` for the city; every advance, a :class:`DistrictProgress`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from models.indicators import Coverage, InvalidIndicatorInput, RollingLeq, coverage
from models.indicators.rolling import RollingMean
from models.vitals import compute
from models.vitals.compute import KindWindow, VitalsParams
from models.vitals.devices import WindowedTracker
from models.vitals.records import IndicatorRecord, Rejection
from models.windows import KeyWindows, Window

__all__ = [
    "Closed",
    "DistrictProgress",
    "DistrictState",
    "DistrictVitals",
    "DistrictWindow",
    "KindState",
]

# KindState's pickled form: windows, trackers, through, coverage, wake
_KindStateTuple = tuple[KeyWindows, dict[str, WindowedTracker], float, Coverage | None, float]


class KindState:
    """One kind of one district: windows, device trackers, how far it is done, coverage.

    ``wake`` is the wall time before which closing has nothing to do for the kind (-inf after
    a merge moved its watermark), so that the per-batch close costs nothing for quiet kinds.
    """

    __slots__ = ("coverage", "through", "trackers", "wake", "windows")

    def __init__(self, length: float, allowance: float, max_lead: float = math.inf) -> None:
        self.windows = KeyWindows(length, allowance, max_lead)
        self.trackers: dict[str, WindowedTracker] = {}
        self.through = -math.inf
        self.coverage: Coverage | None = None
        self.wake = -math.inf

    def next_wake(self, length: float) -> float:
        """When the watermark next reaches an open window's end or the next boundary."""
        times = [self.windows.next_close_time()]
        if self.through > -math.inf:
            times.append(self.windows.wall_time_of(self.through + length))
        known = [t for t in times if t is not None]
        return min(known) if known else math.inf

    def __getstate__(self) -> _KindStateTuple:
        return (self.windows, self.trackers, self.through, self.coverage, self.wake)

    def __setstate__(self, state: _KindStateTuple) -> None:
        self.windows, self.trackers, self.through, self.coverage, self.wake = state


@dataclass
class DistrictState:
    """The picklable state of one district."""

    district: str
    air: dict[str, RollingMean]
    noise: RollingLeq | None
    kinds: dict[str, KindState] = field(default_factory=dict)
    pending: dict[float, dict[str, KindWindow]] = field(default_factory=dict)
    through: float = -math.inf
    ticked: float = -math.inf
    water: deque[tuple[float, float]] = field(default_factory=deque)
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class DistrictWindow:
    """What the city needs from one computed district window."""

    district: str
    start: float
    end: float
    records: tuple[IndicatorRecord, ...]
    air: dict[str, float]
    air_filled: dict[str, float]
    air_instant: dict[str, float]
    score: Any  # models.indicators.score.DistrictScore


@dataclass(frozen=True, slots=True)
class DistrictProgress:
    """The district has computed everything up to ``through`` (epoch s)."""

    district: str
    through: float


@dataclass
class Closed:
    """The outcome of :meth:`DistrictVitals.close`."""

    windows: list[tuple[Window, int]] = field(default_factory=list)
    records: list[IndicatorRecord] = field(default_factory=list)
    to_city: list[DistrictWindow | DistrictProgress] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class DistrictVitals:
    """The vital-sign computation of every district; state lives in DistrictState."""

    def __init__(self, params: VitalsParams) -> None:
        self.params = params
        self.length = params.length
        self._pollutant_of = params.air.pollutant_of_kind
        self._noise_kind = params.sources.get("noise")

    def new_state(self, district: str) -> DistrictState:
        """Fresh state for ``district``."""
        noise = None
        leq = self.params.leq_window_s
        if self._noise_kind and leq > self.length:
            noise = RollingLeq(self.length, (leq,))
        return DistrictState(district, self.params.air.new_rolling(), noise)

    def _kind(self, state: DistrictState, kind: str) -> KindState:
        found = state.kinds.get(kind)
        if found is None:
            params = self.params
            found = state.kinds[kind] = KindState(self.length, params.allowance, params.max_lead)
        return found

    def resume(self, state: DistrictState, now: float) -> None:
        """After a restart from a snapshot: every kind's watermark goes on from where it stood
        (:meth:`~models.windows.KeyWindows.resume`), not from where the downtime took it."""
        for kind in state.kinds.values():
            kind.windows.resume(now)
            kind.wake = -math.inf

    def merge(self, state: DistrictState, part: Window, now: float) -> Window | None:
        """Merge a part into its kind's windows; the running window, or None if late."""
        kind = self._kind(state, part.kind)
        running = kind.windows.merge(part, now)
        if running is not None:
            kind.wake = -math.inf  # the watermark may have moved: look at the kind again
        else:  # late: not aggregated, but the devices did speak
            health = self.params.health[part.kind]
            for device, run in part.runs.items():
                tracker = kind.trackers.get(device)
                if tracker is None:
                    tracker = kind.trackers[device] = WindowedTracker()
                tracker.observe_run(run, health, in_order=False)
        return running

    def reject(self, state: DistrictState, rejection: Rejection) -> None:
        """Count an out-of-range reading against its device."""
        if rejection.kind not in self.params.health:
            return
        kind = self._kind(state, rejection.kind)
        tracker = kind.trackers.setdefault(rejection.device_id, WindowedTracker())
        tracker.reject(rejection.ts, self.params.health[rejection.kind])

    def next_wake(self, state: DistrictState) -> float | None:
        """The wall time at which a window closes or a kind is done with the next one."""
        wake = min((kind.wake for kind in state.kinds.values()), default=math.inf)
        return None if wake == math.inf else wake

    def close(self, state: DistrictState, now: float, *, final: bool = False) -> Closed:
        """Close what the watermarks passed (everything if ``final``) and compute the district."""
        out = Closed()
        for kind_id, kind in state.kinds.items():
            if final or kind.wake <= now:
                self._close_kind(state, kind_id, kind, now, final, out)
                kind.wake = kind.next_wake(self.length)
        done = [k.through for k in state.kinds.values() if k.through > -math.inf]
        if not done:
            return out
        progress = math.inf if final else min(done)
        for start in sorted(s for s in state.pending if s + self.length <= progress):
            self._compute(state, start, state.pending.pop(start), out)
            state.ticked = start + self.length
        progress = max(done) if final else progress
        if state.ticked == -math.inf:
            state.ticked = progress
        elif not final and progress - state.ticked >= self.length:
            record = self._health(state, progress - self.length, progress)
            if record is not None:
                out.records.append(record)
            state.ticked = progress
        if progress > state.through:
            state.through = progress
            out.to_city.append(DistrictProgress(state.district, progress))
        return out

    def _close_kind(
        self, state: DistrictState, kind_id: str, kind: KindState, now: float, final: bool,
        out: Closed,
    ) -> None:
        due = kind.windows.close_all() if final else kind.windows.close_due(now)
        for window in due:
            cover = self._observe(state.district, kind_id, kind, window)
            out.windows.append((window, kind.windows.take_late()))
            if window.start < state.through:
                state.skipped += 1
                continue
            state.pending.setdefault(window.start, {})[kind_id] = KindWindow(
                kind_id, window.start, window.end, window.count, window.mean, window.min,
                window.max, window.leq, {d: r.mean for d, r in window.runs.items()}, cover,
            )
        if final:
            boundary = max(kind.through, due[-1].end) if due else kind.through
        else:
            boundary = kind.windows.passed(now)
        if boundary > kind.through:
            if not due or due[-1].end < boundary:
                kind.coverage = self._coverage(state.district, kind_id, kind, boundary)
            kind.through = boundary

    def _observe(
        self, district: str, kind_id: str, kind: KindState, window: Window
    ) -> Coverage:
        health = self.params.health[kind_id]
        trackers = kind.trackers
        for device, run in window.runs.items():
            tracker = trackers.get(device)
            if tracker is None:
                tracker = trackers[device] = WindowedTracker()
            tracker.observe_run(run, health)
        kind.coverage = self._coverage(district, kind_id, kind, window.end)
        return kind.coverage

    def _coverage(self, district: str, kind_id: str, kind: KindState, at: float) -> Coverage:
        health = self.params.health[kind_id]
        interval = self.params.intervals[kind_id]
        statuses = [t.status(d, at, interval, health) for d, t in kind.trackers.items()]
        registered = self.params.registered.get(district, {}).get(kind_id, ())
        return coverage(statuses, health, registered=registered)

    def _health(self, state: DistrictState, start: float, end: float) -> IndicatorRecord | None:
        covers = {k: s.coverage for k, s in state.kinds.items() if s.coverage is not None}
        for kind_id, ids in self.params.registered.get(state.district, {}).items():
            if kind_id not in covers and kind_id in self.params.health:  # none ever reported
                covers[kind_id] = coverage([], self.params.health[kind_id], registered=ids)
        return compute.health_record(state.district, start, end, covers, self.params.min_coverage)

    def _compute(
        self, state: DistrictState, start: float, windows: dict[str, KindWindow], out: Closed
    ) -> None:
        end = start + self.length
        covers = _covers(state, windows)
        records, (air, filled, instant) = self._air(state, start, end, windows, covers)
        for name, kind_id in self.params.sources.items():
            window = windows.get(kind_id)
            if window is None:
                continue
            try:
                records.append(self._domain(state, name, window))
            except InvalidIndicatorInput as exc:
                out.problems.append(f"{state.district} {name} [{start:g}]: {exc}")
        health = compute.health_record(
            state.district, start, end, covers, self.params.min_coverage
        )
        if health is not None:
            records.append(health)
        score, result = compute.score_record(
            state.district, start, end, records, self.params.weights, self._by_indicator(covers)
        )
        if score is not None:
            records.append(score)
        out.records.extend(records)
        out.to_city.append(DistrictWindow(
            state.district, start, end, tuple(records), air, filled, instant, result
        ))

    def _air(
        self, state: DistrictState, start: float, end: float, windows: dict[str, KindWindow],
        covers: dict[str, Coverage],
    ) -> tuple[list[IndicatorRecord], tuple[dict[str, float], dict[str, float], dict[str, float]]]:
        """The AQI records of the window, and (averaged, filled, instant) for the city."""
        means = {self._pollutant_of[k]: w.mean for k, w in windows.items()
                 if k in self._pollutant_of}
        if not means:
            return [], ({}, {}, {})
        middle = (start + end) / 2
        for pollutant, mean in means.items():
            state.air[pollutant].add(middle, mean)
        inputs = sum(w.count for k, w in windows.items() if k in self._pollutant_of)
        share, confident = _combined([covers[k] for k in self._pollutant_of if k in covers])
        records = []
        averaged = self.params.air.averaged(state.air, at=middle)
        instant = self.params.air.instant(means)
        for result in (averaged, instant):
            if result is not None:
                records.append(compute.air_record(
                    state.district, result, start, end, inputs, share, confident
                ))
        facts = (
            {} if averaged is None else averaged.available,
            {} if averaged is None else averaged.filled,
            {} if instant is None else instant.available,
        )
        return records, facts

    def _domain(self, state: DistrictState, name: str, window: KindWindow) -> IndicatorRecord:
        params = self.params.district(state.district)
        middle = (window.start + window.end) / 2
        if name == "traffic":
            return compute.traffic_record(state.district, window, params)
        if name == "noise":
            leq = window.leq if window.leq is not None else window.mean
            span = self.length
            if state.noise is not None:
                state.noise.add(middle, leq, window.count)
                span = self.params.leq_window_s
                leq = state.noise.leq(span, middle) or leq
            return compute.noise_record(
                state.district, window, leq, span, params, self.params.timezone
            )
        if name == "water_level":
            level = max(window.device_means.values())
            history = state.water
            history.append((middle, level))
            while history and history[0][0] < middle - self.params.rise_window_s:
                history.popleft()
            spanned = history[-1][0] - history[0][0] >= self.params.rise_min_span_s
            rise = compute.rise_rate(list(history)) if spanned else 0.0
            return compute.water_record(state.district, window, level, rise, params)
        if name == "water_pressure":
            return compute.pressure_record(state.district, window, params)
        if name == "power":
            return compute.power_record(state.district, window, params)
        return compute.crowd_record(state.district, window, params)

    def _by_indicator(self, covers: dict[str, Coverage]) -> dict[str, Coverage]:
        """Coverage by score component: its source kind's; the AQI's least covered pollutant."""
        found = {name: covers[k] for name, k in self.params.sources.items() if k in covers}
        air = [covers[k] for k in self._pollutant_of if k in covers]
        if air:
            found["aqi"] = min(air, key=lambda c: (c.confident, c.share))
        return found


def _covers(state: DistrictState, windows: dict[str, KindWindow]) -> dict[str, Coverage]:
    """Each kind's coverage: at the window's end where it has data, else its latest."""
    covers = {k: s.coverage for k, s in state.kinds.items() if s.coverage is not None}
    covers.update({k: w.coverage for k, w in windows.items()})
    return covers


def _combined(covers: list[Coverage]) -> tuple[float | None, bool]:
    """(usable share over all the devices, whether every kind is confident)."""
    expected = sum(c.expected for c in covers)
    if not expected:
        return None, True
    return sum(c.usable for c in covers) / expected, all(c.confident for c in covers)
