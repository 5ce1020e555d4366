"""How `cityheart bench` counts a step from the feed's vital records: a pipeline that falls
behind is reported with what it did turn into vital signs and how far behind it was, not as 0."""

from __future__ import annotations

from typing import Any

from lab.bench import count_step
from models.timefmt import iso

T = 1_795_669_200.0  # a window boundary (10 s windows)


def vital(start: float, count: int) -> dict[str, Any]:
    return {"type": "vital", "window_start": iso(start), "window_end": iso(start + 10),
            "count": count}


def test_a_step_the_flow_kept_up_with_is_counted_over_its_whole_windows() -> None:
    received = [(T + 12, vital(T, 1000)), (T + 22, vital(T + 10, 3000)),
                (T + 32, vital(T + 20, 500)),  # after the step: the flow has caught up
                (T + 5, {"type": "alert"})]
    count = count_step(received, T - 1, T + 20, publishing_from=T, measured_at=T + 33)
    assert (count.readings, count.accepted_per_s, count.behind_s) == (4000, 200.0, 0.0)


def test_a_flow_behind_the_step_still_reports_what_it_accepted_and_how_far_behind() -> None:
    # a 60 s step; 30 s after its end only the windows of its first 20 s had come out
    received = [(T + 80, vital(T, 2000)), (T + 89, vital(T + 10, 2500))]
    count = count_step(received, T - 1, T + 60, publishing_from=T, measured_at=T + 90)
    assert count.readings == 4500
    assert count.accepted_per_s == 50.0  # 4500 readings in the 90 s since the first publish
    assert count.behind_s == 70.0  # its last window ended at T + 20, counted at T + 90


def test_a_step_of_which_no_window_came_out_is_behind_by_all_of_it() -> None:
    count = count_step([(T + 50, vital(T - 10, 99))], T, T + 30,
                       publishing_from=T + 2, measured_at=T + 60)
    assert (count.readings, count.accepted_per_s, count.behind_s) == (0, 0.0, 58.0)


def test_a_step_is_caught_up_once_its_last_whole_window_came_out() -> None:
    # publishing stops with the step, so no window after it closes: its last whole window is
    # the sign that the flow kept up
    received = [(T + 12, vital(T, 1000)), (T + 22, vital(T + 10, 1000))]
    count = count_step(received, T - 1, T + 25, publishing_from=T, measured_at=T + 55)
    assert (count.readings, count.accepted_per_s, count.behind_s) == (2000, 100.0, 0.0)
