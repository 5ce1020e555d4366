"""Clock skew: a device whose clock runs ahead cannot make everyone else's readings late.

The city flow on bytewax's TestingSource/TestingSink with an injected wall clock (no Kafka),
as in tests/flows/test_flow.py. The windows' watermark follows event time; a device stamped ahead of
the flow's clock would drag it forward for its whole district and kind and every honest
reading after it would count as late. So:

- stamped more than ``flow.max_future_s`` ahead (hours): dead-lettered, reason
  ``future_timestamp``, with how far ahead in the detail (the bridge does the same, see
  tests/connectors/test_bridge.py);
- stamped ahead by less than that: the reading is kept in the window of its own time stamp,
  but it moves the watermark no further than the flow's clock plus ``flow.max_clock_lead_s``.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from connectors.kafka import KafkaRecord
from models.readings import Reading
from models.windows import KeyWindows, Window, preaggregate
from settings.config import Settings
from tests.support.flow import batch_record, run_flow

pytestmark = pytest.mark.timeout(60)

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z; windows are 10 s, the late allowance 1 s
LATENCY = 0.3  # from a device's stamp to the flow


class Clock:
    """The flow's wall clock, moved forward by the source as each reading arrives."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def msg(ts: float, device: str, value: float = 20.0) -> KafkaRecord:
    """A `readings` record as the bridge writes it (harbour, pm25)."""
    return batch_record([Reading(device, "harbour", "pm25", value, "ug/m3", ts)])


def city_minute(ahead: float) -> list[tuple[float, KafkaRecord]]:
    """(arrival time, record): two honest devices, one reading a second each over [T, T+60),
    and a device whose clock is ``ahead`` seconds fast, every ten seconds from T+5."""
    items = []
    for second in range(60):
        for device, offset in (("honest-a", 0.0), ("honest-b", 0.5)):
            ts = T + second + offset
            items.append((ts + LATENCY, msg(ts, device)))
        if second % 10 == 5:
            arrival = T + second + LATENCY
            items.append((arrival, msg(arrival + ahead, "fast-1", value=99.0)))
    return items


def run(settings: Settings, items: list[tuple[float, KafkaRecord]]) -> tuple[list, list]:
    clock = Clock(T)

    def arriving() -> Iterator[KafkaRecord]:
        for arrival, record in items:
            clock.now = max(clock.now, arrival)
            yield record

    out = run_flow(settings, arriving(), clock=clock)
    windows = [v for v, key in zip(out.vitals, out.vital_keys, strict=True)
               if key == b"harbour/pm25"]
    return windows, out.dead


def honest_windows(windows: list[dict]) -> list[dict]:
    return [w for w in windows if w["window_start"] < "2026-11-26T05:01:00"]


def summary(windows: list[dict]) -> list[tuple]:
    return [(w["window_start"][11:19], w["count"], w["devices"], w["late"]) for w in windows]


ON_TIME = [(f"05:00:{s:02d}", 20, 2, 0) for s in range(0, 60, 10)]


def test_a_device_hours_ahead_is_dead_lettered_and_the_others_are_not_late(
    base_settings: Settings,
) -> None:
    windows, dead = run(base_settings, city_minute(ahead=2 * 3600))

    assert summary(windows) == ON_TIME, "every honest window complete, nothing late"
    assert len(dead) == 6
    for record in dead:
        headers = dict(record.headers)
        assert headers["reason"] == b"future_timestamp"
        assert b"ts is 7200 s ahead of the clock (at most 300 s)" in headers["detail"]
        assert orjson.loads(record.value)["device_id"] == "fast-1", "the original bytes"


def test_a_device_minutes_ahead_cannot_make_the_others_late(base_settings: Settings) -> None:
    ahead = 240.0  # within flow.max_future_s (300 s): accepted, but its clock is wrong
    assert ahead < base_settings.flow.max_future_s
    windows, dead = run(base_settings, city_minute(ahead))

    assert dead == []
    got = honest_windows(windows)
    assert summary(got) == ON_TIME, "the honest readings are not late"
    future = [w for w in windows if w not in got]
    assert sum(w["count"] for w in future) == 6, "its readings stay in their own windows"
    assert {(w["devices"], w["mean"], w["late"]) for w in future} == {(1, 99.0, 0)}


def test_without_the_lead_limit_that_device_would_make_the_others_late(
    base_settings: Settings,
) -> None:
    unlimited = base_settings.flow.model_copy(update={"max_clock_lead_s": 1e9})
    settings = base_settings.model_copy(update={"flow": unlimited})
    windows, _ = run(settings, city_minute(ahead=240.0))
    late = sum(w["late"] for w in windows)
    assert late > 60, "why the limit exists: the watermark followed the fast clock"


def part(ts: float, device: str = "a") -> Window:
    (window,) = preaggregate([Reading(device, "harbour", "pm25", 1.0, "ug/m3", ts)], 10.0)
    return window


@pytest.mark.parametrize("lead", [0.0, 2.0])
def test_the_watermark_stops_at_the_clock_plus_the_lead(lead: float) -> None:
    windows = KeyWindows(10.0, 1.0, max_lead=lead)
    now = T + 30.0
    assert windows.merge(part(T + 3600, "fast-1"), now) is not None, "the reading is kept"
    assert windows.watermark(now) == now + lead - 1.0
    assert windows.watermark(now + 5) == now + 5 + lead - 1.0, "then it moves with the clock"


def test_after_a_fast_clock_an_honest_reading_still_gets_the_whole_allowance() -> None:
    windows = KeyWindows(10.0, 1.0, max_lead=0.0)
    now = T + 30.0
    assert windows.merge(part(T + 3600, "fast-1"), now) is not None
    # stamped 0.5 s before the end of [T+20, T+30), 0.9 s in transit: within the allowance
    assert windows.merge(part(now - 0.5), now + 0.4) is not None
    assert windows.close_due(now + 0.4) == []
    assert [w.start for w in windows.close_due(now + 1.0)] == [T + 20]


def test_without_a_lead_limit_event_time_alone_moves_the_watermark() -> None:
    windows = KeyWindows(10.0, 1.0)  # the default: replays and tests whose clock stands still
    windows.merge(part(T + 500), T)
    assert windows.watermark(T) == T + 499
