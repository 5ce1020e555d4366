"""The two witnesses of a soak run: a publisher that logs what the broker acknowledged, and a
feed client that checks the seqs it is sent.

    publisher = AckedPublisher(settings, rate=1000, count=300_000, ack_path=Path("acked.txt"))
    publisher.start()                 # its own thread; publisher.done is set when it finishes
    feed = FeedAudit(feed_url)
    feed.start()                      # its own thread; connected throughout, resuming by seq
    ...
    publisher.join(); feed.stop()
    read_acked(Path("acked.txt"))     # {(device_id, seq)} the broker acknowledged (PUBACK)
    feed.gaps, feed.alert_ids

:class:`AckedPublisher` publishes the simulated city (:mod:`cityheart.simulation`, QoS 1 through
:class:`connectors.mqtt.MqttPublisher`, which re-sends what is unacknowledged after a lost
connection, and publishes again what was acknowledged in the :data:`RESEND_ACKED_S` before it)
at a steady rate and writes ``<device_id> <seq>`` for every PUBACK, the ground truth of what
must reach storage.

:class:`FeedAudit` is a :class:`connectors.feed.client.FeedClient` subscribed to every channel,
district and kind with ``since=0``, so every message of the feed reaches it. It checks each
message against the seq it expects: after ``subscribed`` with ``since=N``, N+1, N+2, ...; after
a snapshot (``since`` null, ``replay`` R, ``last_seq`` L), R replayed messages then L+1, ... A
heartbeat's ``last_seq`` at or past the expected seq also counts the seqs it skipped. Seqs
missing that way are :attr:`FeedAudit.gaps`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import orjson

from cityheart.simulation import Schedule, Simulator
from connectors.feed.client import FeedClient
from connectors.mqtt import MqttPublisher, protocol_of
from models.timefmt import from_iso
from settings.config import Settings

__all__ = ["RESEND_ACKED_S", "AckedPublisher", "FeedAudit", "read_acked"]

log = logging.getLogger(__name__)

TICK_S = 0.005
FLUSH_TIMEOUT_S = 60.0
_MAX_BURST = 2000
RESEND_ACKED_S = 5.0
"""After a lost broker connection the publisher publishes again what the broker acknowledged in
this many seconds before it: mosquitto with ``autosave_interval 1`` saves about every 2 s (it
compares whole seconds), so a broker killed between two saves forgets what it acknowledged
since the last one and had not yet handed to the bridge. Measured gaps between saves: 2.0 s,
at most 2.25 s on a loaded 2-core box; 5 s leaves room for a slow save."""


def read_acked(path: Path) -> set[tuple[str, int]]:
    """The (device_id, seq) pairs an :class:`AckedPublisher` logged to ``path``."""
    acked = set()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            device, _, seq = line.rstrip("\n").partition(" ")
            if seq:
                acked.add((device, int(seq)))
    return acked


class AckedPublisher:
    """Publish ``count`` readings (or for ``duration_s``) at ``rate``, logging every PUBACK."""

    def __init__(
        self, settings: Settings, *, rate: float, ack_path: Path, devices: int,
        scenario: str, seed: int, count: int | None = None, duration_s: float | None = None,
        client_id: str = "cityheart-soak",
    ) -> None:
        self._simulator = Simulator.from_settings(settings, devices=devices, seed=seed,
                                                  scenario=scenario)
        self._schedule = Schedule(devices, rate)
        self._count = count
        self._duration_s = duration_s
        self._out: TextIO = ack_path.open("a", encoding="utf-8")
        self.last_ack = 0.0
        mqtt = settings.mqtt
        self.publisher = MqttPublisher(
            mqtt.url, client_id, max_inflight=1000, on_acked=self._on_acked,
            protocol=protocol_of(mqtt.protocol), persistent=True,  # a device's own session
            resend_acked_s=RESEND_ACKED_S,
        )
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="soak-publisher", daemon=True)

    def _on_acked(self, topic: str, payload: bytes) -> None:  # paho's thread, lock held
        self._out.write(f"{topic.rsplit('/', 1)[1]} {orjson.loads(payload)['seq']}\n")
        self.last_ack = time.monotonic()

    def start(self) -> None:
        """Connect and start publishing on a thread of its own."""
        self.publisher.connect()
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the end (count or duration reached, or :meth:`stop`), flush the log."""
        self._thread.join(timeout)

    def stop(self) -> None:
        """Stop publishing early (what is in flight is still waited for)."""
        self.stop_event.set()

    def _run(self) -> None:
        try:
            self._publish()
            if not self.publisher.flush(FLUSH_TIMEOUT_S):
                log.error("soak: %d readings still unacknowledged after %g s",
                          self.publisher.in_flight, FLUSH_TIMEOUT_S)
        except BaseException as exc:  # reported by the soak, which then fails
            log.exception("soak: the publisher failed")
            self.error = exc
        finally:
            self.publisher.close()
            self._out.close()
            self.done.set()

    def _publish(self) -> None:
        start = time.monotonic()
        schedule, publisher = self._schedule, self.publisher
        limit = -1 if self._count is None else self._count
        last_slot = None if self._duration_s is None else schedule.due(self._duration_s - 1e-9)
        slot = 0
        while not self.stop_event.is_set():
            elapsed = time.monotonic() - start
            if publisher.published == limit or (last_slot is not None and slot >= last_slot):
                return
            due = min(schedule.due(elapsed), slot + _MAX_BURST)
            if last_slot is not None:
                due = min(due, last_slot)
            while slot < due and publisher.published != limit:
                item = self._simulator.reading(schedule.device(slot), time.time(), elapsed)
                slot += 1
                if item is None:
                    continue
                while not publisher.publish(item[0], item[1], timeout=0.25):
                    if self.stop_event.is_set():
                        return
            pause = min(TICK_S, schedule.time_of(slot) - (time.monotonic() - start))
            if pause > 0:
                self.stop_event.wait(pause)


class _AuditedClient(FeedClient):
    """A FeedClient that shows the audit every frame, control messages included."""

    def __init__(self, url: str, audit: FeedAudit) -> None:
        super().__init__(url, since=0, dedupe=False, connect_timeout=60.0,
                         reconnect_timeout=None)
        self._audit = audit

    def _handle(self, frame: str | bytes) -> dict[str, Any] | None:
        self._audit.observe(orjson.loads(frame), self.epoch)
        return super()._handle(frame)


class FeedAudit:
    """A feed client connected throughout, counting seq gaps; see the module doc."""

    def __init__(self, url: str) -> None:
        self.gaps = 0
        self.out_of_order = 0
        self.messages = 0
        self.subscriptions = 0
        self.epochs: list[str] = []
        self.alert_ids: set[str] = set()
        self.latest_emitted = 0.0
        """Latest ``emitted_at`` (epoch s) of a vital or indicator: when the flow last spoke."""
        self._skip = 0
        self._after_skip: int | None = None
        self._expected: int | None = None
        self._lock = threading.Lock()
        self._client = _AuditedClient(url, self)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-feed", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        """Connect and subscribe (on its own thread); wait until the feed confirmed it."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self.subscriptions == 0:
            if time.monotonic() > deadline or not self._thread.is_alive():
                msg = f"the feed at {self._client.url} did not confirm a subscription"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def stop(self) -> None:
        """Disconnect."""
        self._stop.set()
        self._thread.join(10)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._client.next_message(time.monotonic() + 0.2)

    def seen_alerts(self) -> set[str]:
        """The ids of the alerts received so far."""
        with self._lock:
            return set(self.alert_ids)

    def observe(self, message: dict[str, Any], epoch: str | None) -> None:
        """Check one frame as it arrives (the client's thread)."""
        with self._lock:
            if epoch is not None and epoch not in self.epochs:
                self.epochs.append(epoch)
            kind = message.get("type")
            if "seq" in message:  # data messages, whatever their type, carry a seq
                self._data(message)
            elif kind == "subscribed":
                self.subscriptions += 1
                self._subscribed(message)
            elif kind == "heartbeat" and self._expected is not None and not self._skip:
                last = int(message["last_seq"])
                if last >= self._expected:
                    log.error("feed audit: heartbeat at seq %d, messages %d-%d never came",
                              last, self._expected, last)
                    self.gaps += last - self._expected + 1
                    self._expected = last + 1

    def _subscribed(self, message: dict[str, Any]) -> None:
        since = message.get("since")
        if since is None:  # a snapshot: ``replay`` messages, then live from last_seq + 1
            self._skip = int(message.get("replay", 0))
            self._after_skip = int(message["last_seq"]) + 1
            self._expected = None if self._skip else self._after_skip
        else:
            self._skip = 0
            self._expected = int(since) + 1

    def _data(self, message: dict[str, Any]) -> None:
        self.messages += 1
        if message["type"] == "alert":
            self.alert_ids.add(str(message.get("id")))
        elif message["type"] in ("vital", "indicator") and message.get("emitted_at"):
            self.latest_emitted = max(self.latest_emitted, from_iso(message["emitted_at"]))
        seq = int(message["seq"])
        if self._skip:
            self._skip -= 1
            if not self._skip:
                self._expected = self._after_skip
            return
        if self._expected is not None and seq != self._expected:
            if seq > self._expected:
                log.error("feed audit: expected seq %d, got %d", self._expected, seq)
                self.gaps += seq - self._expected
            else:
                self.out_of_order += 1
        self._expected = seq + 1
