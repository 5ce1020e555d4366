"""Device health: silent after k intervals, stuck on one value, out of range; district coverage."""

from __future__ import annotations

import itertools
import pickle

import pytest

from models.indicators.health import (
    Coverage,
    DeviceStatus,
    DeviceTracker,
    HealthParams,
    coverage,
)
from models.indicators.levels import InvalidIndicatorInput

PARAMS = HealthParams(silent_after_intervals=3, stuck_readings=5, stuck_min_span_s=40.0)
T0 = 1_795_669_200.0


def feed(values, *, interval_s: float = 10.0, params: HealthParams = PARAMS) -> DeviceTracker:
    tracker = DeviceTracker()
    for number, value in enumerate(values):
        tracker.observe(T0 + number * interval_s, value, params)
    return tracker


def test_a_device_is_silent_after_k_times_its_interval() -> None:
    tracker = feed([12.0, 13.5])                      # last reading at T0 + 10
    assert tracker.status("pm-1", T0 + 39.9, 10.0, PARAMS).state == "ok"
    status = tracker.status("pm-1", T0 + 40.0, 10.0, PARAMS)   # 30 s = 3 x 10 s
    assert status.state == "silent"
    assert status.silent_for_s == pytest.approx(30.0)
    assert status.last_seen == T0 + 10.0


def test_a_device_never_heard_from_is_silent() -> None:
    status = DeviceTracker().status("pm-2", T0, 10.0, PARAMS)
    assert (status.state, status.last_seen, status.silent_for_s) == ("silent", None, None)


def test_the_same_value_n_times_over_the_span_is_stuck() -> None:
    assert feed([55.0] * 4).status("n-1", T0 + 35, 10.0, PARAMS).state == "ok"
    stuck = feed([55.0] * 5).status("n-1", T0 + 45, 10.0, PARAMS)  # 5 readings over 40 s
    assert (stuck.state, stuck.stuck_run) == ("stuck", 5)


def test_a_burst_of_equal_readings_shorter_than_the_span_is_not_stuck() -> None:
    burst = feed([55.0] * 10, interval_s=1.0)                          # 10 readings in 9 s
    assert burst.status("n-1", T0 + 10, 1.0, PARAMS).state == "ok"


def test_a_new_value_ends_a_stuck_run() -> None:
    tracker = feed([55.0] * 6 + [55.3])
    status = tracker.status("n-1", T0 + 65, 10.0, PARAMS)
    assert (status.state, status.stuck_run) == ("ok", 1)


def test_a_flat_but_noisy_signal_is_not_stuck() -> None:
    values = list(itertools.islice(itertools.cycle([55.0, 55.0, 55.1, 54.9, 55.0, 54.9]), 200))
    tracker = feed(values)
    assert tracker.status("n-2", T0 + 2000, 10.0, PARAMS).state == "ok"


def test_a_tolerance_catches_a_device_stuck_with_jitter_in_the_last_digit() -> None:
    jitter = [55.00, 55.01, 54.99, 55.00, 55.01, 55.00]
    assert feed(jitter).status("n-3", T0 + 55, 10.0, PARAMS).state == "ok"
    loose = HealthParams(stuck_readings=5, stuck_min_span_s=40.0, stuck_tolerance=0.02)
    assert feed(jitter, params=loose).status("n-3", T0 + 55, 10.0, loose).state == "stuck"


def test_kinds_that_rest_at_one_value_can_turn_the_stuck_check_off() -> None:
    rain = HealthParams(stuck_readings=None)
    assert feed([0.0] * 500, params=rain).status("r-1", T0 + 5000, 10.0, rain).state == "ok"


def test_a_device_mostly_out_of_range_is_flagged_and_recovers_later() -> None:
    params = HealthParams(max_out_of_range_share=0.1, out_of_range_window_s=3600.0)
    tracker = feed([10.0 + n for n in range(10)], params=params)
    tracker.reject(T0 + 100, params)
    assert tracker.status("w-1", T0 + 105, 10.0, params).state == "ok"         # 1 / 11
    tracker.reject(T0 + 110, params)
    flagged = tracker.status("w-1", T0 + 115, 10.0, params)
    assert flagged.state == "out_of_range"
    assert flagged.out_of_range_share == pytest.approx(1 / 6)                   # 2 / 12
    later = T0 + 3 * 3600
    for number in range(5):
        tracker.observe(later + 10 * number, 20.0 + number, params)
    assert tracker.status("w-1", later + 45, 10.0, params).out_of_range_share == 0.0


def test_a_tracker_pickles_with_its_history() -> None:
    tracker = pickle.loads(pickle.dumps(feed([55.0] * 4)))
    tracker.observe(T0 + 40, 55.0, PARAMS)
    assert tracker.status("n-1", T0 + 45, 10.0, PARAMS).state == "stuck"


def status(device_id: str, state: str) -> DeviceStatus:
    return DeviceStatus(device_id, state, T0, T0, 0.0, 1, 0.0)


def test_coverage_below_the_threshold_is_not_confident_and_names_the_devices() -> None:
    statuses = [status("a", "ok"), status("b", "silent"), status("c", "ok"),
                status("d", "stuck"), status("e", "silent")]
    report = coverage(statuses, HealthParams(min_coverage=0.6))
    assert (report.expected, report.reporting, report.usable) == (5, 3, 2)
    assert report.share == pytest.approx(0.4)
    assert report.confident is False
    assert (report.silent, report.stuck, report.out_of_range) == (("b", "e"), ("d",), ())
    assert report.as_dict()["confident"] is False


def test_coverage_names_the_ok_devices_too_and_unpickles_from_before_it_did() -> None:
    statuses = [status("c", "ok"), status("b", "silent"), status("a", "ok")]
    report = coverage(statuses, HealthParams())
    assert report.ok == ("a", "c") and report.as_dict()["ok"] == ["a", "c"]
    assert pickle.loads(pickle.dumps(report)) == report
    older = Coverage.__new__(Coverage)   # a flow snapshot taken before coverage named them
    older.__setstate__(report.__getstate__()[:-2])  # before ok and missing
    assert older.ok == () and older.silent == ("b",)


def test_coverage_at_the_threshold_is_confident() -> None:
    statuses = [status(f"d{n}", "ok") for n in range(6)]
    report = coverage(statuses, HealthParams(min_coverage=0.6), expected=10)
    assert report.share == pytest.approx(0.6)
    assert report.confident is True


def test_no_devices_means_no_confidence() -> None:
    report = coverage([], HealthParams())
    assert (report.share, report.confident) == (0.0, False)
    with pytest.raises(InvalidIndicatorInput, match="expected"):
        coverage([], HealthParams(), expected=-1)
