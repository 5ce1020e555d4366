"""The poller: every registered source asked on its schedule, its readings produced once.

    poller = Poller(settings, SourcesFile(path), health_path=..., environ=dict(os.environ))
    poller.run(stop)                  # until the threading.Event is set
    poller.tick()                     # one round: reload the registry, poll what is due
    poller.health()                   # {name: {"state", "consecutive_errors", ...}}

Each source is polled every ``interval_s``; the requests of the sources due at once go out
together (up to eight at a time), so a slow service does not add its wait to every other's
(a round still ends with its slowest answer, at most ``sources.timeout_s``). A failed fetch
is tried again after a backoff (:func:`~connectors.sources.breaker.retry_delay`, never later
than the interval); after ``sources.breaker_failures`` failures in a row its breaker opens
and the source is left alone for ``sources.breaker_cooldown_s``, then probed once.

Records of an answer go through the reading parser the bridge uses, then
:class:`connectors.readings_out.ReadingsOut`: valid readings to the readings topic, refused
ones to the dead-letter topic (``source`` header ``sources``, key ``sources/<name>``). A
reading already produced (same device, kind and time, among the source's last
``sources.dedupe_memory``) is not produced again, nor is a refused payload already
dead-lettered: services answer with the last hours each time. A reading is remembered once
Kafka confirmed it, so one Kafka did not take is produced on the next poll. The registry is
re-read when its file changes; each source's health is written to ``health_path`` after every
round (``cityheart sources list``) and served on ``/metrics`` (:mod:`connectors.sources.health`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.kafka import ReliableProducer
from connectors.readings_out import ReadingsOut
from connectors.sources.breaker import Breaker, retry_delay
from connectors.sources.fetch import FetchError, Preview, auth_headers, fetch_json, mapper_for
from connectors.sources.registry import SourcesFile, save_health
from models.errors import ConfigError, ConnectorError
from models.geography import Locator
from models.timefmt import iso
from settings.config import Settings
from settings.params import reading_parser
from settings.sources import SourceSpec

__all__ = ["Poller", "SourceState"]

log = logging.getLogger(__name__)


@dataclass
class SourceState:
    """One source's schedule, breaker, memory of what it produced, and counts."""

    spec: SourceSpec
    breaker: Breaker
    due: float = 0.0  # monotonic
    last_success: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    newest_ts: float | None = None
    polls: int = 0
    failures: int = 0
    readings: int = 0
    duplicates: int = 0
    refused: int = 0
    seen: OrderedDict[Any, None] = field(default_factory=OrderedDict)

    def health(self, now: float) -> dict[str, Any]:
        """The source's health as of ``now`` (UTC epoch seconds)."""
        return {
            "url": self.spec.url, "interval_s": self.spec.interval_s,
            "state": self.breaker.state, "consecutive_errors": self.breaker.errors,
            "last_success": iso(self.last_success) if self.last_success else None,
            "last_success_ts": self.last_success,
            "last_attempt": iso(self.last_attempt) if self.last_attempt else None,
            "last_error": self.last_error,
            "lag_s": round(now - self.newest_ts, 3) if self.newest_ts is not None else None,
            "polls": self.polls, "failures": self.failures, "readings": self.readings,
            "duplicates": self.duplicates, "refused": self.refused,
        }


class Poller:
    """Poll the sources of a registry and produce their readings (one thread)."""

    def __init__(
        self, settings: Settings, registry: SourcesFile, *, health_path: Path | None = None,
        environ: Mapping[str, str] | None = None, producer: ReliableProducer | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.options = settings.sources
        self.registry = registry
        self.health_path = health_path
        self._environ = dict(environ or {})
        self._clock = clock
        self._monotonic = monotonic
        self._parser = reading_parser(settings)
        self._locator = Locator(settings.geography.districts)
        self.producer = producer or ReliableProducer(
            settings.kafka.bootstrap, linger_ms=5,
            delivery_timeout_ms=int(self.options.timeout_s * 3000))
        self._out = ReadingsOut(self.producer, settings.kafka.topics,
                                keep_bytes=settings.mqtt.max_payload_bytes)
        self.states: dict[str, SourceState] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sources-fetch")

    def health(self) -> dict[str, dict[str, Any]]:
        """Each source's health now."""
        now = self._clock()
        with self._lock:
            return {name: state.health(now) for name, state in self.states.items()}

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; deliver what is queued before returning."""
        while not stop.is_set():
            wait = self.tick()
            stop.wait(min(max(wait, 0.05), self.options.check_s))
        self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.producer.flush(10)
        except ConnectorError as exc:
            log.error("sources: %s", exc)

    def tick(self) -> float:
        """Reload the registry, poll every source that is due (their requests at once);
        seconds until the next one is due."""
        now = self._monotonic()
        self._reconcile(self.registry.current(now))
        asking = [state for state in list(self.states.values())
                  if state.due <= now and self._may_ask(state, now)]
        if asking:
            answers = [self._pool.submit(self._fetch, state.spec) for state in asking]
            for state, answer in zip(asking, answers, strict=True):
                self._settle(state, answer.result(), now)
            self._save_health()
        if not self.states:
            return self.options.check_s
        return min(state.due for state in self.states.values()) - self._monotonic()

    def _reconcile(self, specs: list[SourceSpec]) -> None:
        wanted = {spec.name: spec for spec in specs}
        with self._lock:
            for name in set(self.states) - set(wanted):
                log.info("sources: %s removed", name)
                del self.states[name]
            for name, spec in wanted.items():
                state = self.states.get(name)
                if state is None:
                    log.info("sources: %s added (%s every %g s)", name, spec.url,
                             spec.interval_s)
                    self.states[name] = SourceState(spec, self._breaker())
                elif state.spec != spec:
                    log.info("sources: %s changed", name)
                    state.spec, state.due = spec, 0.0  # keeps what it produced already
                    state.breaker = self._breaker()

    def _breaker(self) -> Breaker:
        return Breaker(self.options.breaker_failures, self.options.breaker_cooldown_s)

    def _may_ask(self, state: SourceState, mono: float) -> bool:
        """Whether the source's breaker lets a request go (if not: due when it reopens)."""
        if state.breaker.allows(mono):
            return True
        state.due = state.breaker.reopens_at() or mono + state.spec.interval_s
        return False

    def _fetch(self, spec: SourceSpec) -> object | FetchError | ConfigError:
        """The source's answer, or why there is none (runs on a thread of the pool)."""
        try:
            headers = auth_headers(spec, self._environ)
            return fetch_json(spec, headers, timeout_s=self.options.timeout_s,
                              max_bytes=self.options.max_response_bytes)
        except (FetchError, ConfigError) as exc:
            return exc

    def _settle(self, state: SourceState, answer: object, mono: float) -> None:
        """Count a poll's answer: a failure (retry, breaker), or its readings produced."""
        state.last_attempt, state.polls = self._clock(), state.polls + 1
        if isinstance(answer, FetchError | ConfigError):
            self._failed(state, str(answer), mono)
            return
        state.breaker.succeeded()
        self._produce(state, answer, self._clock())
        state.due = mono + state.spec.interval_s

    def _failed(self, state: SourceState, reason: str, mono: float) -> None:
        state.breaker.failed(mono)
        state.failures += 1
        state.last_error = reason
        reopens = state.breaker.reopens_at()
        if state.breaker.state == "open" and reopens is not None:
            state.due = reopens
            log.warning("sources: %s: breaker open for %g s after %d failures: %s",
                        state.spec.name, self.options.breaker_cooldown_s,
                        state.breaker.errors, reason)
        else:
            delay = retry_delay(state.breaker.errors, self.options.retry_initial_s,
                                min(self.options.retry_max_s, state.spec.interval_s))
            state.due = mono + delay
            log.warning("sources: %s: %s (again in %g s)", state.spec.name, reason, delay)

    def _produce(self, state: SourceState, document: object, now: float) -> None:
        spec = state.spec
        preview = Preview.of(document, self._parser, mapper_for(self.settings, spec,
                                                                self._locator), now)
        where = f"sources/{spec.name}".encode()
        for reading in preview.readings:
            key = (reading.device_id, reading.kind, reading.ts)
            if key in state.seen:
                state.duplicates += 1
                continue
            self._out.reading(reading, on_delivered=functools.partial(
                self._delivered, state, key, reading.ts))
        for _, error in preview.refused:
            digest = hashlib.sha256(error.payload).digest()
            if digest in state.seen:
                continue
            self._out.refused(error, key=where, received_at=now, source="sources",
                              on_delivered=functools.partial(self._remember, state, digest))
            state.refused += 1
        try:
            self.producer.flush(self.options.timeout_s * 3)
        except ConnectorError as exc:
            # what Kafka did not take is not remembered: the next poll produces it again
            self.producer.failures.clear()
            state.last_error = f"kafka: {exc}"
            log.error("sources: %s: %s", spec.name, exc)
            return
        state.last_success, state.last_error = now, None

    def _delivered(self, state: SourceState, key: Any, ts: float) -> None:
        self._remember(state, key)
        state.readings += 1
        if state.newest_ts is None or ts > state.newest_ts:
            state.newest_ts = ts

    def _remember(self, state: SourceState, key: Any) -> None:
        state.seen[key] = None
        while len(state.seen) > self.options.dedupe_memory:
            state.seen.popitem(last=False)

    def _save_health(self) -> None:
        if self.health_path is None:
            return
        try:
            save_health(self.health_path, self.health())
        except OSError as exc:
            log.error("sources: cannot write %s: %s", self.health_path, exc)
