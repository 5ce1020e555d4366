"""On-call schedules: who is on call when, across handoffs, time zones, DST and overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.oncall import handoff_at, now_and_next, shifts, who
from settings.oncall import OncallSchedule


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


LISBON = OncallSchedule.model_validate({
    "department": "water-authority", "rotation": ["ana", "ben", "chen"],
    "timezone": "Europe/Lisbon", "handoff": "08:00", "shift_days": 1, "start": "2026-12-07",
    "overrides": [{"person": "dan", "start": "2026-12-24T18:00:00+00:00",
                   "end": "2026-12-26T08:00:00+00:00"}],
})


def test_the_rotation_hands_over_at_the_local_handoff_time() -> None:
    assert who(LISBON, ts("2026-12-07T08:00:00+00:00")) == "ana"   # Lisbon is UTC in winter
    assert who(LISBON, ts("2026-12-08T07:59:59+00:00")) == "ana"
    assert who(LISBON, ts("2026-12-08T08:00:00+00:00")) == "ben"
    assert who(LISBON, ts("2026-12-10T09:00:00+00:00")) == "ana"   # round again
    assert who(LISBON, ts("2026-12-07T07:00:00+00:00")) == "chen"  # before start: backwards


def test_an_override_wins_while_it_lasts_and_the_rotation_resumes_after() -> None:
    assert who(LISBON, ts("2026-12-24T17:59:59+00:00")) != "dan"
    assert who(LISBON, ts("2026-12-25T03:00:00+00:00")) == "dan"
    current, following = now_and_next(LISBON, at=ts("2026-12-25T03:00:00+00:00"))
    assert (current.person, current.override) == ("dan", True)
    assert current.start == ts("2026-12-24T18:00:00+00:00")
    assert current.end == ts("2026-12-26T08:00:00+00:00")
    assert following is not None
    assert following.person == who(LISBON, ts("2026-12-26T08:00:00+00:00"))


def test_the_handoff_stays_at_local_time_across_daylight_saving() -> None:
    berlin = LISBON.model_copy(update={"timezone": "Europe/Berlin", "overrides": ()})
    zone = ZoneInfo("Europe/Berlin")
    for day in ("2027-03-27", "2027-03-28", "2027-03-29", "2027-10-30", "2027-10-31"):
        local = datetime.combine(date.fromisoformat(day), time(8), tzinfo=zone)
        before, after = who(berlin, local.timestamp() - 1), who(berlin, local.timestamp())
        assert before != after, day
    # clocks go forward on 2027-03-28 (shift 111 starts that day): 23 hours between handoffs
    assert datetime.fromtimestamp(handoff_at(berlin, 111), zone).date() == date(2027, 3, 28)
    assert handoff_at(berlin, 111) - handoff_at(berlin, 110) == 23 * 3600
    assert handoff_at(berlin, 112) - handoff_at(berlin, 111) == 24 * 3600


def test_now_and_next_for_a_single_person_has_no_next() -> None:
    alone = OncallSchedule(department="operations", rotation=("ana",))
    current, following = now_and_next(alone, at=ts("2026-12-07T12:00:00+00:00"))
    assert current.person == "ana" and following is None


people = st.lists(st.sampled_from(["ana", "ben", "chen", "dan", "eve"]), min_size=1, max_size=5)
zones = st.sampled_from(["UTC", "Europe/Lisbon", "Europe/Berlin", "America/New_York",
                         "Asia/Shanghai", "Australia/Sydney", "Asia/Kolkata"])
# whole milliseconds, as times are stamped: an override's datetime holds microseconds, and a
# float moment a fraction of one from its edge would test rounding, not the schedule
moments = st.integers(min_value=int(ts("2026-01-01T00:00:00+00:00")) * 1000,
                      max_value=int(ts("2028-12-31T00:00:00+00:00")) * 1000).map(
    lambda ms: ms / 1000)


@st.composite
def schedules(draw: st.DrawFn) -> OncallSchedule:
    overrides = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(moments)
        length = draw(st.floats(min_value=60, max_value=5 * 86400))
        overrides.append({"person": draw(st.sampled_from(["ovr", "ana"])),
                          "start": datetime.fromtimestamp(start, UTC),
                          "end": datetime.fromtimestamp(start + length, UTC)})
    return OncallSchedule.model_validate({
        "department": "d", "rotation": draw(people), "timezone": draw(zones),
        "handoff": time(draw(st.integers(5, 22)), draw(st.sampled_from([0, 15, 30]))),
        "shift_days": draw(st.integers(1, 7)),
        "start": date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 900))),
        "overrides": overrides,
    })


@settings(max_examples=150, deadline=None)
@given(schedules(), moments, st.floats(min_value=1, max_value=30 * 86400))
def test_shifts_cover_the_span_exactly_and_agree_with_who(
    schedule: OncallSchedule, since: float, span: float
) -> None:
    found = shifts(schedule, since=since, until=since + span)
    assert found[0].start == since and found[-1].end == since + span
    for before, after in zip(found, found[1:], strict=False):
        assert before.end == after.start            # no gap, no overlap
        assert before.person != after.person        # maximal
    for shift in found:
        assert shift.start < shift.end
        assert who(schedule, shift.start) == shift.person
        assert who(schedule, (shift.start + shift.end) / 2) == shift.person


@settings(max_examples=150, deadline=None)
@given(schedules(), moments)
def test_exactly_one_person_is_on_call_and_overrides_win(
    schedule: OncallSchedule, at: float
) -> None:
    person = who(schedule, at)
    covering = [o for o in schedule.overrides if o.start.timestamp() <= at < o.end.timestamp()]
    if covering:
        assert person == covering[-1].person
    else:
        assert person in schedule.rotation
    current, following = now_and_next(schedule, at=at)
    assert current.person == person and current.start <= at < current.end
    if following is not None:
        assert following.start == current.end and following.person != person


@settings(max_examples=100, deadline=None)
@given(schedules(), st.integers(-400, 400))
def test_rotation_shifts_start_at_the_local_handoff_and_take_turns(
    schedule: OncallSchedule, number: int
) -> None:
    plain = schedule.model_copy(update={"overrides": ()})
    start = handoff_at(plain, number)
    local = datetime.fromtimestamp(start, ZoneInfo(plain.timezone))
    assert (local.hour, local.minute) == (plain.handoff.hour, plain.handoff.minute)
    turn = [who(plain, handoff_at(plain, number + k)) for k in range(len(plain.rotation))]
    assert sorted(turn) == sorted(plain.rotation)   # each person once per round
