"""The flow places each reading in the district of its position (its own, else its registered
device's): a position outside the city is a dead letter, a topic naming another district is
counted against the device; a registered device that never reports is missing. Riverton:
harbour is lon 11.64-11.67, lat 48.13-48.15."""

from __future__ import annotations

import uuid

import orjson
import pytest
from prometheus_client import REGISTRY

from connectors.kafka import KafkaRecord
from models.devices import Device, DeviceRegistry
from models.timefmt import iso
from settings.config import Settings
from tests.support.flow import FlowOutputs, run_flow

pytestmark = pytest.mark.timeout(60)

T = 1_795_669_200.0  # 2026-11-26T05:00:00Z
NOW = T + 120.0
HARBOUR = (48.14, 11.655)
OLD_TOWN = (48.14, 11.565)
MUNICH_AIRPORT = (48.354, 11.786)  # outside every Riverton district


def record(device: str, *, district: str = "", position: tuple[float, float] | None = None,
           ts: float = T + 1, value: float = 20.0) -> KafkaRecord:
    """A readings record as the bridge writes it (district "": the topic named none)."""
    payload: dict = {"device_id": device, "district": district, "kind": "pm25",
                     "value": value, "unit": "ug/m3", "ts": ts}
    if position is not None:
        payload["lat"], payload["lon"] = position
    return KafkaRecord(device.encode(), orjson.dumps(payload))


def registry(*devices: tuple[str, str, tuple[float, float] | None]) -> DeviceRegistry:
    """A registry of (id, district, position) pm25 devices."""
    return DeviceRegistry(devices=tuple(
        Device(id=device_id, district=district, kind="pm25", password_hash="$7$101$c2FsdA==$aA==",
               added_at="2026-11-26T00:00:00Z", lat=where[0] if where else None,
               lon=where[1] if where else None)
        for device_id, district, where in devices
    ))


def run(settings: Settings, items: list, **kwargs) -> FlowOutputs:
    return run_flow(settings, items, clock=lambda: NOW, **kwargs)


def districts_of(out: FlowOutputs) -> set[str]:
    return {v["district"] for v in out.vitals}


def reasons(out: FlowOutputs) -> list[str]:
    return [dict(r.headers)["reason"].decode() for r in out.dead]


def mismatches(device: str) -> float:
    value = REGISTRY.get_sample_value("cityheart_district_mismatches_total", {"device": device})
    return value or 0.0


def test_a_reading_with_only_a_position_lands_in_its_district(base_settings) -> None:
    out = run(base_settings, [record("bus-1", position=HARBOUR)])
    assert districts_of(out) == {"harbour"}
    assert out.dead == []


def test_a_reading_without_a_position_is_placed_by_its_registered_device(base_settings) -> None:
    out = run(base_settings, [record("pm-fixed")],
              registry=registry(("pm-fixed", "old-town", OLD_TOWN)))
    assert districts_of(out) == {"old-town"}


def test_the_readings_own_position_wins_over_the_registered_one(base_settings) -> None:
    out = run(base_settings, [record("bus-2", position=HARBOUR)],
              registry=registry(("bus-2", "old-town", OLD_TOWN)))
    assert districts_of(out) == {"harbour"}


def test_a_position_outside_the_city_is_a_dead_letter_outside_city(base_settings) -> None:
    out = run(base_settings, [record("drone-1", district="harbour", position=MUNICH_AIRPORT),
                              record("pm-2", position=HARBOUR)])
    assert reasons(out) == ["outside_city"]
    assert orjson.loads(out.dead[0].value)["device_id"] == "drone-1"  # the original bytes
    assert districts_of(out) == {"harbour"}


def test_a_reading_with_no_district_and_no_position_is_refused(base_settings) -> None:
    out = run(base_settings, [record("lost-1")])
    assert reasons(out) == ["unknown_district"]
    assert out.vitals == []


def test_a_topic_naming_another_district_is_counted_and_the_position_wins(
    base_settings,
) -> None:
    device = f"pm-{uuid.uuid4().hex[:8]}"
    out = run(base_settings, [
        record(device, district="old-town", position=HARBOUR),
        record(device, district="old-town", position=HARBOUR, ts=T + 2),
        record(device, district="harbour", position=HARBOUR, ts=T + 3),  # agrees: not counted
    ])
    assert districts_of(out) == {"harbour"}
    assert mismatches(device) == 2


def test_readings_without_any_position_keep_their_topics_district(base_settings) -> None:
    out = run(base_settings, [record("pm-3", district="riverside")])
    assert districts_of(out) == {"riverside"}


def test_a_registered_device_that_never_reports_is_missing(base_settings) -> None:
    items = [record("pm-ok", district="harbour", ts=t, value=20.0)
             for t in (T + 1, T + 11, T + 21, T + 31)]
    devices = registry(("pm-ok", "harbour", None), ("pm-never", "harbour", HARBOUR),
                       ("pm-elsewhere", "old-town", None))
    out = run(base_settings, items, registry=devices)
    health = out.at("device_health", T + 10)
    (pm25,) = health["components"]
    assert (pm25["missing"], pm25["expected"], pm25["usable"]) == (["pm-never"], 2, 1)
    assert health["details"]["missing"] == 1 and health["value"] == 0.5
    city = [r for r in out.of("device_health", "city") if r["window_start"] == iso(T + 10)]
    assert city and city[0]["details"]["missing"] >= 1
