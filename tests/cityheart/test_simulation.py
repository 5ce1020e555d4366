"""The simulated city (cityheart.simulation): pure, seeded, no broker.

What users rely on: the fleet covers every district and kind; values follow the city's local
day with realistic noise; a seed reproduces a run; scenario events do exactly what config.yaml
says to exactly the devices it names; the schedule gives every device its share of the rate;
every payload is one the bridge accepts, on the topic it expects.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cityheart.simulation import (
    NOISE_PHI,
    Gateways,
    Schedule,
    Simulator,
    build_fleet,
    pair_order,
)
from models.errors import ConfigError
from models.readings import ReadingParser
from models.timefmt import iso
from settings.config import ScenarioEvent, Settings

BERLIN = ZoneInfo("Europe/Berlin")
WINTER_DAY = datetime(2026, 1, 15, tzinfo=UTC).timestamp()
SUMMER_DAY = datetime(2026, 7, 15, tzinfo=UTC).timestamp()


def quiet_kinds(settings: Settings, **simulation: float) -> dict:
    """The city's kinds with their simulation parameters replaced (e.g. noise_sd=0)."""
    return {
        kind_id: kind.model_copy(
            update={"simulation": kind.simulation.model_copy(update=simulation)}
        )
        for kind_id, kind in settings.kinds.items()
    }


def simulator(settings: Settings, devices: int = 216, seed: int = 7,
              events: list[ScenarioEvent] | None = None, kinds: dict | None = None) -> Simulator:
    kinds = kinds or settings.kinds
    fleet = build_fleet(settings.district_ids(), kinds, devices, topic_prefix="city", seed=seed)
    return Simulator(fleet, kinds, timezone=BERLIN, events=events or [], seed=seed)


def index_of(sim: Simulator, district: str, kind: str) -> list[int]:
    return [d.index for d in sim.fleet if d.district == district and d.kind == kind]


# -- the fleet ---------------------------------------------------------------------------------


def test_fleet_covers_every_district_and_kind(base_settings: Settings) -> None:
    districts, kinds = base_settings.district_ids(), list(base_settings.kinds)
    fleet = build_fleet(districts, base_settings.kinds, 216, topic_prefix="city", seed=7)
    pairs = Counter((d.district, d.kind) for d in fleet)
    assert set(pairs) == {(d, k) for d in districts for k in kinds}
    assert min(pairs.values()) == 216 // (len(districts) * len(kinds))  # spread evenly
    assert len({d.device_id for d in fleet}) == 216
    for device in fleet:
        assert re.fullmatch(rf"{device.kind}-{device.district}-\d{{3}}", device.device_id)
        assert device.topic == f"city/{device.district}/{device.kind}/{device.device_id}"
    assert fleet[0].device_id == "pm25-old-town-001"


def test_small_fleets_still_reach_every_district_and_kind(base_settings: Settings) -> None:
    districts, kinds = base_settings.district_ids(), list(base_settings.kinds)
    enough = max(len(districts), len(kinds))
    fleet = build_fleet(districts, base_settings.kinds, enough, topic_prefix="city", seed=7)
    assert {d.district for d in fleet} == set(districts)
    assert {d.kind for d in fleet} == set(kinds)
    one_each = build_fleet(districts, base_settings.kinds, len(districts) * len(kinds),
                           topic_prefix="city", seed=7)
    assert len({(d.district, d.kind) for d in one_each}) == len(districts) * len(kinds)


@pytest.mark.parametrize(("d_count", "k_count"), [(8, 9), (9, 8), (3, 3), (1, 5), (5, 1)])
def test_pair_order_is_every_pair_once(d_count: int, k_count: int) -> None:
    districts = [f"d{i}" for i in range(d_count)]
    kinds = [f"k{i}" for i in range(k_count)]
    pairs = pair_order(districts, kinds)
    assert sorted(pairs) == sorted((d, k) for d in districts for k in kinds)


def test_device_ids_are_stable(base_settings: Settings) -> None:
    args = (base_settings.district_ids(), base_settings.kinds)
    small = build_fleet(*args, 100, topic_prefix="city", seed=7)
    again = build_fleet(*args, 100, topic_prefix="city", seed=7)
    large = build_fleet(*args, 300, topic_prefix="city", seed=7)
    assert small == again
    assert large[:100] == small  # adding devices never renames existing ones


# -- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "utc_peak_hour"), [(WINTER_DAY, 7), (SUMMER_DAY, 6)])
def test_daily_cycle_peaks_at_peak_hour_local_time(
    base_settings: Settings, day: float, utc_peak_hour: int
) -> None:
    # pm25 peaks at 08:00 in Berlin: 07:00 UTC in winter (CET), 06:00 UTC in summer (CEST)
    sim = simulator(base_settings, devices=1, kinds=quiet_kinds(base_settings, noise_sd=0.0))
    by_hour = {h: sim.value(0, day + h * 3600, 0.0) for h in range(24)}
    assert max(by_hour, key=by_hour.__getitem__) == utc_peak_hour
    pm25 = base_settings.kinds["pm25"].simulation
    assert by_hour[utc_peak_hour] == pytest.approx(pm25.base + pm25.amplitude)
    assert by_hour[(utc_peak_hour + 12) % 24] == pytest.approx(pm25.base - pm25.amplitude)


def test_local_hour_follows_daylight_saving(base_settings: Settings) -> None:
    sim = simulator(base_settings, devices=1)
    switch = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()  # 02:00 CET -> 03:00 CEST
    assert sim.local_hour(switch - 60) == pytest.approx(1 + 59 / 60)
    assert sim.local_hour(switch) == pytest.approx(3.0)


def test_noise_has_the_configured_spread_and_some_memory(base_settings: Settings) -> None:
    sim = simulator(base_settings, devices=1, seed=11)
    pm25 = base_settings.kinds["pm25"].simulation
    values = [sim.value(0, WINTER_DAY, 0.0) for _ in range(20000)]
    assert statistics.stdev(values) == pytest.approx(pm25.noise_sd, rel=0.08)
    level = pm25.base + pm25.amplitude * math.cos(2 * math.pi * (1 - pm25.peak_hour) / 24)
    assert statistics.mean(values) == pytest.approx(level + sim.fleet[0].offset, abs=0.3)
    lag1 = statistics.correlation(values[:-1], values[1:])
    assert lag1 == pytest.approx(NOISE_PHI, abs=0.05)


def test_device_offsets_differ_like_real_sensors(base_settings: Settings) -> None:
    fleet = build_fleet(["d"], {"pm25": base_settings.kinds["pm25"]}, 3000,
                        topic_prefix="city", seed=3)
    offsets = [d.offset for d in fleet]
    assert statistics.stdev(offsets) == pytest.approx(
        base_settings.kinds["pm25"].simulation.noise_sd, rel=0.1
    )


def test_values_stay_in_range(base_settings: Settings) -> None:
    kinds = quiet_kinds(base_settings, noise_sd=400.0)
    sim = simulator(base_settings, kinds=kinds)
    for step in range(20):
        for device in sim.fleet:
            value = sim.value(device.index, WINTER_DAY + step, 0.0)
            low, high = kinds[device.kind].range
            assert low <= value <= high


def test_same_seed_same_values(base_settings: Settings) -> None:
    def run(seed: int) -> list[bytes]:
        sim = simulator(base_settings, seed=seed)
        return [sim.reading(k % 216, WINTER_DAY + k, k)[1] for k in range(1000)]

    assert run(7) == run(7)
    assert run(7) != run(8)


# -- scenario events ---------------------------------------------------------------------------


def test_episode_raises_only_its_district_and_kind_and_ramps(base_settings: Settings) -> None:
    episode = ScenarioEvent(type="episode", district="industrial-east", kind="pm25",
                            start_s=10, ramp_s=10, duration_s=100, factor=14)
    sim = simulator(base_settings, events=[episode])
    calm = simulator(base_settings)
    hit = set(index_of(sim, "industrial-east", "pm25"))
    assert hit and sim.effects[0].devices == tuple(sorted(hit))
    for elapsed, expected in [(5, 1.0), (15, 7.5), (20, 14.0), (60, 14.0), (115, 1.0)]:
        for device in sim.fleet:
            value = sim.value(device.index, WINTER_DAY, elapsed)
            baseline = calm.value(device.index, WINTER_DAY, elapsed)
            factor = expected if device.index in hit else 1.0
            assert value == pytest.approx(baseline * factor, rel=1e-3, abs=1e-3), (
                device.device_id, elapsed
            )


def test_stuck_device_repeats_one_value(base_settings: Settings) -> None:
    stuck = ScenarioEvent(type="stuck", district="old-town", kind="noise", start_s=30,
                          duration_s=60)
    sim = simulator(base_settings, events=[stuck])
    calm = simulator(base_settings)
    target = index_of(sim, "old-town", "noise")[0]
    series: dict[int, list[float]] = {d.index: [] for d in sim.fleet}
    calm_series: dict[int, list[float]] = {d.index: [] for d in sim.fleet}
    for elapsed in range(0, 120, 2):
        for device in sim.fleet:
            series[device.index].append(sim.value(device.index, WINTER_DAY + elapsed, elapsed))
            calm_series[device.index].append(
                calm.value(device.index, WINTER_DAY + elapsed, elapsed)
            )
    during = series[target][15:45]  # elapsed 30 .. 88
    assert len(set(during)) == 1
    assert len(set(series[target][:15])) > 1 and len(set(series[target][45:])) > 1
    assert series[target][45:] == calm_series[target][45:]  # recovers to the live value
    others = [i for i in series if i != target]
    assert all(series[i] == calm_series[i] for i in others)


def test_silent_device_publishes_nothing(base_settings: Settings) -> None:
    silent = ScenarioEvent(type="silent", district="riverside", kind="water_level",
                           start_s=30, duration_s=30)
    sim = simulator(base_settings, events=[silent])
    target = index_of(sim, "riverside", "water_level")[0]
    sibling = index_of(sim, "riverside", "water_level")[1]
    assert sim.reading(target, WINTER_DAY, 10) is not None
    assert sim.reading(target, WINTER_DAY, 30) is None
    assert sim.reading(target, WINTER_DAY, 59) is None
    assert sim.reading(sibling, WINTER_DAY, 45) is not None
    _, payload = sim.reading(target, WINTER_DAY, 60)
    assert b'"seq":1' in payload  # seq counts what the device sent


def test_events_without_a_device_are_reported(base_settings: Settings) -> None:
    sim = Simulator.from_settings(base_settings, devices=1, seed=7, scenario="demo")
    assert len(sim.unmatched) == len(base_settings.simulator.scenarios["demo"])


def test_unknown_scenario_is_a_config_error(base_settings: Settings) -> None:
    with pytest.raises(ConfigError) as caught:
        Simulator.from_settings(base_settings, devices=10, seed=7, scenario="flood")
    assert caught.value.key == "simulator.scenario"
    assert "'flood'" in str(caught.value) and "pollution-episode" in str(caught.value)


# -- schedule ----------------------------------------------------------------------------------


def test_schedule_gives_each_device_its_share_of_the_rate() -> None:
    schedule = Schedule(216, 100.0)
    seconds = 60.0
    due = schedule.due(seconds)
    assert due == pytest.approx(100 * seconds, abs=1)
    per_device = Counter(schedule.device(slot) for slot in range(due))
    assert set(per_device) == set(range(216))
    expected = 100 * seconds / 216
    assert all(abs(n - expected) <= 1 for n in per_device.values())


def test_schedule_does_not_drift() -> None:
    schedule = Schedule(7, 333.0)
    assert schedule.due(-1) == 0
    assert schedule.due(0) == 1
    assert schedule.due(3600.0) == 333 * 3600 + 1
    for slot in (0, 1, 999, 10**6):
        assert schedule.due(schedule.time_of(slot) + 1e-6) == slot + 1


# -- payloads ----------------------------------------------------------------------------------


def test_payloads_parse_and_topics_match(base_settings: Settings) -> None:
    sim = Simulator.from_settings(base_settings, devices=216, seed=7, scenario="demo")
    parser = ReadingParser(base_settings.kinds, base_settings.district_ids(),
                           topic_prefix=base_settings.mqtt.topic_prefix)
    prefix = base_settings.mqtt.topic_prefix
    now = SUMMER_DAY + 0.125
    for round_ in range(3):
        for device in sim.fleet:
            item = sim.reading(device.index, now + round_, 40.0)
            if item is None:
                continue
            topic, payload = item
            reading = parser.parse(payload, topic, now + round_)
            assert topic == f"{prefix}/{device.district}/{device.kind}/{device.device_id}"
            assert (reading.device_id, reading.district, reading.kind) == (
                device.device_id, device.district, device.kind
            )
            assert reading.unit == device.unit
            assert reading.seq == round_
            assert iso(reading.ts) == iso(now + round_)


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    devices=st.integers(1, 300),
    now=st.floats(0, 4e9),
    elapsed=st.floats(0, 1e6),
    factor=st.floats(0, 1e4),
)
def test_every_payload_parses(base_settings: Settings, seed: int, devices: int, now: float,
                              elapsed: float, factor: float) -> None:
    events = [ScenarioEvent(type="episode", district=d, kind=k, factor=factor)
              for d in base_settings.district_ids()[:2] for k in base_settings.kinds]
    sim = simulator(base_settings, devices=devices, seed=seed, events=events)
    parser = ReadingParser(base_settings.kinds, base_settings.district_ids(),
                           topic_prefix="city")
    for device in sim.fleet:
        topic, payload = sim.reading(device.index, now, elapsed)
        assert parser.parse(payload, topic, now).device_id == device.device_id


# -- gateways ----------------------------------------------------------------------------------


def test_gateway_packs_parse_back_to_the_readings_drawn(base_settings: Settings) -> None:
    from models.senml import PackParser

    sim = simulator(base_settings, devices=30)
    gateways = Gateways(3, topic_prefix="city", pack_size=4, max_wait_s=60)
    now = SUMMER_DAY
    drawn: dict[str, list[tuple[str, float, float]]] = {}
    packs = []
    for step in range(20):
        index = step % 30
        value = sim.value(index, now + step * 0.25, step * 0.25)
        device = sim.fleet[index]
        topic = f"city/gateway/gw-{index % 3:03d}"
        drawn.setdefault(topic, []).append((device.device_id, value, now + step * 0.25))
        full = gateways.add(device, value, now + step * 0.25, waited_since=step * 0.25)
        packs += [full] if full else []
    assert [size for _, _, size in packs] == [4, 4, 4]  # gw-000 and gw-001 filled first
    # the packs still gathering began at steps 12, 13 and 14 (waited_since 3.0, 3.25, 3.5)
    assert gateways.due(62.9) == []
    assert [topic for topic, _, _ in gateways.due(63.1)] == ["city/gateway/gw-000"]
    assert [size for _, _, size in gateways.drain()] == [3, 2]
    assert gateways.drain() == []
    parser = PackParser(ReadingParser(base_settings.kinds, base_settings.district_ids()))
    for topic, payload, size in packs:
        result = parser.parse(payload, now + 10)
        assert result.refused == [] and len(result.readings) == size
        got = [(r.device_id, r.value, r.ts) for _, r in result.readings]
        expected, drawn[topic] = drawn[topic][:size], drawn[topic][size:]
        assert got == [(d, pytest.approx(v), pytest.approx(t)) for d, v, t in expected]


def test_a_gateway_pack_waits_at_most_max_wait(base_settings: Settings) -> None:
    sim = simulator(base_settings, devices=4)
    gateways = Gateways(2, topic_prefix="p", pack_size=50, max_wait_s=0.1)
    assert gateways.add(sim.fleet[0], 1.0, SUMMER_DAY, waited_since=10.0) is None
    assert gateways.add(sim.fleet[2], 2.0, SUMMER_DAY, waited_since=10.05) is None
    assert gateways.due(10.09) == []
    ((topic, _, size),) = gateways.due(10.11)
    assert (topic, size) == ("p/gateway/gw-000", 2)
# -- where the devices stand -------------------------------------------------------------------


def test_each_device_stands_inside_its_own_district_and_says_so(base_settings: Settings) -> None:
    from models.geography import Locator
    from models.placement import Placement
    from settings.loader import load
    from tests.support import SHIPPED

    for settings in (base_settings, load(SHIPPED, env={})):  # Riverton, and San Francisco
        sim = Simulator.from_settings(settings, devices=216, seed=7, scenario="calm")
        locator = Locator(settings.geography.districts)
        found = locator.locate_many([d.lat for d in sim.fleet], [d.lon for d in sim.fleet])
        assert found == [d.district for d in sim.fleet]
        assert len({(d.lat, d.lon) for d in sim.fleet}) == len(sim.fleet), "no two share a spot"
        # the flow places each payload in the district its topic names: no mismatch
        parser = ReadingParser(settings.kinds, settings.district_ids(),
                               placement=Placement(locator), on_mismatch=pytest.fail)
        for device in sim.fleet[:50]:
            topic, payload = sim.reading(device.index, WINTER_DAY, 0.0)
            reading = parser.parse(payload, topic.replace(device.district, "-", 1), WINTER_DAY)
            assert (reading.district, reading.lat, reading.lon) == (
                device.district, device.lat, device.lon)


def test_positions_are_seeded_and_kept_whatever_the_fleet_size(base_settings: Settings) -> None:
    areas = {d.id: d.geometry for d in base_settings.geography.districts}
    args = (base_settings.district_ids(), base_settings.kinds)
    small = build_fleet(*args, 50, topic_prefix="city", seed=7, areas=areas)
    large = build_fleet(*args, 300, topic_prefix="city", seed=7, areas=areas)
    other = build_fleet(*args, 50, topic_prefix="city", seed=8, areas=areas)
    assert [(d.lat, d.lon) for d in small] == [(d.lat, d.lon) for d in large[:50]]
    assert [(d.lat, d.lon) for d in small] != [(d.lat, d.lon) for d in other]
