"""``cityheart simulate``: publish the simulated city's telemetry over MQTT at a steady rate.

    report = run_simulator(settings, rate=500, count=10_000)   # None: from settings.simulator
    print(report.published, report.acknowledged, report.rate)

The fleet, values and scenario come from :mod:`cityheart.simulation`; publishing (QoS 1, at most
:data:`MAX_INFLIGHT` unacknowledged: a publish waits for PUBACKs to make room, so the simulator
never holds more than that in flight) from :class:`connectors.mqtt.MqttPublisher`. With
``gateways=N`` the simulator acts as N gateways: each reading goes into its gateway's SenML pack
(:class:`cityheart.simulation.Gateways`), published once it holds ``pack_size`` readings or its
oldest waited :data:`PACK_MAX_WAIT_S`; the rate, counts and limits are still in readings.
Pacing uses a monotonic clock: every tick publishes all readings due since the start, so the
rate does not drift however long a tick or a publish takes. The run ends after ``duration_s``
or ``count`` readings, on SIGINT/SIGTERM, or when ``stop`` is set; it then publishes the packs
still gathering and waits up to :data:`FLUSH_TIMEOUT_S` for the broker to acknowledge what is
still in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from cityheart.simulation import Gateways, Schedule, Simulator
from connectors.mqtt import MqttPublisher, protocol_of
from models.errors import ConfigError
from settings.config import Settings

__all__ = [
    "FLUSH_TIMEOUT_S",
    "MAX_INFLIGHT",
    "PACK_MAX_WAIT_S",
    "TICK_S",
    "SimulationReport",
    "run_simulator",
]

log = logging.getLogger(__name__)

TICK_S = 0.005
"""Longest pause between two publishing rounds, seconds."""

MAX_INFLIGHT = 1000
"""QoS 1 messages the simulator may have unacknowledged at once."""

PACK_MAX_WAIT_S = 0.1
"""Longest a gateway holds a reading before it publishes a pack that is not full, seconds."""

FLUSH_TIMEOUT_S = 30.0
"""How long a finishing simulator waits for the broker to acknowledge what it still holds."""

_PROGRESS_EVERY_S = 30.0
_MAX_BURST = 2000  # slots per round at most, so a simulator far behind still sees ``stop``


@dataclass(frozen=True)
class SimulationReport:
    """What one simulator run did."""

    published: int
    """Readings handed to MQTT (in packs, with gateways)."""
    acknowledged: int
    """Readings whose MQTT message the broker acknowledged."""
    elapsed_s: float
    devices: int
    scenario: str
    offered_rate: float
    stopped_by: str
    """``count``, ``duration``, ``signal`` or ``stop``."""
    messages: int = 0
    """MQTT messages published (readings, or packs with gateways)."""
    gateways: int = 0
    pack_size: int = 0

    @property
    def rate(self) -> float:
        """Readings published per second, achieved."""
        return self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0


def run_simulator(
    settings: Settings,
    *,
    devices: int | None = None,
    rate: float | None = None,
    scenario: str | None = None,
    duration_s: float | None = None,
    count: int | None = None,
    seed: int | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
    gateways: int = 0,
    pack_size: int = 50,
) -> SimulationReport:
    """Publish the simulated city to ``settings.mqtt`` until a limit, a signal or ``stop``.

    ``None`` takes the value from ``settings.simulator``; no ``duration_s`` and no ``count``
    runs until SIGINT/SIGTERM (caught only when called on the main thread) or ``stop``.
    ``clock`` gives the readings' UTC timestamps. ``gateways`` > 0 publishes SenML packs of up
    to ``pack_size`` readings from that many gateways instead of one reading a message.
    Raises ConfigError for an unknown scenario or a bad limit, ConnectorError when the broker
    cannot be reached.
    """
    simulator, schedule, scenario = _prepare(settings, devices, rate, scenario, seed)
    _check_limits(duration_s, count)
    mqtt = settings.mqtt
    packs = _gateways(gateways, pack_size, mqtt.topic_prefix)
    sizes: dict[int, int] = {}  # id(payload) -> readings, for packs in flight
    acked = [0]

    def on_acked(topic: str, payload: bytes) -> None:
        acked[0] += sizes.pop(id(payload), 1)

    publisher = MqttPublisher(
        mqtt.url,
        f"cityheart-sim-{os.getpid()}-{uuid.uuid4().hex[:6]}",
        username=mqtt.username,
        password=mqtt.password.get_secret_value() if mqtt.password else None,
        max_inflight=MAX_INFLIGHT,
        protocol=protocol_of(mqtt.protocol),
        on_acked=on_acked,
    )
    outbox = _Outbox(simulator, publisher, packs, sizes)
    stop = stop or threading.Event()
    log.info("simulating %d devices at %g readings/s, scenario %r, on %s (prefix %r)%s",
             schedule.devices, schedule.rate, scenario, mqtt.url, mqtt.topic_prefix,
             f" as {gateways} gateways (packs of {pack_size})" if packs else "")
    with _stop_on_signals(stop) as signalled:
        publisher.connect()
        try:
            stopped_by, elapsed = _publish_loop(
                outbox, schedule, stop, duration_s, count, clock
            )
            if signalled:
                stopped_by = "signal"
            outbox.drain(stop)
            _flush(publisher, signalled)
        finally:
            publisher.close()
    report = SimulationReport(outbox.readings, acked[0], elapsed, schedule.devices, scenario,
                              schedule.rate, stopped_by, publisher.published, gateways,
                              pack_size if packs else 0)
    log.info("simulator stopped (%s): %d readings published, %d acknowledged in %.1f s "
             "(%.1f readings/s, offered %g)", stopped_by, report.published,
             report.acknowledged, report.elapsed_s, report.rate, schedule.rate)
    return report


def _flush(publisher: MqttPublisher, signalled: list[int]) -> None:
    """Wait for the broker to acknowledge what is in flight; a second signal cuts it short."""
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    while not publisher.flush(0.25):
        if len(signalled) > 1 or time.monotonic() > deadline:
            log.warning("%d readings still unacknowledged by %s; abandoning them",
                        publisher.in_flight, publisher.url)
            return


def _prepare(
    settings: Settings, devices: int | None, rate: float | None, scenario: str | None,
    seed: int | None,
) -> tuple[Simulator, Schedule, str]:
    """The simulator, schedule and scenario name, defaults from ``settings.simulator``."""
    config = settings.simulator
    scenario = config.scenario if scenario is None else scenario
    if scenario not in config.scenarios:
        reason = f"unknown scenario {scenario!r}; known scenarios: {sorted(config.scenarios)}"
        raise ConfigError("cityheart simulate", "simulator.scenario", reason)
    devices = config.devices if devices is None else devices
    rate = config.rate if rate is None else rate
    if devices < 1:
        reason = f"devices must be at least 1, got {devices}"
        raise ConfigError("cityheart simulate", "simulator.devices", reason)
    if not rate > 0:
        reason = f"rate must be > 0 readings/s, got {rate}"
        raise ConfigError("cityheart simulate", "simulator.rate", reason)
    simulator = Simulator.from_settings(
        settings, devices=devices, seed=config.seed if seed is None else seed, scenario=scenario
    )
    for event in simulator.unmatched:
        log.warning("scenario %r: no device of kind %s in district %s for the %s event "
                    "(%d devices are too few)", scenario, event.kind, event.district,
                    event.type, devices)
    return simulator, Schedule(devices, rate), scenario


def _gateways(count: int, pack_size: int, prefix: str) -> Gateways | None:
    if count < 0 or pack_size < 1:
        reason = f"gateways must be >= 0 and pack size >= 1, got {count} and {pack_size}"
        raise ConfigError("cityheart simulate", "gateways", reason)
    if count == 0:
        return None
    return Gateways(count, topic_prefix=prefix, pack_size=pack_size, max_wait_s=PACK_MAX_WAIT_S)


class _Outbox:
    """Where due readings go: one MQTT message each, or into their gateways' SenML packs.

    Every publish waits for room in the publisher's in-flight window (flow control); a publish
    that finds none for 0.25 s tries again unless ``stop`` is set.
    """

    def __init__(self, simulator: Simulator, publisher: MqttPublisher,
                 packs: Gateways | None, sizes: dict[int, int]) -> None:
        self.simulator = simulator
        self.publisher = publisher
        self.readings = 0  # handed to MQTT, or to a gateway's pack
        self._packs = packs
        self._sizes = sizes

    def add(self, index: int, now: float, elapsed: float, stop: threading.Event) -> bool:
        """Publish device ``index``'s reading (or pack it); False when ``stop`` cut it short."""
        if self._packs is None:
            item = self.simulator.reading(index, now, elapsed)
            if item is None:  # a silent device
                return True
            self.readings += 1
            return self._publish(item[0], item[1], 1, stop)
        value = self.simulator.value(index, now, elapsed)
        if value is None:
            return True
        self.readings += 1
        full = self._packs.add(self.simulator.fleet[index], value, now,
                               waited_since=time.monotonic())
        return full is None or self._publish(*full, stop)

    def due(self, stop: threading.Event) -> bool:
        """Publish the packs that waited long enough; False when ``stop`` cut it short."""
        if self._packs is None:
            return True
        return all(self._publish(*pack, stop) for pack in self._packs.due(time.monotonic()))

    def drain(self, stop: threading.Event) -> None:
        """Publish every pack still gathering (at the end of a run)."""
        if self._packs is not None:
            for pack in self._packs.drain():
                self._publish(*pack, stop)

    def _publish(self, topic: str, payload: bytes, size: int, stop: threading.Event) -> bool:
        if size > 1:
            self._sizes[id(payload)] = size
        while not self.publisher.publish(topic, payload, timeout=0.25):
            if stop.is_set():  # the broker is not acknowledging: give up on this message
                self._sizes.pop(id(payload), None)
                return False
        return True


def _check_limits(duration_s: float | None, count: int | None) -> None:
    if duration_s is not None and not duration_s >= 0:
        reason = f"duration must be >= 0 seconds, got {duration_s}"
        raise ConfigError("cityheart simulate", "duration", reason)
    if count is not None and count < 0:
        reason = f"count must be >= 0 readings, got {count}"
        raise ConfigError("cityheart simulate", "count", reason)


def _publish_loop(
    outbox: _Outbox,
    schedule: Schedule,
    stop: threading.Event,
    duration_s: float | None,
    count: int | None,
    clock: Callable[[], float],
) -> tuple[str, float]:
    """Publish every due slot until a limit or ``stop``; (what stopped it, seconds elapsed)."""
    start = time.monotonic()
    limit = -1 if count is None else count
    last_slot = None if duration_s is None else schedule.due(duration_s - 1e-9)
    slot = 0
    next_progress = _PROGRESS_EVERY_S
    while True:
        elapsed = time.monotonic() - start
        if outbox.readings == limit:
            return "count", elapsed
        if last_slot is not None and slot >= last_slot and elapsed >= (duration_s or 0.0):
            return "duration", elapsed
        due = min(schedule.due(elapsed), slot + _MAX_BURST)
        if last_slot is not None:
            due = min(due, last_slot)
        slot, stopped = _publish_slots(outbox, schedule, slot, due, limit, elapsed, clock, stop)
        if stopped or not outbox.due(stop):
            return "stop", time.monotonic() - start
        if elapsed >= next_progress:
            next_progress += _PROGRESS_EVERY_S
            publisher = outbox.publisher
            log.info("simulator: %d readings, %d messages published, %d acknowledged, %d in "
                     "flight", outbox.readings, publisher.published, publisher.acknowledged,
                     publisher.in_flight)
        pause = min(TICK_S, schedule.time_of(slot) - (time.monotonic() - start))
        if stop.wait(pause) if pause > 0 else stop.is_set():
            return "stop", time.monotonic() - start


def _publish_slots(
    outbox: _Outbox,
    schedule: Schedule,
    slot: int,
    due: int,
    limit: int,
    elapsed: float,
    clock: Callable[[], float],
    stop: threading.Event,
) -> tuple[int, bool]:
    """Publish slots up to ``due`` (or ``limit`` readings); (next slot, whether stopped)."""
    while slot < due and outbox.readings != limit:
        index = schedule.device(slot)
        slot += 1
        if not outbox.add(index, clock(), elapsed, stop):
            return slot, True
    return slot, False


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """Set ``stop`` on SIGINT/SIGTERM while the block runs (main thread only); yield the signals."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        log.info("simulator: %s received, finishing", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
