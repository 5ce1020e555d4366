"""The MQTT-to-Kafka bridge: device readings in, validated records out, at least once.

    bridge = Bridge(settings)
    bridge.start()            # connects to both brokers, subscribes <prefix>/+/+/+ and
                              # <prefix>/gateway/+ at QoS 1
    ...
    bridge.stop()             # forwards what is in hand, then disconnects

Each MQTT message is acknowledged (PUBACK) only after Kafka confirmed the record that holds its
reading, so a crash or restart never loses a reading the broker accepted: the broker redelivers
whatever was not acknowledged to the bridge's persistent session (fixed client id, clean start
off). A reading may therefore reach Kafka twice after a crash; downstream keys make that
harmless.

Valid readings go to the readings topic in batches (:mod:`connectors.batcher`): the readings
accepted within ``kafka.readings_batch.linger_ms`` (bounded by ``max_readings`` and
``max_bytes``) become one record per partition, value :class:`models.reading_batch.ReadingBatch`
(columnar JSON with a format version), produced to an explicit partition: the one librdkafka's
default partitioner gives the device id (CRC32), so a device's readings stay in one partition,
in order. The record has no key. The topic's partition count is read when the bridge starts. A
payload that cannot become a reading goes to the dead-letter topic with its original bytes and
the reason in headers (:mod:`connectors.dead_letters`: reason, detail, mqtt_topic, received_at,
source=bridge). Nothing is dropped silently. A reading refused as out of range is also written
to the rejections topic as a :class:`~models.vitals.records.Rejection` record (district, kind,
device, ts; key = device_id), which the flow counts against the device's health: its MQTT
message is acknowledged once Kafka has both records.

Gateways publish SenML packs (RFC 8428, JSON; :mod:`models.senml`) on
``<prefix>/gateway/<gateway_id>``, many readings in one message, each record named
``<district>/<kind>/<device_id>``. Each accepted record goes the way of a single reading; a
refused one goes to the dead-letter topic as its own dead letter (the record, resolved, with its
``pack_index`` header), and the rest of the pack goes on. The MQTT message is acknowledged once
Kafka confirmed every record it became. A pack refused whole (not JSON, not an array, a later
SenML version, an unknown must-understand field, over ``mqtt.max_pack_bytes``) is one dead letter.

Hostile or broken devices: each device (MQTT topic) has a token bucket (``mqtt.rate_limit``,
:class:`connectors.rate_limit.RateLimiter`, checked before any parsing); a message over it goes to
the dead-letter topic with reason ``rate_limited`` and is not parsed, so a flooding device costs
the others little. A gateway's records count against their own devices' buckets (keyed by the
topic the device would publish on), record by record, after parsing. Throttled devices and
their counts are logged at most every ``report_every_s``. A payload over
``mqtt.max_payload_bytes`` is dead-lettered as ``oversized``; a dead letter keeps at most the first
``max_payload_bytes`` bytes of its payload (the detail header then says so).

Several processes (``mqtt.bridge_processes`` > 1, MQTT 5 only): member ``index`` connects as
``<bridge_client_id>-<index>`` (a persistent session of its own) and subscribes to the shared
subscription ``$share/<bridge_group>/<prefix>/+/+/+`` (and ``.../<prefix>/gateway/+``), so the
broker hands each message to one member (mosquitto 2.0: in turn, offline members included;
their share waits in their session until they are back). The rate limit then holds per member:
a device's messages go to any member, so it may send up to ``bridge_processes`` times its limit.
"""

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from connectors.batcher import Batcher, Ready
from connectors.kafka import ReliableProducer, create_topics, partitions_of
from connectors.metrics import (
    BRIDGE_ACKNOWLEDGED,
    DEAD_LETTERS,
    MQTT_MESSAGES,
    READINGS_INGESTED,
)
from connectors.mqtt import MqttClient, new_client, protocol_of
from connectors.notify import Notifier
from connectors.rate_limit import RateLimiter
from connectors.readings_out import ReadingsOut
from models.errors import ConfigError, ConnectorError, InvalidReading
from models.readings import UNPLACED, Reading, encode
from models.senml import RecordRefusal
from models.vitals.devices import encode_rejection
from settings.config import MqttSettings, Settings
from settings.params import pack_parser, reading_parser

__all__ = [
    "GATEWAY_LEVEL",
    "Bridge",
    "BridgeStats",
    "gateway_subscription",
    "member_client_id",
    "run_bridge",
    "subscription",
]

log = logging.getLogger(__name__)

_REPORTED_DEVICES = 20  # throttled devices named in one report; the rest are summed

GATEWAY_LEVEL = "gateway"
"""Gateways publish SenML packs on ``<prefix>/gateway/<gateway_id>`` (device topics have four
levels, so no district id can be mistaken for it)."""


def subscription(mqtt: MqttSettings) -> str:
    """The topic filter the bridge subscribes to: shared by the group when several processes."""
    pattern = f"{mqtt.topic_prefix}/+/+/+"
    return f"$share/{mqtt.bridge_group}/{pattern}" if mqtt.bridge_processes > 1 else pattern


def gateway_subscription(mqtt: MqttSettings) -> str:
    """The topic filter of gateways' SenML packs: shared by the group when several processes."""
    pattern = f"{mqtt.topic_prefix}/{GATEWAY_LEVEL}/+"
    return f"$share/{mqtt.bridge_group}/{pattern}" if mqtt.bridge_processes > 1 else pattern


def member_client_id(mqtt: MqttSettings, index: int) -> str:
    """The MQTT client id of bridge member ``index`` (``bridge_client_id`` when it is alone)."""
    if not 0 <= index < mqtt.bridge_processes:
        msg = f"bridge member index {index} is not in 0..{mqtt.bridge_processes - 1}"
        raise ConfigError("bridge", "mqtt.bridge_processes", msg)
    if mqtt.bridge_processes == 1:
        return mqtt.bridge_client_id
    return f"{mqtt.bridge_client_id}-{index}"

@dataclass
class BridgeStats:
    """What the bridge has done since it started."""

    received: int = 0
    forwarded: int = 0
    packs: int = 0
    dead_lettered: int = 0
    acknowledged: int = 0
    batches: int = 0
    """readings records produced (each a batch of forwarded readings)."""
    reasons: dict[str, int] = field(default_factory=dict)
    connects: int = 0


class Bridge:
    """Forward MQTT readings to Kafka, acknowledging each only once Kafka has it."""

    def __init__(
        self, settings: Settings, *, clock: Any = time.time, index: int = 0,
        notifier: Notifier | None = None,
    ) -> None:
        self._settings = settings
        self._notifier = notifier or Notifier(None)
        self._mqtt = settings.mqtt
        self._client_id = member_client_id(settings.mqtt, index)
        self._filter = subscription(settings.mqtt)
        self._gateway_filter = gateway_subscription(settings.mqtt)
        self._topics = settings.kafka.topics
        self._clock = clock
        self._parser = reading_parser(settings)
        self._packs = pack_parser(settings)
        # the batcher gathers readings; librdkafka's own linger only lets the records of several
        # partitions that are ready together share a produce request
        self._producer = ReliableProducer(settings.kafka.bootstrap, linger_ms=1)
        self._batching = settings.kafka.readings_batch
        self._batcher: Batcher | None = None  # once start() knows the partitions
        self._batch_lock = threading.Lock()  # paho's thread and serve() both send batches
        # dead letters and rejection records, one record each, as every way in writes them
        self._out = ReadingsOut(self._producer, self._topics,
                                keep_bytes=settings.mqtt.max_payload_bytes)
        limit = settings.mqtt.rate_limit
        self._limiter = (
            RateLimiter(limit.per_device_per_s, limit.burst, max_keys=limit.max_devices)
            if limit.enabled else None
        )
        self._throttle_detail = (
            f"the device sent more than {limit.per_device_per_s:g} messages a second (burst "
            f"{limit.burst}): not forwarded"
        )
        self._report_every = limit.report_every_s
        self._reported_at = time.monotonic()
        self._report_due = 0.0  # the first throttled message is reported at once
        self._client = self._new_client()
        self._connected = threading.Event()
        self._accepting = True
        self.stats = BridgeStats()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Connect to the MQTT broker and subscribe; raise ConnectorError if it cannot (or if
        the readings topic does not exist)."""
        batching = self._batching
        self._batcher = Batcher(
            len(partitions_of(self._settings.kafka.bootstrap, self._topics.readings,
                              timeout=timeout)),
            linger_s=batching.linger_ms / 1000, max_readings=batching.max_readings,
            max_bytes=batching.max_bytes,
        )
        self._client.start(timeout=timeout)
        if not self._connected.wait(timeout):
            self._client.stop()
            msg = f"could not subscribe within {timeout:g} s"
            raise ConnectorError("mqtt", self._mqtt.url, msg)

    def serve(self, stop: threading.Event) -> None:
        """Send batches when their interval is over and serve Kafka delivery reports (which
        acknowledge MQTT messages) until ``stop`` is set."""
        next_report = time.monotonic() + 10
        linger = self._batching.linger_ms / 1000
        while not stop.is_set():
            # paho's thread sends full batches, and due ones when a message comes; this loop
            # sends the rest on time: it wakes at least every linger (at most every 50 ms)
            self._producer.poll(min(0.05, max(linger / 2, 0.001)))
            self.send_due()
            if time.monotonic() >= next_report:
                next_report += 10
                self._log_stats()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking messages, deliver and acknowledge those in hand, then disconnect."""
        self._accepting = False
        try:
            if self._batcher is not None:
                with self._batch_lock:
                    self._produce_batches(self._batcher.drain())
            self._producer.flush(timeout)
        finally:
            self._client.stop()
            if self._limiter is not None and self._limiter.throttled:
                self._report_throttling(time.monotonic())
            self._log_stats()

    # -- MQTT callbacks (paho's network thread) ----------------------------------------------

    def _new_client(self) -> MqttClient:
        password = self._mqtt.password.get_secret_value() if self._mqtt.password else None
        client = new_client(
            self._mqtt.url,
            self._client_id,
            username=self._mqtt.username,
            password=password,
            persistent=True,  # the broker queues readings for us while we are away
            protocol=protocol_of(self._mqtt.protocol),
        )
        client.manual_ack_set(True)  # PUBACK only once Kafka has the record
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the bridge: %s", self._mqtt.url, reason)
            return
        self.stats.connects += 1
        pattern = f"{self._filter} and {self._gateway_filter}"
        result, _ = client.subscribe([(self._filter, 1), (self._gateway_filter, 1)])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("cannot subscribe to %s on %s: %s", pattern, self._mqtt.url, result)
            return
        log.info(
            "bridge %s connected to %s (session present: %s), subscribing to %s",
            self._client_id,
            self._mqtt.url,
            flags.session_present,
            pattern,
        )

    def _on_subscribe(
        self, client: Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        # ready once the broker confirmed the subscription (SUBACK), not when it was asked
        # for: a reading published in between would find no subscriber and be dropped
        pattern = self._filter
        if not reasons or any(reason.is_failure for reason in reasons):
            log.error("MQTT broker %s refused the subscription to %s: %s", self._mqtt.url,
                      pattern, reasons)
            return
        log.info("bridge %s subscribed to %s", self._client_id, pattern)
        self._notifier.status(f"subscribed to {pattern}")
        self._notifier.ready()  # again after every reconnect: the supervisor counts them
        self._connected.set()

    def _on_disconnect(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason: ReasonCode,
        props: Any,
    ) -> None:
        if self._accepting:
            log.warning("bridge lost MQTT connection to %s (%s); reconnecting",
                        self._mqtt.url, reason)

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        if not self._accepting:
            return  # not acknowledged: the broker redelivers it to the next session
        self.stats.received += 1
        MQTT_MESSAGES.inc()
        payload = message.payload
        mid, qos = message.mid, message.qos

        def acknowledge() -> None:
            client.ack(mid, qos)
            self.stats.acknowledged += 1
            BRIDGE_ACKNOWLEDGED.inc()

        topic = message.topic
        if self._is_gateway(topic):
            self._on_pack(payload, topic, acknowledge)
            return
        limiter = self._limiter
        if limiter is not None:
            now = time.monotonic()
            allowed = limiter.allow(topic, now)
            if now >= self._report_due and limiter.throttled:
                self._report_throttling(now)
            if not allowed:
                exc = InvalidReading(payload, "rate_limited", self._throttle_detail)
                self._dead_letter(exc, topic, acknowledge)
                return
        try:
            reading = self._parser.parse(payload, topic, self._clock())
        except InvalidReading as exc:
            self._dead_letter(exc, topic, acknowledge)
            return
        self.forward(reading, acknowledge)

    def forward(self, reading: Reading, acknowledge: Callable[[], None]) -> None:
        """Put a valid reading in its partition's batch; ``acknowledge`` runs once Kafka
        confirmed that batch (a message holding several readings:
        :func:`connectors.batcher.after_all`)."""
        assert self._batcher is not None, "start() first"
        with self._batch_lock:
            self._produce_batches(self._batcher.add(reading, acknowledge, now=time.monotonic()))
        self.stats.forwarded += 1
        READINGS_INGESTED.inc()

    def send_due(self) -> None:
        """Send the batches whose interval is over."""
        batcher = self._batcher
        if batcher is None:
            return
        now = time.monotonic()
        due = batcher.next_due()
        if due is None or now < due:
            return
        with self._batch_lock:
            self._produce_batches(batcher.due(now))

    def _produce_batches(self, batches: list[Ready]) -> None:
        """Produce ``batches`` (the caller holds the batch lock: a partition's batches go out
        in the order they were made)."""
        for ready in batches:
            self._producer.produce(self._topics.readings, ready.value,
                                   partition=ready.partition, on_delivered=ready.delivered)
            self.stats.batches += 1

    def _is_gateway(self, topic: str) -> bool:
        parts = topic.split("/")
        return len(parts) == 3 and parts[1] == GATEWAY_LEVEL

    def _on_pack(self, payload: bytes, topic: str, acknowledge: Any) -> None:
        """A gateway's SenML pack: each record forwarded or dead-lettered with its index; the
        message acknowledged once Kafka confirmed every record written for it."""
        self.stats.packs += 1
        try:
            result = self._packs.parse(payload, self._clock())
        except InvalidReading as exc:
            self._dead_letter(exc, topic, acknowledge)  # refused whole: one dead letter
            return
        writes = len(result.readings) + sum(2 if r.rejection else 1 for r in result.refused)
        if writes == 0:  # base fields only: nothing to write
            acknowledge()
            return
        delivered = itertools.count(1)

        def on_delivered() -> None:
            if next(delivered) == writes:
                acknowledge()

        limiter = self._limiter
        now = time.monotonic()
        prefix = self._mqtt.topic_prefix
        for index, reading in result.readings:
            if limiter is not None and not limiter.allow(
                f"{prefix}/{reading.district}/{reading.kind}/{reading.device_id}", now
            ):
                throttled = InvalidReading(encode(reading), "rate_limited", self._throttle_detail)
                self._dead_letter(throttled, topic, on_delivered, pack_index=index)
            else:
                self.forward(reading, on_delivered)
        if limiter is not None and now >= self._report_due and limiter.throttled:
            self._report_throttling(now)
        for refusal in result.refused:
            self._refuse_record(refusal, topic, on_delivered)

    def _refuse_record(self, refusal: RecordRefusal, topic: str, on_delivered: Any) -> None:
        rejection = refusal.rejection
        if rejection is not None:  # out of range: counted against the device's health too
            self._out.producer.produce(self._topics.rejected, encode_rejection(rejection),
                                       key=rejection.device_id.encode(),
                                       on_delivered=on_delivered)
        self._dead_letter(refusal.error, topic, on_delivered, pack_index=refusal.index)

    def _dead_letter(
        self, exc: InvalidReading, topic: str, acknowledge: Any, *, pack_index: int | None = None
    ) -> None:
        """Dead-letter a payload (an out-of-range single reading also as a rejection record:
        the parser checked the topic before the range, so its second level is the district; a
        pack's record brings its own, see _refuse_record)."""
        self.stats.dead_lettered += 1
        self.stats.reasons[exc.reason] = self.stats.reasons.get(exc.reason, 0) + 1
        DEAD_LETTERS.labels(exc.reason).inc()
        single = pack_index is None and not self._is_gateway(topic)
        district = topic.split("/")[1] if exc.reason == "out_of_range" and single else None
        if district == UNPLACED:  # a device that names no district: only its dead letter
            district = None
        self._out.refused(exc, key=topic.encode(), mqtt_topic=topic.encode(), district=district,
                          received_at=self._clock(), source="bridge", on_delivered=acknowledge,
                          pack_index=pack_index)
        log.debug("dead-lettered a payload on %s: %s", topic, exc)

    def _report_throttling(self, now: float) -> None:
        """Log the devices throttled since the last report (paho's thread, or after it stopped)."""
        assert self._limiter is not None
        counts = self._limiter.take_throttled()
        span = now - self._reported_at
        self._reported_at = now
        self._report_due = now + self._report_every
        worst = sorted(counts.items(), key=lambda item: item[1], reverse=True)
        for topic, count in worst[:_REPORTED_DEVICES]:
            log.warning(
                "throttled the device on %s: %d messages in the last %.1f s dead-lettered as "
                "rate_limited (%s)", topic, count, span, self._throttle_detail,
            )
        rest = worst[_REPORTED_DEVICES:]
        if rest:
            log.warning(
                "throttled %d more devices: %d messages dead-lettered as rate_limited",
                len(rest), sum(count for _, count in rest),
            )

    def _log_stats(self) -> None:
        s = self.stats
        log.info(
            "bridge: %d received (%d SenML packs), %d forwarded in %d batches, %d dead-lettered "
            "%s, "
            "%d acknowledged",
            s.received,
            s.packs,
            s.forwarded,
            s.batches,
            s.dead_lettered,
            s.reasons or "",
            s.acknowledged,
        )


def run_bridge(
    settings: Settings, *, index: int = 0, notifier: Notifier | None = None
) -> None:
    """Run the bridge (member ``index`` of ``mqtt.bridge_processes``) until SIGINT or SIGTERM,
    then stop it cleanly; ``notifier`` hears ``READY=1`` after each MQTT subscription."""
    topics = settings.kafka.topics
    create_topics(
        settings.kafka.bootstrap, [topics.readings, topics.dead_letter, topics.rejected],
        settings.kafka.partitions,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    bridge = Bridge(settings, index=index, notifier=notifier)
    bridge.start()
    try:
        bridge.serve(stop)
    finally:
        bridge.stop()
