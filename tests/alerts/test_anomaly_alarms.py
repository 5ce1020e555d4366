"""When surprise alerts (models.anomaly.alarms): sustained surprise, quiet spells, habits, rate.

Series as in tests/models/test_anomaly.py: a daily cycle plus Gaussian noise, one reading every 5
minutes; a "routine" is a spike at 02:00 UTC every day from day 4 on, as a nightly job makes.
"""

from __future__ import annotations

import math
import pickle
import random

import pytest

from models.anomaly import AnomalyDetector, DetectorParams
from models.anomaly.alarms import DAY, AlertRate, DailyHabits, QuietSpell, SustainedSurprise
from tests.models.test_anomaly import PER_DAY, START, STEP, THRESHOLD, Series, run, seasonal

NIGHTLY = 2 * 12             # 02:00 UTC, in 5-minute steps


def nightly_spikes(series: Series, size: float, first_day: int = 4) -> Series:
    out = list(series)
    for day in range(first_day, len(series) // PER_DAY):
        i = day * PER_DAY + NIGHTLY
        out[i] = (out[i][0], out[i][1] + size)
    return out


def nights(series: Series) -> list[float]:
    """The score of the routine's moment on each night from day 4 on."""
    results = run(series)
    return [results[day * PER_DAY + NIGHTLY].score for day in range(4, len(series) // PER_DAY)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_nightly_routine_alerts_on_its_first_nights_then_is_a_habit(seed: int) -> None:
    scores = nights(nightly_spikes(seasonal(seed, days=12), 25.0))
    assert scores[0] >= THRESHOLD                  # the first night is news
    later = scores[2:]                             # from the third night it is a routine:
    assert sum(score > 0.0 for score in later) <= 1   # at most one new record still alerts


def test_a_larger_excursion_at_the_habitual_time_still_alerts() -> None:
    series = nightly_spikes(seasonal(2, days=12), 25.0)
    bigger = 10 * PER_DAY + NIGHTLY
    series[bigger] = (series[bigger][0], series[bigger][1] + 40.0)
    results = run(series)
    assert results[bigger].score >= THRESHOLD


def test_a_spike_at_another_time_of_day_still_alerts_amid_a_routine() -> None:
    series = nightly_spikes(seasonal(2, days=12), 25.0)
    other = 10 * PER_DAY + NIGHTLY + 9 * 12     # 11:00 UTC, day 10
    series[other] = (series[other][0], series[other][1] + 25.0)
    results = run(series)
    assert results[10 * PER_DAY + NIGHTLY].score == 0.0     # the routine itself: dropped
    assert results[other].score > 0.3    # the same size elsewhere: alerts (less, as spikes of
    # this size are no longer rare in this series)


def test_a_one_off_anomaly_is_not_mistaken_for_a_habit() -> None:
    base = seasonal(1)
    once = list(base)
    once[START] = (once[START][0], once[START][1] + 20.0)
    assert run(once)[START].score >= THRESHOLD
    again = list(once)
    again[START + PER_DAY] = (again[START + PER_DAY][0], again[START + PER_DAY][1] + 20.0)
    assert run(again)[START + PER_DAY].score >= THRESHOLD   # twice is not yet a routine


def test_habits_need_two_earlier_days_at_the_same_time_and_side() -> None:
    habits = DailyHabits()
    at = 3 * 3600.0
    assert habits.gate(at, 5.0, above=True, start=3.0) == 5.0
    assert habits.gate(at + DAY + 600.0, 5.0, above=True, start=3.0) == 5.0
    assert habits.gate(at + 2 * DAY + 600.0, 5.0, above=False, start=3.0) == 5.0  # other side
    assert habits.gate(at + 3 * DAY, 5.0, above=True, start=3.0) == 0.0           # routine
    assert habits.gate(at + 4 * DAY + 2 * 3600.0, 5.0, above=True, start=3.0) == 5.0  # 2 h off
    assert habits.gate(at + 5 * DAY, 7.0, above=True, start=3.0) == 7.0           # 40 % larger
    assert habits.gate(at + 5 * DAY + 300.0, 2.0, above=True, start=3.0) == 2.0   # below start
    assert len(habits.alerts) <= 16
    assert all(ts >= at + 5 * DAY - 7 * DAY for ts, _, _ in habits.alerts)


def test_a_quiet_spell_holds_echoes_on_the_same_side_only() -> None:
    quiet = QuietSpell(points=3)
    assert quiet.gate(4.0, above=True, start=3.0) == 4.0
    assert quiet.gate(5.0, above=True, start=3.0) == 0.0      # an echo, not 30 % larger
    assert quiet.gate(4.0, above=False, start=3.0) == 4.0     # the other way: a new event
    assert quiet.gate(5.0, above=False, start=3.0) == 0.0      # its echo
    for _ in range(3):
        quiet.gate(0.0, above=True, start=3.0)
    assert quiet.gate(4.0, above=False, start=3.0) == 4.0     # the spell is over


def test_sustained_surprise_alerts_once_when_it_adds_up() -> None:
    sustained = SustainedSurprise(allowance=1.0, level=20.0, cap=7.0)
    fired = [sustained.observe(3.0) for _ in range(15)]     # 2 nats a point beyond the allowance
    assert fired == [False] * 9 + [True] + [False] * 5      # the 10th point reaches 20, once
    for _ in range(30):
        assert not sustained.observe(0.0)                   # drains at 1 nat a point
    assert sustained.total == 0.0
    assert [sustained.observe(3.0) for _ in range(10)][-1]  # a new episode alerts again


def test_one_spike_does_not_fill_the_sum_and_an_episode_that_alerted_stays_quiet() -> None:
    sustained = SustainedSurprise(allowance=1.0, level=20.0, cap=7.0)
    assert not sustained.observe(500.0)                     # counts as 7: 6 after the allowance
    assert sustained.total == 6.0
    sustained.alerted()                                      # the spike itself alerted
    assert not any(sustained.observe(3.0) for _ in range(20))   # its long echo adds no alert
    idle = SustainedSurprise()
    idle.alerted()                                           # no episode open: nothing to mark
    assert [idle.observe(3.0) for _ in range(10)][-1]


def test_the_alert_rate_passes_two_alerts_whole_then_discounts_the_crowd() -> None:
    rate = AlertRate(memory=1000, weight=2.0)
    assert rate.gate(2.0, start=3.0) == 2.0                 # below start: passes, not counted
    assert rate.count == 0.0
    assert [rate.gate(5.0, start=3.0) for _ in range(2)] == [5.0, 5.0]
    third = rate.gate(5.0, start=3.0)                       # two alerts before it
    assert third == pytest.approx(5.0 - 2.0 * math.log(1.0 + rate.keep))
    assert rate.gate(1.0, start=3.0) == 0.0                 # never below 0
    for _ in range(5000):                                   # ~5 memories of quiet
        rate.gate(0.0, start=3.0)
    assert rate.gate(5.0, start=3.0) == 5.0                 # forgotten: whole again


def bursty(seed: int) -> tuple[Series, list[int]]:
    """The seasonal series with a burst of 5-7 noise sd every 100-200 points from day 1."""
    rnd = random.Random(seed + 100)
    series = seasonal(seed)
    bursts = list(range(PER_DAY, START - 50, 150))
    bursts = [i + rnd.randint(-50, 50) for i in bursts]
    for i in bursts:
        series[i] = (series[i][0], series[i][1] + rnd.uniform(10.0, 14.0))
    series[START] = (series[START][0], series[START][1] + 40.0)     # a real anomaly
    return series, bursts


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_series_that_keeps_bursting_is_discounted_and_a_real_anomaly_still_alerts(seed) -> None:
    series, bursts = bursty(seed)
    counted = run(series)
    uncounted = run(series, AnomalyDetector(DetectorParams(alert_discount=0.0)))
    first = bursts[:2]                                      # the first bursts are news
    assert [counted[i].score for i in first] == [uncounted[i].score for i in first]
    later = bursts[4:]
    later_counted = sum(counted[i].score for i in later)
    assert later_counted < 0.8 * sum(uncounted[i].score for i in later)   # a fifth off at least
    assert all(counted[i].score <= uncounted[i].score for i in bursts)
    assert counted[START].score >= THRESHOLD                # far stronger than the bursts
    between = [i for i in range(len(series)) if i not in bursts and i != START]
    assert max(counted[i].score for i in between) < 0.3     # echoes of a burst are no onset


def test_gates_survive_a_snapshot_mid_habit() -> None:
    series = nightly_spikes(seasonal(4, days=12), 25.0)
    cut = 6 * PER_DAY + NIGHTLY + 1
    detector = AnomalyDetector()
    head = [detector.update(ts, x).score for ts, x in series[:cut]]
    resumed = pickle.loads(pickle.dumps(detector))
    tail = [resumed.update(ts, x).score for ts, x in series[cut:]]
    assert head + tail == [r.score for r in run(series)]
    assert STEP * PER_DAY == DAY
