"""The simulated city: a fleet of devices, their values, scripted events and a publishing schedule.

Pure: no I/O, no clock reads; time comes in as arguments and randomness is seeded::

    sim = Simulator.from_settings(settings, devices=216, seed=7, scenario="demo")
    schedule = Schedule(len(sim.fleet), rate=100.0)
    for slot in range(done, schedule.due(elapsed)):          # every reading due by now
        item = sim.reading(schedule.device(slot), now=wall_clock, elapsed=elapsed)
        if item is not None:                                  # None: the device is silent
            topic, payload = item                             # publish at QoS 1

Fleet: ``devices`` devices spread over every district and kind. The first districts*kinds
devices each get a distinct (district, kind) pair, ordered so that every run of
max(districts, kinds) devices covers all districts and all kinds; further devices repeat the
pairs. Device ids are ``<kind>-<district>-<serial>`` (``pm25-mission-003``) and device i keeps
its id, topic, offset and position whatever the fleet size. Given the districts' areas
(``Settings.geography()``), each device stands at a seeded random point strictly inside its
district (the same point every run with the same seed), which its payloads carry as ``lat`` and
``lon``.

Value of a device of kind k at local hour h (city time zone)::

    base + amplitude*cos(2*pi*(h - peak_hour)/24) + offset + noise        clipped to k's range

``offset`` is fixed per device (Gaussian, sd ``noise_sd``); ``noise`` is a Gaussian AR(1)
process with stationary sd ``noise_sd`` and lag-one correlation :data:`NOISE_PHI`, so a device
drifts a little instead of jumping independently every reading.

Scenario events (config.yaml ``simulator.scenarios``) act from ``start_s`` seconds after the
simulator starts for ``duration_s`` (absent: to the end): ``episode`` multiplies every device of
the kind in the district by ``factor``, ramping linearly in over ``ramp_s``; ``stuck`` makes the
district's first device of the kind repeat the value it had when the event began; ``silent``
makes that device publish nothing.

Payloads (topic ``<prefix>/<district>/<kind>/<device_id>``) are the device wire format that
:class:`models.readings.ReadingParser` accepts: ``{"device_id", "kind", "value", "unit",
"ts" (ISO 8601 UTC, ms, Z), "seq" (per-device counter from 0)}`` and, for a placed device,
``"lat"`` and ``"lon"`` (WGS84 degrees, 6 decimals: about 0.1 m).

Gateways: with :class:`Gateways`, device i belongs to gateway ``i % N`` and its readings are
gathered into that gateway's SenML pack (RFC 8428, :mod:`models.senml`), published on
``<prefix>/gateway/gw-<NNN>`` once it holds ``pack_size`` readings or its oldest reading has
waited ``max_wait_s``. A pack names each record ``<district>/<kind>/<device_id>`` with its unit
and value; the first record carries the base time ``bt`` and the others their offset ``t``::

    gateways = Gateways(4, topic_prefix="city", pack_size=50, max_wait_s=0.1)
    full = gateways.add(sim.fleet[i], value, now, waited_since=monotonic_now)
    for topic, payload, size in [*([full] if full else []), *gateways.due(monotonic_now)]:
        ...                                                   # publish at QoS 1
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from models.errors import ConfigError
from models.timefmt import iso
from settings.config import Kind, ScenarioEvent, Settings

if TYPE_CHECKING:
    from shapely.geometry import MultiPolygon, Polygon

__all__ = [
    "NOISE_PHI",
    "Device",
    "Effect",
    "Gateways",
    "Schedule",
    "Simulator",
    "build_fleet",
    "pair_order",
    "senml_pack",
    "point_inside",
]

NOISE_PHI = 0.6
"""Lag-one autocorrelation of each device's noise (0: white noise)."""

_TZ_BUCKET_S = 900  # UTC offsets only change on quarter-hour boundaries
_TWO_PI_OVER_DAY = 2.0 * math.pi / 24.0


@dataclass(frozen=True, slots=True)
class Device:
    """One simulated device: where it is, what it measures, its topic and fixed offset."""

    index: int
    device_id: str
    district: str
    kind: str
    unit: str
    topic: str
    offset: float
    lat: float | None = None
    """Where it stands (WGS84 degrees), None when the fleet was built without areas."""
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Effect:
    """A scenario event resolved to the devices it acts on."""

    type: str
    start_s: float
    end_s: float
    ramp_s: float
    factor: float
    devices: tuple[int, ...]

    def active(self, elapsed: float) -> bool:
        """Whether the event acts ``elapsed`` seconds after the simulator started."""
        return self.start_s <= elapsed < self.end_s

    def multiplier(self, elapsed: float) -> float:
        """The episode factor at ``elapsed``: 1 before the start, ramping to ``factor``."""
        if not self.active(elapsed):
            return 1.0
        if self.ramp_s <= 0:
            return self.factor
        progress = min(1.0, (elapsed - self.start_s) / self.ramp_s)
        return 1.0 + (self.factor - 1.0) * progress


def pair_order(districts: Sequence[str], kinds: Sequence[str]) -> list[tuple[str, str]]:
    """Every (district, kind) pair once, each run of max(D, K) pairs covering all of both."""
    d_count, k_count = len(districts), len(kinds)
    pairs: list[tuple[str, str]] = []
    if k_count >= d_count:
        for round_ in range(d_count):
            pairs += [(districts[(k + round_) % d_count], kinds[k]) for k in range(k_count)]
    else:
        for round_ in range(k_count):
            pairs += [(districts[d], kinds[(d + round_) % k_count]) for d in range(d_count)]
    return pairs


def build_fleet(
    districts: Sequence[str],
    kinds: Mapping[str, Kind],
    devices: int,
    *,
    topic_prefix: str,
    seed: int,
    areas: Mapping[str, Polygon | MultiPolygon] | None = None,
) -> list[Device]:
    """``devices`` devices over all districts and kinds (see the module docstring); with
    ``areas`` (district id -> lon/lat geometry) each stands at a point inside its district."""
    if devices < 1:
        msg = f"a fleet needs at least one device, got {devices}"
        raise ValueError(msg)
    pairs = pair_order(list(districts), list(kinds))
    rng = random.Random(f"fleet-{seed}")
    fleet = []
    for index in range(devices):
        district, kind_id = pairs[index % len(pairs)]
        kind = kinds[kind_id]
        serial = index // len(pairs) + 1
        device_id = f"{kind_id}-{district}-{serial:03d}"
        offset = rng.gauss(0.0, kind.simulation.noise_sd)
        topic = f"{topic_prefix}/{district}/{kind_id}/{device_id}"
        lat = lon = None
        if areas is not None and district in areas:
            lat, lon = point_inside(areas[district], random.Random(f"place-{seed}-{device_id}"))
        fleet.append(
            Device(index, device_id, district, kind_id, kind.unit, topic, offset, lat, lon)
        )
    return fleet


def point_inside(area: Polygon | MultiPolygon, rng: random.Random) -> tuple[float, float]:
    """A random (lat, lon), rounded to 6 decimals, strictly inside ``area`` (never on its
    border, so it belongs to that district alone): drawn uniformly in the bounding box until
    one falls inside (a representative point after 1,000 misses)."""
    import shapely

    xmin, ymin, xmax, ymax = area.bounds
    shapely.prepare(area)
    for _ in range(1000):
        lon, lat = round(rng.uniform(xmin, xmax), 6), round(rng.uniform(ymin, ymax), 6)
        if area.contains_properly(shapely.Point(lon, lat)):
            return lat, lon
    inside = area.representative_point()
    return round(inside.y, 6), round(inside.x, 6)


class Schedule:
    """Round-robin publishing at ``rate`` readings/s city-wide: slot k is due at k/rate seconds.

    Slot k belongs to device ``k % devices``, so each device reports about rate/devices times
    a second. A runner publishes every slot below :meth:`due` and so never drifts.
    """

    def __init__(self, devices: int, rate: float) -> None:
        if devices < 1 or not rate > 0:
            msg = f"a schedule needs devices >= 1 and rate > 0, got {devices} and {rate}"
            raise ValueError(msg)
        self.devices = devices
        self.rate = rate

    def due(self, elapsed: float) -> int:
        """How many slots are due ``elapsed`` seconds after the start (slot 0 is due at 0)."""
        if elapsed < 0:
            return 0
        return int(elapsed * self.rate) + 1

    def device(self, slot: int) -> int:
        """The fleet index of the device that publishes in ``slot``."""
        return slot % self.devices

    def time_of(self, slot: int) -> float:
        """Seconds after the start when ``slot`` is due."""
        return slot / self.rate


class Simulator:
    """Values and payloads of a fleet, with scenario effects; state per device, seeded."""

    def __init__(
        self,
        fleet: Sequence[Device],
        kinds: Mapping[str, Kind],
        *,
        timezone: tzinfo,
        events: Sequence[ScenarioEvent] = (),
        seed: int = 0,
    ) -> None:
        self.fleet = list(fleet)
        self._tz = timezone
        self._rng = random.Random(f"noise-{seed}")
        self._params = {
            kind_id: (k.simulation.base, k.simulation.amplitude, k.simulation.peak_hour,
                      k.simulation.noise_sd, k.range[0], k.range[1])
            for kind_id, k in kinds.items()
        }
        self._innovation = math.sqrt(1.0 - NOISE_PHI * NOISE_PHI)
        size = len(self.fleet)
        # start each device's noise in its stationary distribution, not at zero
        self._noise = [self._rng.gauss(0.0, self._params[d.kind][3]) for d in self.fleet]
        self._seq = [0] * size
        self._stuck: list[float | None] = [None] * size
        self._tz_bucket = -1
        self._tz_offset = 0.0
        self.effects, self.unmatched = _resolve(events, self.fleet)
        per_device: list[list[Effect]] = [[] for _ in range(size)]
        for effect in self.effects:
            for index in effect.devices:
                per_device[index].append(effect)
        self._effects = [tuple(e) for e in per_device]

    @classmethod
    def from_settings(
        cls, settings: Settings, *, devices: int, seed: int, scenario: str
    ) -> Simulator:
        """The simulator of ``settings``' city; ConfigError for an unknown scenario or zone."""
        scenarios = settings.simulator.scenarios
        if scenario not in scenarios:
            reason = f"unknown scenario {scenario!r}; known scenarios: {sorted(scenarios)}"
            raise ConfigError("Simulator.from_settings", "simulator.scenario", reason)
        try:
            zone = ZoneInfo(settings.city.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            reason = f"{settings.city.timezone!r} is not a known IANA time zone"
            raise ConfigError("Simulator.from_settings", "city.timezone", reason) from exc
        fleet = build_fleet(
            settings.district_ids(),
            settings.kinds,
            devices,
            topic_prefix=settings.mqtt.topic_prefix,
            seed=seed,
            areas={d.id: d.geometry for d in settings.geography.districts},
        )
        return cls(fleet, settings.kinds, timezone=zone, events=scenarios[scenario], seed=seed)

    def local_hour(self, now: float) -> float:
        """The city's local hour of day (0 <= h < 24) at UTC epoch ``now``."""
        bucket = int(now // _TZ_BUCKET_S)
        if bucket != self._tz_bucket:
            offset = datetime.fromtimestamp(bucket * _TZ_BUCKET_S, self._tz).utcoffset()
            self._tz_offset = offset.total_seconds() if offset is not None else 0.0
            self._tz_bucket = bucket
        return ((now + self._tz_offset) % 86400.0) / 3600.0

    def value(self, index: int, now: float, elapsed: float) -> float | None:
        """Device ``index``'s next value at ``now`` (``elapsed`` s after start); None if silent.

        The quantity a device measures evolves (and the random stream advances) whether or not
        the device is stuck or silent, so one device's events never shift another's values.
        """
        effects = self._effects[index]
        if not effects:
            return self._draw(index, now, 1.0)
        factor = 1.0
        silent = False
        stuck = False
        for effect in effects:
            if effect.type == "episode":
                factor *= effect.multiplier(elapsed)
            elif effect.active(elapsed):
                silent = silent or effect.type == "silent"
                stuck = stuck or effect.type == "stuck"
        value = self._draw(index, now, factor)
        if not stuck:
            self._stuck[index] = None
        elif self._stuck[index] is None:
            self._stuck[index] = value
        if silent:
            return None
        return self._stuck[index] if stuck else value

    def reading(self, index: int, now: float, elapsed: float) -> tuple[str, bytes] | None:
        """(topic, payload) of device ``index``'s next reading, or None while it is silent."""
        value = self.value(index, now, elapsed)
        if value is None:
            return None
        device = self.fleet[index]
        seq = self._seq[index]
        self._seq[index] = seq + 1
        record: dict[str, object] = {
            "device_id": device.device_id,
            "kind": device.kind,
            "value": value,
            "unit": device.unit,
            "ts": iso(now),
            "seq": seq,
        }
        if device.lat is not None:
            record["lat"] = device.lat
            record["lon"] = device.lon
        return device.topic, orjson.dumps(record)

    def _draw(self, index: int, now: float, factor: float) -> float:
        device = self.fleet[index]
        base, amplitude, peak, sd, low, high = self._params[device.kind]
        noise = self._noise[index]
        if sd > 0:
            noise = NOISE_PHI * noise + self._innovation * self._rng.gauss(0.0, sd)
            self._noise[index] = noise
        cycle = math.cos(_TWO_PI_OVER_DAY * (self.local_hour(now) - peak))
        value = (base + amplitude * cycle + device.offset + noise) * factor
        return round(min(high, max(low, value)), 3)


def _resolve(
    events: Sequence[ScenarioEvent], fleet: Sequence[Device]
) -> tuple[list[Effect], list[ScenarioEvent]]:
    """Effects of ``events`` on ``fleet``, and the events that match no device."""
    effects: list[Effect] = []
    unmatched: list[ScenarioEvent] = []
    for event in events:
        matching = tuple(
            d.index for d in fleet if d.district == event.district and d.kind == event.kind
        )
        if not matching:
            unmatched.append(event)
            continue
        if event.type != "episode":
            matching = matching[:1]
        end = math.inf if event.duration_s is None else event.start_s + event.duration_s
        effects.append(
            Effect(event.type, event.start_s, end, event.ramp_s, event.factor, matching)
        )
    return effects, unmatched



def senml_pack(records: Sequence[tuple[Device, float, float]]) -> bytes:
    """The SenML pack of (device, value, UTC epoch ts) records, oldest first: base time on the
    first record, offsets from it on the others, each named ``<district>/<kind>/<device_id>``."""
    base = records[0][2]
    pack: list[dict[str, object]] = []
    for device, value, ts in records:
        record: dict[str, object] = {
            "n": f"{device.district}/{device.kind}/{device.device_id}", "u": device.unit,
            "v": value,
        }
        if pack:
            if ts != base:
                record["t"] = round(ts - base, 6)
        else:
            record["bt"] = base
        pack.append(record)
    return orjson.dumps(pack)


class Gateways:
    """N gateways gathering their devices' readings into SenML packs (see the module doc)."""

    def __init__(
        self, count: int, *, topic_prefix: str, pack_size: int, max_wait_s: float
    ) -> None:
        if count < 1 or pack_size < 1 or not max_wait_s >= 0:
            msg = (f"gateways need count >= 1, pack_size >= 1 and max_wait_s >= 0, got "
                   f"{count}, {pack_size} and {max_wait_s}")
            raise ValueError(msg)
        self.count = count
        self.pack_size = pack_size
        self._max_wait = max_wait_s
        self._topics = [f"{topic_prefix}/gateway/gw-{g:03d}" for g in range(count)]
        self._packs: list[list[tuple[Device, float, float]]] = [[] for _ in range(count)]
        self._since = [0.0] * count

    def add(
        self, device: Device, value: float, ts: float, *, waited_since: float
    ) -> tuple[str, bytes, int] | None:
        """Add a reading to its gateway's pack; (topic, payload, readings) once the pack is
        full. ``waited_since`` (any monotonic clock) starts the pack's wait when it is first."""
        gateway = device.index % self.count
        pack = self._packs[gateway]
        if not pack:
            self._since[gateway] = waited_since
        pack.append((device, value, ts))
        if len(pack) >= self.pack_size:
            return self._take(gateway)
        return None

    def due(self, now: float) -> list[tuple[str, bytes, int]]:
        """The packs whose oldest reading waited ``max_wait_s`` by ``now`` (same clock)."""
        return [self._take(g) for g, pack in enumerate(self._packs)
                if pack and now - self._since[g] >= self._max_wait]

    def drain(self) -> list[tuple[str, bytes, int]]:
        """Every pack not yet published, however little it holds."""
        return [self._take(g) for g, pack in enumerate(self._packs) if pack]

    def _take(self, gateway: int) -> tuple[str, bytes, int]:
        pack, self._packs[gateway] = self._packs[gateway], []
        return self._topics[gateway], senml_pack(pack), len(pack)
