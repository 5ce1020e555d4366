"""The HTTP ingest's core: a request's records validated, produced, answered once Kafka has them.

    intake = Intake(settings)                # a producer, the parser, limits and memories
    intake.start()                           # a thread serving Kafka's delivery reports
    intake.submit(key, items, done)          # done(Outcome) runs once every record is in Kafka
    intake.stop()

Each record goes through the parser the bridge uses (``settings.params.reading_parser``; the
district comes from the payload), then the key's permissions (``not_allowed``). Valid readings
are produced with :class:`connectors.readings_out.ReadingsOut`, exactly as the bridge does;
refused ones go to the dead-letter topic (``source`` header ``ingest``, key ``ingest/<source>``)
and are listed in the answer with their index, reason and detail. A reading with a ``seq``
whose (device, kind, seq) was delivered already (by an earlier request, among the last
``ingest.seq_memory``) or appears twice in one request is a duplicate: counted, not produced.
Readings without ``seq`` sent twice reach Kafka twice; history stores them once (its key is
(device, kind, ts)). :class:`AnswerMemory` keeps answers under their ``Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectors.ingest.bodies import Item
from connectors.ingest.deliveries import Deliveries
from connectors.ingest.keys import IngestKey
from connectors.kafka import ReliableProducer
from connectors.readings_out import ReadingsOut
from models.errors import InvalidReading
from settings.config import Settings
from settings.params import reading_parser

__all__ = ["AnswerMemory", "Intake", "Outcome", "SeqMemory"]

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of a request's records (the 202 answer's document)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The answer's JSON document."""
        reasons: dict[str, int] = {}
        for entry in self.rejected:
            reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": len(self.rejected), "reasons": reasons,
                "rejections": self.rejected}


class SeqMemory:
    """The last ``size`` (device, kind, seq) delivered; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, str, int]) -> bool:
        return key in self._seen

    def add(self, key: tuple[str, str, int]) -> None:
        """Remember ``key`` (forgetting the oldest beyond ``size``)."""
        if not self.size:
            return
        with self._lock:
            self._seen[key] = None
            self._seen.move_to_end(key)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)


_IN_FLIGHT = "in flight"


class AnswerMemory:
    """Answers kept under (source, Idempotency-Key) for ``ttl_s``, at most ``size`` of them.

    :meth:`begin` says what to do with a request: ``None`` (go ahead, the key is now in
    flight), ``(status, document)`` of the first request (answer that again), or a refusal
    (409 while the first is under way, 422 for the same key with another body).
    """

    def __init__(self, ttl_s: float, size: int) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._answers: OrderedDict[tuple[str, str], tuple[float, str, Any]] = OrderedDict()

    def begin(self, source: str, key: str, body: bytes, now: float) -> tuple[int, Any] | None:
        """None to go ahead, else the answer to give (see the class)."""
        self._expire(now)
        digest = hashlib.sha256(body).hexdigest()
        found = self._answers.get((source, key))
        if found is None:
            self._answers[(source, key)] = (now + self.ttl_s, digest, _IN_FLIGHT)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
            return None
        _, first_digest, answer = found
        if first_digest != digest:
            return 422, {"error": "idempotency_key_reused",
                         "detail": f"Idempotency-Key {key!r} was used with another body"}
        if answer == _IN_FLIGHT:
            return 409, {"error": "in_progress",
                         "detail": f"a request with Idempotency-Key {key!r} is under way"}
        return answer

    def finish(self, source: str, key: str, answer: tuple[int, Any] | None) -> None:
        """Keep ``answer`` for the key, or forget the key (None: the request may be retried)."""
        entry = self._answers.get((source, key))
        if entry is None:
            return
        if answer is None:
            del self._answers[(source, key)]
        else:
            self._answers[(source, key)] = (entry[0], entry[1], answer)

    def _expire(self, now: float) -> None:
        while self._answers:
            first = next(iter(self._answers.values()))
            if first[0] > now:
                return
            self._answers.popitem(last=False)


class Intake:
    """Validate records and produce them; report each request's outcome once Kafka has it."""

    def __init__(
        self, settings: Settings, *, clock: Callable[[], float] = time.time,
        producer: ReliableProducer | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._parser = reading_parser(settings)
        self.failed: str | None = None  # the last delivery failure, until a delivery succeeds
        # a failed record's request times out (503) and is retried by its sender
        self._deliveries = Deliveries(settings, name="ingest", producer=producer,
                                      on_failure=self._failed)
        self.producer = self._deliveries.producer
        self._out = ReadingsOut(self.producer, settings.kafka.topics,
                                keep_bytes=settings.mqtt.max_payload_bytes)
        self.seqs = SeqMemory(settings.ingest.seq_memory)

    def start(self) -> None:
        """Serve delivery reports on a thread of its own."""
        self._deliveries.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Deliver what is queued, then stop serving reports."""
        self._deliveries.stop(timeout)

    def _failed(self, error: str) -> None:
        self.failed = error

    def submit(self, key: IngestKey, items: Sequence[Item],
               done: Callable[[Outcome], None]) -> Outcome:
        """Produce ``items`` of source ``key``; ``done(outcome)`` runs (on the delivery
        thread, or here when nothing was produced) once Kafka confirmed every record."""
        outcome = Outcome()
        now = self._clock()
        produced = _Countdown(lambda: done(outcome))
        where = f"ingest/{key.source}".encode()
        seen: set[tuple[str, str, int]] = set()
        for item in items:
            error = item.error
            if error is None:
                try:
                    reading = self._parser.parse(item.payload, None, now)
                except InvalidReading as exc:
                    error = exc
                else:
                    refusal = key.refusal(reading.device_id, reading.kind, reading.district)
                    if refusal is not None:
                        error = InvalidReading(item.payload, "not_allowed", refusal)
            if error is not None:
                outcome.rejected.append({"index": item.index, "reason": error.reason,
                                         "detail": error.detail})
                district = _district_of(error)
                produced.add()
                self._out.refused(error, key=where, district=district, received_at=now,
                                  source="ingest", on_delivered=produced.one_done)
                continue
            if reading.seq is not None:
                seq_key = (reading.device_id, reading.kind, reading.seq)
                if seq_key in seen or seq_key in self.seqs:
                    outcome.duplicates += 1
                    continue
                seen.add(seq_key)
                produced.add()
                self._out.reading(reading, on_delivered=produced.delivered_then(
                    lambda k=seq_key: self.seqs.add(k)))
            else:
                produced.add()
                self._out.reading(reading, on_delivered=produced.one_done)
            outcome.accepted += 1
        produced.close()
        return outcome


def _district_of(error: InvalidReading) -> str | None:
    """The district of an out-of-range payload (for its rejection record), else None."""
    if error.reason != "out_of_range":
        return None
    try:
        district = orjson.loads(error.payload).get("district")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return district if isinstance(district, str) else None


class _Countdown:
    """Calls ``done`` once every record added was delivered, after :meth:`close`."""

    def __init__(self, done: Callable[[], None]) -> None:
        self._done = done
        self._pending = 1  # the request itself, until close()
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self._pending += 1

    def one_done(self) -> None:
        with self._lock:
            self._pending -= 1
            finished = self._pending == 0
        if finished:
            self._done()

    def delivered_then(self, first: Callable[[], None]) -> Callable[[], None]:
        def both() -> None:
            first()
            self.one_done()
        return both

    def close(self) -> None:
        self.one_done()
