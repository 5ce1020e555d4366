"""Operators teach a series' detector: a false alarm stops recurring, real anomalies still fire.

The series: a daily cycle with noise sd 2, every 5 minutes for 12 days, with a recurring
harmless +20 bump (say, a sensor that reads high while it is cleaned) at irregular times.
"""

from __future__ import annotations

import math
import pickle
import random

import pytest

from models.anomaly import AnomalyDetector, Scored, UnknownFalseAlarm

STEP = 300.0
PER_DAY = 288
THRESHOLD = 0.5
# (day, hour) of the harmless bumps; the operator marks the first one
BUMPS = [int(day * PER_DAY + hour * 12) for day, hour in ((5, 13.0), (7, 3.2), (8, 17.7), (9, 9.3))]
DIP = 11 * PER_DAY + 10 * 12      # a real anomaly: day 11, 10:00, 25 below
SPIKE = 11 * PER_DAY + 16 * 12    # another: day 11, 16:00, 45 above (far beyond the bumps)


def series() -> list[tuple[float, float]]:
    rnd = random.Random(1)
    out = []
    for i in range(12 * PER_DAY):
        phase = (i % PER_DAY) / PER_DAY - 8.0 / 24.0
        value = 50.0 + 10.0 * math.cos(2.0 * math.pi * phase) + rnd.gauss(0.0, 2.0)
        value += 20.0 if i in BUMPS else 0.0
        value += -25.0 if i == DIP else (45.0 if i == SPIKE else 0.0)
        out.append((i * STEP, value))
    return out


def run(detector: AnomalyDetector, points, mark_at: int | None = None, **mark) -> list[Scored]:
    results = []
    for i, (ts, value) in enumerate(points):
        results.append(detector.update(ts, value))
        if i == mark_at:
            detector.mark_false_alarm(ts, value, **mark)
    return results


def test_a_marked_false_alarm_stops_recurring_while_real_anomalies_still_fire() -> None:
    points = series()
    unmarked = run(AnomalyDetector(), points)
    assert sum(unmarked[i].score >= THRESHOLD for i in BUMPS[1:]) >= 2   # it does recur

    detector = AnomalyDetector()
    marked = run(detector, points, mark_at=BUMPS[0])
    assert marked[BUMPS[0]].score >= THRESHOLD
    (alarm,) = detector.false_alarms
    assert alarm.at == points[BUMPS[0]][0] and alarm.value == points[BUMPS[0]][1]
    assert alarm.deviation > 5.0 and alarm.tolerance == pytest.approx(1.25 * alarm.deviation)
    assert abs(alarm.expected - 50.0 - 10.0 * math.cos(2 * math.pi * 5 / 24)) < 3.0
    for i in BUMPS[1:]:
        assert marked[i].score == 0.0 and marked[i].muted_by == alarm.id
    for i in (DIP, SPIKE):
        assert marked[i].score >= THRESHOLD and marked[i].muted_by is None
    loud = [i for i, r in enumerate(marked) if r.score >= THRESHOLD]
    assert loud == [BUMPS[0], DIP, SPIKE]


def test_undo_restores_the_original_behaviour_exactly() -> None:
    points = series()
    unmarked = run(AnomalyDetector(), points)
    detector = AnomalyDetector()
    before = run(detector, points[: BUMPS[1] + 1], mark_at=BUMPS[0])
    (alarm,) = detector.false_alarms
    assert before[BUMPS[1]].muted_by == alarm.id
    assert detector.undo_false_alarm(alarm.id) == alarm
    assert detector.false_alarms == ()
    after = run(detector, points[BUMPS[1] + 1 :])
    assert after == unmarked[BUMPS[1] + 1 :]         # muted points were still learnt from
    with pytest.raises(UnknownFalseAlarm, match="no false alarm with id 1"):
        detector.undo_false_alarm(alarm.id)


def test_a_false_alarm_can_be_limited_to_its_time_of_day_and_survives_a_snapshot() -> None:
    points = series()
    detector = AnomalyDetector()
    run(detector, points[: BUMPS[0] + 1], mark_at=BUMPS[0], within_s=2 * 3600.0)
    resumed = pickle.loads(pickle.dumps(detector))
    assert resumed.false_alarms == detector.false_alarms
    # a bump at 13:30 on day 6 is muted; the bump at 03:12 on day 7 is not
    late = [*points[BUMPS[0] + 1 : BUMPS[1] + 1]]
    at_1330 = 6 * PER_DAY + 13 * 12 + 6 - (BUMPS[0] + 1)
    late[at_1330] = (late[at_1330][0], late[at_1330][1] + 20.0)
    results = run(resumed, late)
    unmuted = run(AnomalyDetector(), points[: BUMPS[0] + 1] + late)[BUMPS[0] + 1 :]
    assert unmuted[at_1330].score > 0.4                 # it would have stood out
    assert results[at_1330].score == 0.0 and results[at_1330].muted_by is not None
    assert results[-1].muted_by is None and results[-1] == unmuted[-1]
    assert resumed.false_alarms[0].as_dict()["within_s"] == 7200.0
