"""The delivery outbox: every message tried until its channel takes it, or dead-lettered.

Messages wait as files (one JSON file each, replaced atomically) in ``<state_dir>/pending``;
a worker thread tries each when it is due, backing off exponentially between attempts
(:func:`retry_delay`). One that fails ``attempts`` times, or fails in a way not worth
retrying, moves to ``<state_dir>/dead-letters``, where it stays until replayed::

    outbox = Outbox(channels, Path("var/notify"), retry=settings.notifications.retry,
                    on_outcome=record)       # record(message, "delivered" | "failed", details)
    outbox.start()
    outbox.submit(message)                  # False: this id is pending or dead already
    ...
    outbox.close()

    dead = DeadLetters(Path("var/notify"))  # what `cityheart notify dead-letters` lists
    dead.list(); dead.replay()              # back to pending: the running notifier retries them

Submitting is idempotent by message id (the idempotency key a webhook receiver sees): an id
pending, dead or delivered within ``remember_s`` (an empty marker file in
``<state_dir>/delivered``) is not taken again, so a notifier that handles an event a second time
after a crash sends nothing twice. The pending directory is read again every ``rescan_s``, so
messages a replay put back (from another process) are picked up, and so are those of a notifier
that stopped before delivering them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from connectors.notifications.channels import Channel, DeliveryFailed, Message
from models.timefmt import from_iso, iso
from settings.notifications import RetrySettings

__all__ = ["DeadLetters", "Delivery", "Outbox", "Outcome", "retry_delay"]

log = logging.getLogger(__name__)

Outcome = Callable[[Message, str, dict[str, Any]], None]
"""Told of each message's end: ``delivered`` or ``failed`` (dead-lettered), with details
(attempts, error)."""


def retry_delay(retry: RetrySettings, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return float(min(retry.max_s, retry.initial_s * retry.factor ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message and how its delivery went so far."""

    message: Message
    submitted_at: float
    attempts: int = 0
    next_at: float = 0.0
    last_error: str | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"message": self.message.to_record(), "submitted_at": iso(self.submitted_at),
                "attempts": self.attempts, "next_at": self.next_at,
                "last_error": self.last_error}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Delivery:
        """The delivery of a :meth:`to_record` dict."""
        return cls(Message.from_record(record["message"]), from_iso(record["submitted_at"]),
                   int(record.get("attempts", 0)), float(record.get("next_at", 0.0)),
                   record.get("last_error"))


class _Folder:
    """One JSON file per delivery, named by message id, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, message_id: str) -> Path:
        return self.path / f"{message_id}.json"

    def write(self, delivery: Delivery) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.file(delivery.message.id)
        temp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_bytes(orjson.dumps(delivery.to_record()))
        os.replace(temp, target)

    def read(self, message_id: str) -> Delivery | None:
        try:
            return Delivery.from_record(orjson.loads(self.file(message_id).read_bytes()))
        except FileNotFoundError:
            return None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("notify: unreadable delivery file %s: %s", self.file(message_id), exc)
            return None

    def ids(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.stem for p in self.path.glob("*.json") if not p.name.startswith("."))

    def remove(self, message_id: str) -> None:
        self.file(message_id).unlink(missing_ok=True)


class DeadLetters:
    """The deliveries that never succeeded: list them, replay them (see module doc)."""

    def __init__(self, state_dir: Path) -> None:
        self._dead = _Folder(state_dir / "dead-letters")
        self._pending = _Folder(state_dir / "pending")

    def list(self) -> list[Delivery]:
        """Every dead letter, oldest submission first."""
        found = [d for i in self._dead.ids() if (d := self._dead.read(i)) is not None]
        return sorted(found, key=lambda d: d.submitted_at)

    def has(self, message_id: str) -> bool:
        """Whether ``message_id`` is a dead letter."""
        return self._dead.file(message_id).exists()

    def add(self, delivery: Delivery) -> None:
        """Keep ``delivery`` as a dead letter (and no longer pending)."""
        self._dead.write(delivery)
        self._pending.remove(delivery.message.id)

    def replay(self, ids: Iterable[str] = ()) -> list[str]:
        """Put dead letters (``ids``, or all) back in the pending folder, attempts reset; the
        ids put back."""
        wanted = list(ids) or self._dead.ids()
        done = []
        for message_id in wanted:
            delivery = self._dead.read(message_id)
            if delivery is None:
                continue
            self._pending.write(replace(delivery, attempts=0, next_at=0.0, last_error=None))
            self._dead.remove(message_id)
            done.append(message_id)
        return done


class Outbox:
    """Delivers messages through their channels, retrying, dead-lettering (see module doc)."""

    def __init__(
        self, channels: Mapping[str, Channel], state_dir: Path, *, retry: RetrySettings,
        on_outcome: Outcome | None = None, clock: Callable[[], float] = time.time,
        rescan_s: float = 1.0, remember_s: float = 7 * 86400.0,
    ) -> None:
        self.channels = channels
        self.retry = retry
        self._pending = _Folder(state_dir / "pending")
        self._delivered = state_dir / "delivered"
        self._remember_s = remember_s
        self.dead_letters = DeadLetters(state_dir)
        self.on_outcome = on_outcome
        """Told of each message's end (may be set after construction)."""
        self._clock = clock
        self._rescan_s = rescan_s
        self._due: dict[str, float] = {}
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def submit(self, message: Message) -> bool:
        """Queue ``message``; False (nothing done) if it is pending or dead-lettered already."""
        if self._pending.file(message.id).exists() or self.dead_letters.has(message.id) \
                or (self._delivered / message.id).exists():
            return False
        self._pending.write(Delivery(message, submitted_at=self._clock()))
        with self._wake:
            self._due[message.id] = 0.0
            self._wake.notify()
        return True

    def start(self) -> None:
        """Start the worker thread (it first takes up what is pending on disk); forget
        deliveries older than ``remember_s``."""
        self._forget_delivered()
        self._thread = threading.Thread(target=self._run, name="notify-outbox", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker (what is pending stays on disk for the next start)."""
        self._stop.set()
        with self._wake:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def pending(self) -> list[str]:
        """The ids waiting for delivery."""
        return self._pending.ids()

    def run_due(self, *, rescan: bool = True) -> int:
        """Try every delivery due now once (the worker's step; tests call it directly),
        after reading the pending directory again unless ``rescan`` is false; the number
        tried."""
        if rescan:
            self._rescan()
        now = self._clock()
        with self._wake:
            due = [i for i, at in sorted(self._due.items(), key=lambda kv: kv[1]) if at <= now]
        for message_id in due:
            self._attempt(message_id)
        return len(due)

    def _run(self) -> None:
        rescanned = float("-inf")
        while not self._stop.is_set():
            try:
                if time.monotonic() - rescanned >= self._rescan_s:
                    self._rescan()
                    rescanned = time.monotonic()
                self.run_due(rescan=False)
            except Exception:  # the worker must go on: log and carry on with the rest
                log.exception("notify: outbox step failed")
            with self._wake:
                soonest = min(self._due.values(), default=None)
                wait = self._rescan_s if soonest is None else soonest - self._clock()
                self._wake.wait(max(0.0, min(wait, self._rescan_s)))

    def _forget_delivered(self) -> None:
        if not self._delivered.is_dir():
            return
        before = time.time() - self._remember_s
        for marker in self._delivered.iterdir():
            with contextlib.suppress(OSError):
                if marker.stat().st_mtime < before:
                    marker.unlink()

    def _rescan(self) -> None:
        on_disk = set(self._pending.ids())
        with self._wake:
            for message_id in on_disk - self._due.keys():
                delivery = self._pending.read(message_id)
                if delivery is not None:
                    self._due[message_id] = delivery.next_at
            for message_id in self._due.keys() - on_disk:
                del self._due[message_id]

    def _attempt(self, message_id: str) -> None:
        delivery = self._pending.read(message_id)
        if delivery is None:
            with self._wake:
                self._due.pop(message_id, None)
            return
        message = delivery.message
        attempts = delivery.attempts + 1
        channel = self.channels.get(message.channel)
        try:
            if channel is None:
                raise DeliveryFailed(message.channel, str(message.address),
                                     f"no channel {message.channel!r} is configured; "
                                     f"one of {sorted(self.channels)}", retryable=False)
            channel.send(message)
        except DeliveryFailed as exc:
            self._failed(delivery, attempts, exc)
            return
        self._delivered.mkdir(parents=True, exist_ok=True)
        (self._delivered / message_id).touch()
        self._pending.remove(message_id)
        with self._wake:
            self._due.pop(message_id, None)
        self.delivered += 1
        self._tell(message, "delivered", {"attempts": attempts})

    def _failed(self, delivery: Delivery, attempts: int, exc: DeliveryFailed) -> None:
        message = delivery.message
        if exc.retryable and attempts < self.retry.attempts:
            next_at = self._clock() + retry_delay(self.retry, attempts)
            self._pending.write(replace(delivery, attempts=attempts, next_at=next_at,
                                        last_error=str(exc)))
            with self._wake:
                self._due[message.id] = next_at
            log.info("notify: %s attempt %d failed (%s); again in %.2f s", message.id,
                     attempts, exc.reason, next_at - self._clock())
            return
        self.dead_letters.add(replace(delivery, attempts=attempts, last_error=str(exc)))
        with self._wake:
            self._due.pop(message.id, None)
        self.failed += 1
        log.warning("notify: %s dead-lettered after %d attempts: %s", message.id, attempts, exc)
        self._tell(message, "failed", {"attempts": attempts, "error": str(exc)})

    def _tell(self, message: Message, status: str, details: dict[str, Any]) -> None:
        if self.on_outcome is None:
            return
        try:
            self.on_outcome(message, status, details)
        except Exception:
            log.exception("notify: recording %s of %s failed", status, message.id)
