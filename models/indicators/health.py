"""Device health and district coverage: is a device silent, stuck, or mostly out of range?

One :class:`DeviceTracker` per device (keyed by device id in a bytewax ``stateful_map``) sees
its readings and its out-of-range rejections; :meth:`DeviceTracker.status` judges it at a given
time, and :func:`coverage` sums a district's statuses (for one kind) into the share of devices
whose data can be trusted::

    params = HealthParams()
    tracker = DeviceTracker()
    tracker.observe(ts, 55.2, params)              # every valid reading
    tracker.reject(ts, params)                     # every out-of-range reading (dead-lettered)
    status = tracker.status("noise-ot-3", now, interval_s=5.0, params=params)
    report = coverage([status, ...], params)       # report.confident is False below min_coverage

The rules:

- silent: no reading for ``silent_after_intervals`` (k) times the kind's interval or longer;
- stuck: the last ``stuck_readings`` (N) readings, spanning at least ``stuck_min_span_s``, all
  equal within ``stuck_tolerance`` (0: exactly equal, i.e. zero variance). A flat but noisy
  signal keeps changing in its last digits and is never stuck. Kinds that legitimately repeat
  one value (rainfall 0 on dry days) turn the check off with ``stuck_readings=None``;
- out of range: more than ``max_out_of_range_share`` of its readings over the last one to two
  ``out_of_range_window_s`` were rejected as out of range.

A device's :data:`DEVICE_STATES` is the worst that applies, in the order silent, stuck,
out_of_range (ok when none does); a :class:`Coverage` names the devices in each state (the
dashboard's map colours them by it). Coverage counts devices as *usable* when they are ok; its
``share`` is usable / expected, and ``confident`` says whether it reaches ``min_coverage``. A
district below it publishes its numbers flagged as low confidence and leaves them out of the
health score (see :mod:`models.indicators.score`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

from models.indicators.levels import InvalidIndicatorInput, finite, positive

__all__ = ["DEVICE_STATES", "Coverage", "DeviceStatus", "DeviceTracker", "HealthParams", "coverage"]

DEVICE_STATES = ("ok", "out_of_range", "stuck", "silent")
"""A device's states, healthy first; a device takes the worst that applies."""


@dataclass(frozen=True, slots=True)
class HealthParams:
    """The rules for silent, stuck and out-of-range devices and the coverage threshold."""

    silent_after_intervals: float = 3.0
    stuck_readings: int | None = 30
    stuck_min_span_s: float = 120.0
    stuck_tolerance: float = 0.0
    max_out_of_range_share: float = 0.1
    out_of_range_window_s: float = 3600.0
    min_coverage: float = 0.6

    def __post_init__(self) -> None:
        positive("silent_after_intervals", self.silent_after_intervals)
        if self.stuck_readings is not None and self.stuck_readings < 2:
            raise InvalidIndicatorInput("stuck_readings", self.stuck_readings, "must be 2 or more")
        if finite("stuck_min_span_s", self.stuck_min_span_s) < 0:
            raise InvalidIndicatorInput("stuck_min_span_s", self.stuck_min_span_s, "must be >= 0")
        if finite("stuck_tolerance", self.stuck_tolerance) < 0:
            raise InvalidIndicatorInput("stuck_tolerance", self.stuck_tolerance, "must be >= 0")
        for name in ("max_out_of_range_share", "min_coverage"):
            if not 0 <= finite(name, getattr(self, name)) <= 1:
                raise InvalidIndicatorInput(name, getattr(self, name), "must be within 0 and 1")
        positive("out_of_range_window_s", self.out_of_range_window_s)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device's health at ``at``: its state and the facts behind it."""

    device_id: str
    state: str
    at: float
    last_seen: float | None
    silent_for_s: float | None
    stuck_run: int
    out_of_range_share: float

    @property
    def usable(self) -> bool:
        """Whether the device's data can be trusted now."""
        return self.state == "ok"


class DeviceTracker:
    """One device's recent history, small and picklable: last reading, equal run, rejections.

    Out-of-range rejections are counted in two consecutive epochs of ``out_of_range_window_s``;
    the share covers the current and the previous epoch, so old trouble ages out.
    """

    __slots__ = (
        "_counts",
        "_epoch",
        "last_seen",
        "run_count",
        "run_start",
        "run_value",
    )

    def __init__(self) -> None:
        self.last_seen: float | None = None
        self.run_value = 0.0
        self.run_count = 0
        self.run_start = 0.0
        self._epoch: int | None = None
        self._counts = [0, 0, 0, 0]  # previous (valid, rejected), current (valid, rejected)

    def observe(self, ts: float, value: float, params: HealthParams) -> None:
        """Note a valid reading of ``value`` at event time ``ts``."""
        ts = finite("ts", ts)
        value = finite("value", value)
        self._seen(ts, params)
        self._counts[2] += 1
        if self.run_count and abs(value - self.run_value) <= params.stuck_tolerance:
            self.run_count += 1
        else:
            self.run_value, self.run_count, self.run_start = value, 1, ts

    def reject(self, ts: float, params: HealthParams) -> None:
        """Note a reading rejected as out of range at event time ``ts`` (the device spoke)."""
        self._seen(finite("ts", ts), params)
        self._counts[3] += 1

    def out_of_range_share(self) -> float:
        """The share of rejected readings over the current and previous epoch (0 if none)."""
        valid = self._counts[0] + self._counts[2]
        rejected = self._counts[1] + self._counts[3]
        return rejected / (valid + rejected) if valid + rejected else 0.0

    def is_stuck(self, params: HealthParams) -> bool:
        """Whether the run of equal readings is long enough to call the device stuck."""
        if params.stuck_readings is None or self.last_seen is None:
            return False
        long_enough = self.run_count >= params.stuck_readings
        return long_enough and self.last_seen - self.run_start >= params.stuck_min_span_s

    def status(
        self, device_id: str, now: float, interval_s: float, params: HealthParams
    ) -> DeviceStatus:
        """The device's state at ``now``, for a kind reporting every ``interval_s`` seconds.

        Moving on to ``now`` also ages out-of-range counts older than the previous epoch.
        """
        now = finite("now", now)
        limit = params.silent_after_intervals * positive("interval_s", interval_s)
        self._roll(now, params)
        silent_for = None if self.last_seen is None else max(0.0, now - self.last_seen)
        share = self.out_of_range_share()
        if silent_for is None or silent_for >= limit:
            state = "silent"
        elif self.is_stuck(params):
            state = "stuck"
        elif share > params.max_out_of_range_share:
            state = "out_of_range"
        else:
            state = "ok"
        run = self.run_count if self.last_seen is not None else 0
        return DeviceStatus(device_id, state, now, self.last_seen, silent_for, run, share)

    def _seen(self, ts: float, params: HealthParams) -> None:
        self.last_seen = ts if self.last_seen is None else max(self.last_seen, ts)
        self._roll(ts, params)

    def _roll(self, ts: float, params: HealthParams) -> None:
        epoch = math.floor(ts / params.out_of_range_window_s)
        if self._epoch is None:
            self._epoch = epoch
        elif epoch == self._epoch + 1:
            self._counts = [self._counts[2], self._counts[3], 0, 0]
            self._epoch = epoch
        elif epoch > self._epoch + 1:
            self._counts = [0, 0, 0, 0]
            self._epoch = epoch


@dataclass(frozen=True, slots=True)
class Coverage:
    """How many of a district's devices (of one kind) report usable data, and if that is enough."""

    expected: int
    reporting: int
    usable: int
    share: float
    min_share: float
    silent: tuple[str, ...] = ()
    stuck: tuple[str, ...] = ()
    out_of_range: tuple[str, ...] = ()
    ok: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    """Registered devices that never reported (counted in ``expected``, never usable)."""

    def __getstate__(self) -> list[object]:
        return [getattr(self, f.name) for f in fields(self)]

    def __setstate__(self, state: list[object]) -> None:
        """Unpickle, also a snapshot taken before ``ok`` or ``missing`` existed (then empty)."""
        values = dict(zip([f.name for f in fields(self)], state, strict=False))
        for spec in fields(self):
            object.__setattr__(self, spec.name, values.get(spec.name, spec.default))

    @property
    def confident(self) -> bool:
        """Whether enough devices are usable to publish the district's number with confidence."""
        return self.expected > 0 and self.share >= self.min_share

    def as_dict(self) -> dict[str, object]:
        """The JSON-ready form, with ``confident``."""
        return {
            "expected": self.expected, "reporting": self.reporting, "usable": self.usable,
            "share": round(self.share, 4), "min_share": self.min_share,
            "confident": self.confident, "silent": list(self.silent), "stuck": list(self.stuck),
            "out_of_range": list(self.out_of_range), "ok": list(self.ok),
            "missing": list(self.missing),
        }


def coverage(
    statuses: Iterable[DeviceStatus], params: HealthParams, expected: int | None = None,
    registered: Iterable[str] = (),
) -> Coverage:
    """The coverage of a district from its devices' statuses.

    ``expected`` is the number of devices that should report (a registry's count); by default,
    the devices that have ever reported, i.e. those with a status. A known device never falls
    out of the denominator by going silent. ``registered`` names the devices the registry
    expects here: those without a status never reported and are ``missing`` (in the
    denominator too).
    """
    if expected is not None and expected < 0:
        raise InvalidIndicatorInput("expected", expected, "must not be negative")
    items = list(statuses)
    missing = tuple(sorted(set(registered) - {status.device_id for status in items}))
    known = len(items) + len(missing)
    known = known if expected is None else max(expected, known)
    by_state: dict[str, list[str]] = {state: [] for state in DEVICE_STATES}
    for status in items:
        by_state[status.state].append(status.device_id)
    usable = len(by_state["ok"])
    reporting = len(items) - len(by_state["silent"])
    return Coverage(
        known, reporting, usable, usable / known if known else 0.0, params.min_coverage,
        tuple(sorted(by_state["silent"])), tuple(sorted(by_state["stuck"])),
        tuple(sorted(by_state["out_of_range"])), tuple(sorted(by_state["ok"])), missing,
    )
