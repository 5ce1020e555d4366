"""Device health in the flow: trackers fed a window at a time, and out-of-range rejections.

The flow never looks at a device per reading for health: each window already holds one
:class:`~models.windows.DeviceRun` per device (count, mean, value range, first and last event
time), and when the window closes every run is folded into that device's
:class:`WindowedTracker` (a :class:`~models.indicators.health.DeviceTracker` that takes whole
runs). The rules are DeviceTracker's, at window granularity for stuck values:

- silent: no reading for ``silent_after_intervals`` x the kind's ``interval_s``, judged at the
  end of each window (event time, so a replay judges the same way);
- stuck: the readings of consecutive windows, at least ``stuck_readings`` of them spanning at
  least ``stuck_min_span_s``, all lie within a range of ``stuck_tolerance`` (0: all equal).
  A window whose own range is wider breaks the run; a new run starts with the next window
  whose range is narrow enough;
- out of range: more than ``max_out_of_range_share`` of its readings were rejected as out of
  range. The bridge refuses those readings before they reach the ``readings`` topic: besides
  their dead letter it writes each as a :class:`~models.vitals.records.Rejection` record
  (:func:`rejection_from_payload`, :func:`encode_rejection`) to the rejections topic, which
  the flow reads (:func:`decode_rejection`); readings the flow itself refuses as out of range
  count the same way (:func:`rejection_from_reading`).

::

    tracker = WindowedTracker()
    tracker.observe_run(run, params)                 # at window close, oldest window first
    tracker.reject(ts, params)                       # a reading refused as out of range
    tracker.status("pm25-harbour-001", window_end, interval_s=10.0, params=params)
"""

from __future__ import annotations

from typing import Any

import orjson

from models.indicators.health import DeviceTracker, HealthParams
from models.timefmt import from_iso
from models.vitals.records import Rejection
from models.windows import DeviceRun

__all__ = [
    "WindowedTracker", "decode_rejection", "encode_rejection", "rejection_from_payload",
    "rejection_from_reading",
]


class WindowedTracker(DeviceTracker):
    """A DeviceTracker fed whole :class:`~models.windows.DeviceRun` s (one per window)."""

    __slots__ = ("run_hi", "run_lo")

    def __init__(self) -> None:
        super().__init__()
        self.run_lo = 0.0
        self.run_hi = 0.0

    def observe_run(self, run: DeviceRun, params: HealthParams, *, in_order: bool = True) -> None:
        """Note a window's readings of this device.

        ``in_order=False`` (a late part, outside the window sequence) counts the readings and
        the time the device was heard but leaves the run of equal values alone.
        """
        self._seen(run.last_ts, params)
        self._counts[2] += run.count
        if not in_order or params.stuck_readings is None:
            return
        tolerance = params.stuck_tolerance
        lo, hi = min(run.lo, self.run_lo), max(run.hi, self.run_hi)
        if self.run_count and hi - lo <= tolerance:
            self.run_count += run.count
            self.run_lo, self.run_hi = lo, hi
        elif run.hi - run.lo <= tolerance:
            self.run_count, self.run_start = run.count, run.first_ts
            self.run_lo, self.run_hi = run.lo, run.hi
        else:
            self.run_count = 0
        self.run_value = self.run_lo


def rejection_from_reading(payload: bytes) -> Rejection | None:
    """The Rejection of a ``readings`` record the flow's parser refused as out of range."""
    record = _object(payload)
    if record is None:
        return None
    return _rejection(record.get("district"), record)


def rejection_from_payload(district: str, payload: bytes) -> Rejection | None:
    """The Rejection of a device payload refused as out of range in ``district`` (the bridge's:
    the district comes from the MQTT topic, device id, kind and ts from the payload)."""
    record = _object(payload)
    if record is None:
        return None
    return _rejection(district, record)


def encode_rejection(rejection: Rejection) -> bytes:
    """The rejections topic's record of ``rejection`` (JSON; ts in epoch seconds)."""
    return orjson.dumps({"district": rejection.district, "kind": rejection.kind,
                         "device_id": rejection.device_id, "ts": rejection.ts})


def decode_rejection(value: bytes) -> Rejection | None:
    """The Rejection of a rejections topic record; None if it is not one."""
    record = _object(value)
    if record is None:
        return None
    return _rejection(record.get("district"), record)


def _object(payload: bytes) -> dict[str, Any] | None:
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _rejection(district: object, record: dict[str, Any]) -> Rejection | None:
    device, kind, ts = record.get("device_id"), record.get("kind"), record.get("ts")
    if not all(isinstance(v, str) and v for v in (district, device, kind)):
        return None
    if isinstance(ts, str):
        try:
            moment = from_iso(ts)
        except ValueError:
            return None
    elif isinstance(ts, int | float) and not isinstance(ts, bool):  # JSON numbers only
        moment = float(ts)
    else:
        return None
    return Rejection(str(district), str(kind), str(device), moment)
