"""Event-time windows: exact statistics, watermark with allowance and wall clock, late readings."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.readings import Reading
from models.windows import KeyWindows, Window, preaggregate, vital_record, window_start

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z, a multiple of 10 s


def reading(ts: float, value: float, device: str = "pm-1", district: str = "harbour",
            kind: str = "pm25") -> Reading:
    return Reading(device, district, kind, value, "ug/m3", ts)


def parts(*readings: Reading) -> list[Window]:
    return preaggregate(readings, 10.0)


def feed(windows: KeyWindows, readings: list[Reading], now: float) -> list[Window | None]:
    """Merge readings one at a time (as a batch size of 1 would), returning each result."""
    return [windows.merge(part, now) for r in readings for part in parts(r)]


def test_windows_are_aligned_to_the_epoch() -> None:
    assert window_start(T + 9.999, 10.0) == T
    assert window_start(T + 10.0, 10.0) == T + 10
    assert window_start(T + 0.5, 0.25) == T + 0.5


def test_a_window_has_count_mean_min_max_last_and_distinct_devices() -> None:
    (window,) = parts(
        reading(T + 1, 10.0, "a"),
        reading(T + 7, 40.0, "b"),   # greatest event time: its value is "last"
        reading(T + 3, 25.0, "a"),   # arrives after, but older
        reading(T + 5, 5.0, "c"),
    )
    assert (window.count, window.mean, window.min, window.max) == (4, 20.0, 5.0, 40.0)
    assert (window.last, window.last_ts, len(window.devices)) == (40.0, T + 7, 3)
    assert (window.start, window.end, window.key) == (T, T + 10, "harbour/pm25")
    assert [window.stat(s) for s in ("mean", "min", "max", "last")] == [20.0, 5.0, 40.0, 40.0]


def test_unknown_statistic_is_refused_by_name() -> None:
    (window,) = parts(reading(T, 1.0))
    with pytest.raises(ValueError, match="'median'"):
        window.stat("median")


def test_preaggregate_splits_by_key_and_window_oldest_first() -> None:
    got = parts(
        reading(T + 12, 3.0),
        reading(T + 1, 1.0, district="old-town"),
        reading(T + 2, 2.0),
        reading(T + 14, 4.0),
    )
    assert [(w.key, w.start, w.count) for w in got] == [
        ("harbour/pm25", T, 1),
        ("harbour/pm25", T + 10, 2),
        ("old-town/pm25", T, 1),
    ]


@given(
    st.lists(
        st.tuples(
            st.floats(0, 9.99), st.floats(-1e3, 1e3), st.sampled_from(["a", "b", "c"])
        ),
        min_size=1,
        max_size=30,
    ),
    st.data(),
)
def test_merging_parts_of_any_split_equals_aggregating_all_at_once(samples, data) -> None:
    readings = [reading(T + ts, value, device) for ts, value, device in samples]
    cut = data.draw(st.integers(0, len(readings)))
    (whole,) = parts(*readings)
    windows = KeyWindows(10.0, 1.0)
    merged = None
    for chunk in (readings[:cut], readings[cut:]):
        for part in parts(*chunk):
            merged = windows.merge(part, T)
    assert merged is not None
    assert (merged.count, merged.min, merged.max, merged.devices) == (
        whole.count, whole.min, whole.max, whole.devices)
    assert merged.total == pytest.approx(whole.total)
    assert merged.last_ts == whole.last_ts
    assert merged.last in [value for ts, value, _ in samples if T + ts == whole.last_ts]


def test_a_window_closes_once_the_watermark_passes_its_end() -> None:
    windows = KeyWindows(10.0, 1.0)
    now = T + 100  # the wall clock stands still in this test
    feed(windows, [reading(T + 2, 1.0), reading(T + 10.5, 2.0)], now)
    assert windows.watermark(now) == T + 9.5
    assert windows.close_due(now) == []
    feed(windows, [reading(T + 11, 3.0)], now)  # watermark T+10: the first window is done
    (closed,) = windows.close_due(now)
    assert (closed.start, closed.count, closed.last) == (T, 1, 1.0)
    assert list(windows.open) == [T + 10]


def test_out_of_order_reading_within_the_allowance_joins_its_window() -> None:
    windows = KeyWindows(10.0, 1.0)
    now = T + 100
    results = feed(
        windows, [reading(T + 1, 1.0), reading(T + 10.5, 2.0), reading(T + 9.8, 3.0)], now
    )
    assert results[2] is not None and results[2].start == T
    feed(windows, [reading(T + 12, 4.0)], now)
    (first,) = windows.close_due(now)
    assert (first.count, first.mean, first.last) == (2, 2.0, 3.0)
    assert windows.late_total == 0


def test_a_reading_for_a_closed_window_is_counted_late_and_reported_once() -> None:
    windows = KeyWindows(10.0, 1.0)
    now = T + 100
    feed(windows, [reading(T + 1, 1.0), reading(T + 12, 2.0)], now)
    assert [w.start for w in windows.close_due(now)] == [T]
    results = feed(windows, [reading(T + 5, 9.0), reading(T + 9, 9.0)], now)
    assert results == [None, None]
    assert (windows.late_pending, windows.late_total) == (2, 2)
    assert windows.take_late() == 2
    assert windows.take_late() == 0
    assert windows.late_total == 2
    assert T not in windows.open  # never reopened


def test_a_late_batch_part_counts_all_its_readings() -> None:
    windows = KeyWindows(10.0, 0.0)
    feed(windows, [reading(T + 25, 1.0)], T)
    (late_part,) = parts(reading(T + 1, 1.0), reading(T + 2, 1.0), reading(T + 3, 1.0))
    assert windows.merge(late_part, T) is None
    assert windows.late_total == 3


def test_wall_clock_time_advances_the_watermark_without_new_readings() -> None:
    windows = KeyWindows(10.0, 1.0)
    feed(windows, [reading(T + 4, 1.0)], now=T + 4.2)
    # watermark T+3 at wall time T+4.2; it reaches the window end T+10 7 s later
    assert windows.next_close_time() == pytest.approx(T + 11.2)
    assert windows.close_due(T + 11.1) == []
    (closed,) = windows.close_due(T + 11.2)
    assert closed.start == T
    assert windows.next_close_time() is None


def test_the_watermark_never_goes_back_when_the_clock_does() -> None:
    windows = KeyWindows(10.0, 1.0)
    feed(windows, [reading(T + 4, 1.0)], now=T + 5)
    assert windows.watermark(T + 8) == T + 6
    assert windows.watermark(T + 6) == T + 6  # clock stepped back: watermark holds
    # an older reading cannot pull the watermark back either
    feed(windows, [reading(T + 2, 1.0)], now=T + 8)
    assert windows.watermark(T + 8) == T + 6


def test_after_a_restart_the_downtime_does_not_close_the_windows_being_replayed() -> None:
    windows = KeyWindows(10.0, 1.0)
    feed(windows, [reading(T + 4, 1.0)], now=T + 4.5)   # watermark T+3 at T+4.5
    snapshot = pickle.loads(pickle.dumps(windows))
    # the flow was down for an hour: without resume the hour would have closed the window
    assert copy.deepcopy(snapshot).close_due(T + 3600)
    snapshot.resume(T + 3600)
    assert snapshot.watermark(T + 3600) == T + 3
    assert snapshot.close_due(T + 3600) == []
    # the replayed reading joins its window instead of counting late; time then goes on
    (running,) = feed(snapshot, [reading(T + 6, 2.0)], now=T + 3600)
    assert running is not None and running.count == 2 and snapshot.late_total == 0
    (closed,) = snapshot.close_due(T + 3600 + 5.0)  # watermark T+5 + 5 s: T+10
    assert closed.count == 2


def test_next_close_time_is_the_oldest_open_window() -> None:
    windows = KeyWindows(10.0, 2.0)
    feed(windows, [reading(T + 11, 1.0), reading(T + 9, 1.0)], now=T + 11)
    # watermark T+9 set at wall time T+11: window [T, T+10) closes at T+12
    assert windows.next_close_time() == pytest.approx(T + 12)


def test_close_all_ends_every_open_window_oldest_first() -> None:
    windows = KeyWindows(10.0, 30.0)
    feed(windows, [reading(T + 25, 1.0), reading(T + 3, 1.0), reading(T + 14, 1.0)], now=T)
    assert [w.start for w in windows.close_all()] == [T, T + 10, T + 20]
    assert windows.open == {}


def test_state_survives_pickling_and_deepcopy_snapshots_are_independent() -> None:
    windows = KeyWindows(10.0, 1.0)
    feed(windows, [reading(T + 1, 1.0, "a"), reading(T + 2, 3.0, "b")], now=T + 3)
    snapshot = copy.deepcopy(windows)
    feed(windows, [reading(T + 3, 100.0, "c")], now=T + 3)
    restored = pickle.loads(pickle.dumps(snapshot))
    assert restored.open[T].count == 2 and snapshot.open[T].count == 2
    feed(restored, [reading(T + 3, 100.0, "c")], now=T + 3)
    assert restored.open[T].devices == windows.open[T].devices == {"a", "b", "c"}
    assert restored.next_close_time() == windows.next_close_time()


@pytest.mark.parametrize(("length", "allowance"), [(0.0, 1.0), (10.0, -1.0)])
def test_bad_window_settings_are_refused(length: float, allowance: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        KeyWindows(length, allowance)


def test_vital_record_has_the_wire_fields() -> None:
    (window,) = parts(reading(T + 1, 10.0, "a"), reading(T + 2, 20.0, "b"))
    assert vital_record(window, "ug/m3", 3, emitted_at=T + 11.25) == {
        "district": "harbour",
        "kind": "pm25",
        "unit": "ug/m3",
        "window_start": "2026-11-26T05:00:00.000Z",
        "window_end": "2026-11-26T05:00:10.000Z",
        "count": 2,
        "mean": 15.0,
        "min": 10.0,
        "max": 20.0,
        "last": 20.0,
        "devices": 2,
        "late": 3,
        "emitted_at": "2026-11-26T05:00:11.250Z",
    }
