"""The per-device token bucket (connectors/rate_limit.py) with an injected clock: no sleeping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from connectors.rate_limit import RateLimiter

T = 1000.0  # a monotonic clock's reading; only differences matter


def test_a_device_may_burst_then_is_held_to_its_rate() -> None:
    limiter = RateLimiter(rate_per_s=5.0, burst=10)
    first = [limiter.allow("pm-1", T) for _ in range(15)]
    assert first == [True] * 10 + [False] * 5
    assert limiter.allow("pm-1", T + 0.1) is False  # half a token refilled
    assert limiter.allow("pm-1", T + 0.2) is True  # a whole one
    assert limiter.allow("pm-1", T + 0.2) is False


def test_a_batch_takes_one_token_a_reading_or_none_at_all() -> None:
    limiter = RateLimiter(rate_per_s=10.0, burst=100)
    assert limiter.allow("source", T, cost=60) is True
    assert limiter.allow("source", T, cost=60) is False  # 40 left: the batch takes none
    assert limiter.allow("source", T, cost=40) is True
    assert limiter.allow("source", T + 2.0, cost=20) is True  # 2 s refilled 20
    assert limiter.allow("fresh", T, cost=101) is False  # over the burst: never
    assert limiter.throttled == {"source": 1, "fresh": 1}


def test_a_flood_gets_the_burst_plus_the_rate_and_no_more() -> None:
    limiter = RateLimiter(rate_per_s=5.0, burst=100)
    # 1,000 messages a second for 4 s
    allowed = sum(limiter.allow("flood", T + i / 1000) for i in range(4000))
    assert allowed == pytest.approx(100 + 5 * 4, abs=1)
    assert limiter.throttled_total == 4000 - allowed


def test_one_flooding_device_does_not_throttle_another() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=3)
    for i in range(1000):
        limiter.allow("flood", T + i / 1000)
    assert all(limiter.allow("calm", T + i) for i in range(10))  # one a second, at its rate
    # the burst of 3, then under 1 s passed: no whole token; the calm device never appears
    assert limiter.take_throttled() == {"flood": 997}


def test_throttled_counts_are_reported_once_then_reset() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    for _ in range(4):
        limiter.allow("a", T)
    limiter.allow("b", T)
    limiter.allow("b", T)
    assert limiter.take_throttled() == {"a": 3, "b": 1}
    assert limiter.take_throttled() == {}
    assert limiter.throttled_total == 4


def test_an_idle_bucket_refills_to_the_burst_and_no_further() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=4)
    for _ in range(4):
        assert limiter.allow("pm-1", T)
    assert not limiter.allow("pm-1", T)
    later = T + 3600.0  # an hour idle: a full bucket, not 7,200 tokens
    assert [limiter.allow("pm-1", later) for _ in range(5)] == [True] * 4 + [False]


def test_a_clock_that_steps_back_refills_nothing() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=2)
    assert limiter.allow("pm-1", T) and limiter.allow("pm-1", T)
    assert not limiter.allow("pm-1", T - 50.0)
    assert not limiter.allow("pm-1", T)  # back where it was: still nothing refilled
    assert limiter.allow("pm-1", T + 1.0)


def test_idle_devices_are_forgotten_so_memory_stays_bounded() -> None:
    limiter = RateLimiter(rate_per_s=10.0, burst=10)  # full again after 1 s idle
    for i in range(5000):
        limiter.allow(f"dev-{i}", T + i * 0.01)  # each device speaks once, 100 new a second
    # only devices heard within the last second (~100), plus up to one sweep's growth, remain
    assert len(limiter) < 1200


def test_a_topic_spray_cannot_grow_memory_past_max_keys() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=10, max_keys=50)
    for i in range(10_000):
        assert limiter.allow(f"spray-{i}", T)  # all at one instant: none is idle
        assert len(limiter) <= 50


def test_forgetting_an_idle_bucket_changes_no_decision() -> None:
    remembering = RateLimiter(rate_per_s=1.0, burst=2, max_keys=10**9)
    forgetting = RateLimiter(rate_per_s=1.0, burst=2, max_keys=4)
    times = [T + 0.3 * i for i in range(400)]
    for i, now in enumerate(times):
        key = f"dev-{i % 7}"  # seven devices, each back every 2.1 s: idle past the refill
        assert remembering.allow(key, now) == forgetting.allow(key, now)


@pytest.mark.parametrize(
    ("rate", "burst", "max_keys", "words"),
    [(0.0, 1, 10, "rate_per_s 0.0"), (float("inf"), 1, 10, "rate_per_s inf"),
     (1.0, 0, 10, "burst 0"), (1.0, 1, 1, "max_keys 1")],
)
def test_bad_limits_are_refused_by_name(rate: float, burst: int, max_keys: int,
                                        words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RateLimiter(rate, burst, max_keys=max_keys)


@hsettings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.1, 100.0),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=200),
)
def test_allowed_never_exceeds_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    limiter = RateLimiter(rate, burst)
    now, allowed = T, 0
    for gap in gaps:
        now += gap
        allowed += limiter.allow("pm-1", now)
    assert allowed <= burst + rate * (now - T) + 1e-6
    assert allowed + limiter.throttled_total == len(gaps)
