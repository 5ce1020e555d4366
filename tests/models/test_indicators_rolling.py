"""Rolling means over 1 h, 8 h and 24 h, kept incrementally, with gaps and late data."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.indicators.levels import InvalidIndicatorInput
from models.indicators.rolling import RollingMean

H = 3600.0


def two_busy_hours() -> RollingMean:
    """10 every minute in hour 0, nothing for 6 hours, 40 every minute in hour 7."""
    rolling = RollingMean(bucket_s=60.0, windows_s=(H, 8 * H, 24 * H))
    for minute in range(60):
        rolling.add(minute * 60.0, 10.0)
    for minute in range(60):
        rolling.add(7 * H + minute * 60.0, 40.0)
    return rolling


def summary(rolling: RollingMean, now: float | None = None):
    return [(m.mean, m.filled, m.buckets) for m in rolling.means(now)]


def test_means_over_1_8_and_24_hours_with_a_gap() -> None:
    rolling = two_busy_hours()                       # now in the last minute of hour 7
    assert summary(rolling) == [(40.0, 60, 60), (25.0, 120, 480), (25.0, 120, 1440)]
    assert rolling.mean(8 * H).filled_share == 0.25
    assert rolling.mean(H).end_ts == 8 * H


def test_the_windows_move_on_with_the_clock_even_without_data() -> None:
    rolling = two_busy_hours()
    assert summary(rolling, now=9 * H) == [(None, 0, 60), (40.0, 60, 480), (25.0, 120, 1440)]
    # at 24.5 h the 24 h window starts at minute 31: minutes 31-59 of hour 0 are still in it
    day = rolling.mean(24 * H, now=24 * H + 30 * 60)
    assert (day.mean, day.filled) == (pytest.approx((29 * 10 + 60 * 40) / 89), 89)
    assert summary(rolling, now=25 * H) == [(None, 0, 60), (None, 0, 480), (40.0, 60, 1440)]
    assert summary(rolling, now=40 * H) == [(None, 0, 60), (None, 0, 480), (None, 0, 1440)]


def test_time_does_not_move_back() -> None:
    rolling = two_busy_hours()
    rolling.advance(0.0)
    assert rolling.mean(H).mean == 40.0


def test_late_data_counts_in_the_windows_that_still_hold_it() -> None:
    rolling = two_busy_hours()
    assert rolling.add(5 * H, 100.0) is True       # two hours late: in 8 h and 24 h, not 1 h
    assert rolling.mean(H).mean == 40.0
    assert rolling.mean(8 * H).mean == pytest.approx((600 + 2400 + 100) / 121)
    assert rolling.add(-20 * H, 1.0) is False       # older than 24 h: dropped
    assert rolling.dropped == 1


def test_a_weighted_mean() -> None:
    rolling = RollingMean(bucket_s=60.0, windows_s=(H,))
    rolling.add(10.0, 10.0, weight=3.0)
    rolling.add(20.0, 20.0)
    result = rolling.mean(H)
    assert (result.mean, result.weight, result.filled) == (12.5, 4.0, 1)


def test_it_pickles_mid_stream_and_carries_on_identically() -> None:
    original = two_busy_hours()
    copy = pickle.loads(pickle.dumps(original))
    for rolling in (original, copy):
        rolling.add(8 * H + 30.0, 70.0)
    assert summary(copy) == summary(original)


def test_memory_is_one_ring_of_the_longest_window() -> None:
    rolling = RollingMean(bucket_s=300.0, windows_s=(H, 24 * H))
    assert rolling.ring == 288
    assert len(pickle.dumps(rolling)) < 8_000


def test_windows_must_be_whole_buckets() -> None:
    with pytest.raises(InvalidIndicatorInput, match="whole number of buckets"):
        RollingMean(bucket_s=60.0, windows_s=(90.0,))
    with pytest.raises(InvalidIndicatorInput, match="is not one of"):
        RollingMean().mean(2 * H)


def brute_force(events: list[tuple[float, float]], bucket_s: float, window_s: float, now: float):
    current = math.floor(now / bucket_s)
    span = round(window_s / bucket_s)
    kept = [v for ts, v in events if current - span < math.floor(ts / bucket_s) <= current]
    return math.fsum(kept) / len(kept) if kept else None


steps = st.lists(
    st.tuples(st.floats(-9000.0, 9000.0), st.floats(-1000.0, 1000.0)), min_size=1, max_size=150
)


@hsettings(max_examples=60, deadline=None)
@given(steps)
def test_incremental_means_equal_a_recount_from_scratch(moves) -> None:
    """Time mostly moves on (sometimes far, sometimes back: late data); compare every step."""
    rolling = RollingMean(bucket_s=60.0, windows_s=(600.0, 3600.0, 7200.0))
    kept: list[tuple[float, float]] = []
    clock = 1_795_669_200.0
    for delta, value in moves:
        ts = clock + delta
        clock = max(clock, ts)
        if rolling.add(ts, value):
            kept.append((ts, value))
        for window in rolling.windows_s:
            expected = brute_force(kept, 60.0, window, clock)
            got = rolling.mean(window, now=clock).mean
            assert (got is None) == (expected is None)
            if expected is not None:
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_it_serves_as_the_state_of_a_bytewax_stateful_map() -> None:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource, run_main

    def step(state: RollingMean | None, item: tuple[float, float]):
        rolling = state or RollingMean(bucket_s=60.0, windows_s=(H,))
        rolling.add(*item)
        return rolling, rolling.mean(H).mean

    readings = [("old-town", (0.0, 10.0)), ("harbour", (0.0, 1.0)), ("old-town", (60.0, 20.0))]
    out: list[tuple[str, float | None]] = []
    flow = Dataflow("rolling_state")
    stream = op.input("readings", flow, TestingSource(readings))
    op.output("means", op.stateful_map("rolling_mean", stream, step), TestingSink(out))
    run_main(flow)
    assert out == [("old-town", 10.0), ("harbour", 1.0), ("old-town", 15.0)]
