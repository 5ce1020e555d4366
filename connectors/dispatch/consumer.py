"""A department's dispatch queue reader: every event routed to it, in order, once in effect.

Each department has a Kafka topic (``settings.kafka.topics.dispatch(department)``) of the events of
the incidents routed to it, key = incident id, value = the ``incidents`` topic's JSON (the event
plus ``"incident"``). A :class:`DispatchConsumer` reads it and keeps its place in a checkpoint
file, so a department that was down receives on reconnect everything it missed::

    consumer = DispatchConsumer(bootstrap, settings.kafka.topics.dispatch("water-authority"),
                                Path("var/dispatch/water-authority.json"))
    with consumer:                                   # resumes from the checkpoint, if any
        consumer.run(handler, stop=stop_event)       # until stop_event is set
        consumer.run(handler, once=True)             # or until caught up with the topic
    consumer.ledger.handled, consumer.ledger.duplicates

- Every partition is assigned explicitly (no consumer group), from the checkpoint's next offset,
  or from the beginning when the checkpoint has none. Records of one incident share a partition,
  so the handler sees each incident's events in order.
- ``handler(record)`` gets each record's decoded JSON. An event whose sequence is at or below the
  last one handled for its incident is a duplicate: skipped and counted
  (:mod:`connectors.dispatch.queue`). A jump in sequence is delivered and logged as a warning; an
  incident first seen above sequence 1 (routed here mid-life) is normal.
- The checkpoint (JSON, replaced atomically: temp file, fsync, ``os.replace``) is saved after the
  handler returns, so a crash repeats at most the event being handled. When the handler raises,
  the consumer goes back to that event (polling again retries it) and the error propagates.
- A lock file next to the checkpoint keeps two consumers from sharing one checkpoint.
- Records that are not incident events are logged and skipped. The per-incident map is bounded
  (:class:`~connectors.dispatch.queue.DispatchLimits`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from connectors.dispatch.queue import (
    Check,
    CheckpointError,
    DispatchLedger,
    DispatchLimits,
    InvalidDispatchRecord,
)
from connectors.kafka import tail_consumer
from models.errors import ConnectorError

__all__ = ["DispatchConsumer", "Handler", "load_checkpoint", "save_checkpoint"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]
"""Called with each new event record (the decoded JSON value); it may raise to stop."""

FORGET_EVERY_S = 60.0
"""How often (wall clock) the consumer drops incidents it no longer needs to remember."""


def load_checkpoint(path: Path, topic: str) -> DispatchLedger:
    """The ledger saved at ``path`` for ``topic``; a fresh one if there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return DispatchLedger(topic)
    except OSError as exc:
        msg = f"cannot read it: {exc}"
        raise CheckpointError(str(path), msg) from exc
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        msg = f"not JSON: {exc}"
        raise CheckpointError(str(path), msg) from exc
    ledger = DispatchLedger.from_record(record, source=str(path))
    if ledger.topic != topic:
        msg = f"it is the position in topic {ledger.topic!r}, not in {topic!r}"
        raise CheckpointError(str(path), msg)
    return ledger


def save_checkpoint(path: Path, ledger: DispatchLedger) -> None:
    """Write ``ledger`` to ``path`` atomically: a reader sees the old file or the new, whole."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temp.open("wb") as out:
            out.write(orjson.dumps(ledger.to_record(), option=orjson.OPT_INDENT_2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        msg = f"cannot write it: {exc}"
        raise CheckpointError(str(path), msg) from exc


class DispatchConsumer:
    """Reads one department's dispatch topic from where its checkpoint says (see module doc)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        checkpoint: Path,
        *,
        limits: DispatchLimits | None = None,
        clock: Callable[[], float] = time.time,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.checkpoint = checkpoint
        self.limits = limits or DispatchLimits()
        self._clock = clock
        self._config = dict(config or {})
        self.ledger = DispatchLedger(topic)
        self._consumer: Consumer | None = None
        self._lock: IO[bytes] | None = None
        self._ends: dict[int, tuple[int, int]] = {}
        self._forgot_at = float("-inf")
        self._idle = False

    def __enter__(self) -> DispatchConsumer:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Lock and load the checkpoint, assign every partition from where it says."""
        self._lock = _lock(self.checkpoint)
        try:
            self.ledger = load_checkpoint(self.checkpoint, self.topic)
            self._consumer = tail_consumer(self.bootstrap, [self.topic], config=self._config)
            partitions = sorted(tp.partition for tp in self._consumer.assignment())
            self._ends = {p: self._watermarks(p) for p in partitions}
            self._assign()
            self._idle = False
        except BaseException:
            self.close()
            raise
        log.info("dispatch: reading %s from %s (%d incidents remembered)", self.topic,
                 self._positions() or "the beginning", len(self.ledger.marks))

    def close(self) -> None:
        """Let go of the topic and the lock (every change is saved as it is made)."""
        try:
            if self._consumer is not None:
                self._consumer.close()
        finally:
            self._consumer = None
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def caught_up(self) -> bool:
        """Whether every partition has been read up to where it ended when the consumer opened
        and the last poll found nothing more.

        Both, because some brokers (Tansu 0.6) report as a partition's end the first offset of
        its last record batch plus one: reaching it means that batch is here, not handled. On a
        topic that never pauses this waits for the first quiet poll.
        """
        if not self._idle:
            return False
        for partition, (low, high) in self._ends.items():
            position = self.ledger.next_offset(partition)
            if high > low and (position if position is not None else low) < high:
                return False
        return True

    def run(
        self, handler: Handler, *, stop: threading.Event | None = None, once: bool = False,
        poll_s: float = 0.2,
    ) -> DispatchLedger:
        """Handle events until ``stop`` is set or, with ``once``, until :meth:`caught_up`; the
        ledger (its counters say what happened)."""
        while stop is None or not stop.is_set():
            if once and self.caught_up():
                break
            self.poll(handler, timeout=poll_s)
        return self.ledger

    def poll(self, handler: Handler, *, timeout: float = 0.2) -> int:
        """Handle what arrives within ``timeout`` s; the number of events handed to ``handler``."""
        if self._consumer is None:
            msg = f"dispatch consumer of {self.topic!r} is not open"
            raise RuntimeError(msg)
        try:
            messages = self._consumer.consume(500, timeout)
        except KafkaException as exc:
            msg = f"cannot read dispatch topic {self.topic!r}: {exc.args[0]}"
            raise ConnectorError("kafka", self.bootstrap, msg) from exc
        self._idle = not messages
        delivered = 0
        dirty = False
        for message in messages:
            if message.error() is not None:
                _report(message.error(), self.topic, self.bootstrap)
                continue
            if self._take(message, handler):
                delivered += 1
            else:
                dirty = True
        if self._clock() - self._forgot_at >= FORGET_EVERY_S:
            self._forgot_at = self._clock()
            dirty = bool(self.ledger.forget(now=self._forgot_at, limits=self.limits)) or dirty
        if dirty:
            save_checkpoint(self.checkpoint, self.ledger)
        return delivered

    def _take(self, message: Any, handler: Handler) -> bool:
        """Handle one record and checkpoint it; whether the handler got it."""
        partition, offset = message.partition(), message.offset()
        try:
            record = orjson.loads(message.value() or b"")
            check = self.ledger.check(record)
        except (orjson.JSONDecodeError, InvalidDispatchRecord) as exc:
            log.error("dispatch: skipping %s[%d]@%d: %s", self.topic, partition, offset, exc)
            self.ledger.skip_invalid(partition, offset)
            return False
        if not check.deliver:
            log.debug("dispatch: duplicate %s:%06d skipped (handled up to %s)",
                      check.mark.incident_id, check.mark.sequence, check.last)
            self.ledger.commit(partition, offset, check)
            return False
        _log_check(check)
        try:
            handler(record)
        except BaseException:
            self._assign()  # back to the first record not handled: polling again retries it
            self._idle = False
            raise
        self.ledger.commit(partition, offset, check)
        save_checkpoint(self.checkpoint, self.ledger)
        return True

    def _assign(self) -> None:
        assert self._consumer is not None
        self._consumer.assign([
            TopicPartition(self.topic, p, _or_beginning(self.ledger.next_offset(p)))
            for p in self._ends
        ])

    def _watermarks(self, partition: int) -> tuple[int, int]:
        assert self._consumer is not None
        try:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=10
            )
        except KafkaException as exc:
            msg = f"cannot read the end of {self.topic!r} partition {partition}: {exc.args[0]}"
            raise ConnectorError("kafka", self.bootstrap, msg) from exc
        if (position := self.ledger.next_offset(partition)) is not None and position > high:
            log.warning("dispatch: checkpoint %s is at offset %d of %s partition %d, which ends "
                        "at %d (topic recreated?)", self.checkpoint, position, self.topic,
                        partition, high)
        return int(low), int(high)

    def _positions(self) -> str:
        offsets = sorted(self.ledger.offsets.items())
        return ", ".join(f"partition {p} offset {o}" for p, o in offsets)


def _or_beginning(offset: int | None) -> int:
    return OFFSET_BEGINNING if offset is None else offset


def _log_check(check: Check) -> None:
    mark = check.mark
    if check.verdict == "gap":
        log.warning("dispatch: incident %s jumped from event %d to %d: %d events never came",
                    mark.incident_id, check.last, mark.sequence,
                    mark.sequence - (check.last or 0) - 1)
    elif check.verdict == "first" and mark.sequence > 1:
        log.info("dispatch: incident %s first seen at event %d (routed here mid-life)",
                 mark.incident_id, mark.sequence)


def _report(error: KafkaError, topic: str, bootstrap: str) -> None:
    if error.fatal():
        msg = f"cannot read dispatch topic {topic!r}: {error}"
        raise ConnectorError("kafka", bootstrap, msg)
    log.warning("dispatch: Kafka reports %s on %s", error, topic)


def _lock(checkpoint: Path) -> IO[bytes]:
    """An exclusive lock on ``<checkpoint>.lock``; CheckpointError if another consumer holds it."""
    path = checkpoint.with_name(f"{checkpoint.name}.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab")
    except OSError as exc:
        msg = f"cannot create its lock file {path}: {exc}"
        raise CheckpointError(str(checkpoint), msg) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        msg = f"another dispatch consumer is using it (lock {path})"
        raise CheckpointError(str(checkpoint), msg) from None
    return handle
