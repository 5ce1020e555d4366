"""How a way in hands readings to Kafka: the one place the bridge, HTTP ingest and imports produce.

    out = ReadingsOut(producer, settings.kafka.topics, keep_bytes=4096)
    out.reading(reading, on_delivered=ack)                       # readings topic, key device_id
    out.refused(exc, key=b"city/harbour/pm25/pm-1", mqtt_topic=b"city/harbour/pm25/pm-1",
                district="harbour", received_at=now, source="bridge", on_delivered=ack)
    out.report(report, on_delivered=ack)                         # reports topic, key report id

:meth:`ReadingsOut.reading` writes a valid reading (``models.readings.encode``, key = device
id). :meth:`ReadingsOut.refused` writes a refused payload to the dead-letter topic (headers of
:mod:`connectors.dead_letters`, the payload cut to ``keep_bytes``); a payload refused as
``out_of_range`` whose district is known also becomes a
:class:`~models.vitals.records.Rejection` record on the rejections topic, which the flow counts
against the device's health, and ``on_delivered`` then runs once Kafka has both records.
``on_delivered`` runs on the thread that polls the producer, once the broker confirmed.
:meth:`ReadingsOut.report` writes a validated :class:`~models.reports.Report` (events that are
not numbers: ``POST /reports``) to the reports topic; a refused one is a dead letter as above.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from connectors.dead_letters import dead_letter_headers
from connectors.kafka import ReliableProducer
from models.errors import InvalidReading
from models.readings import Reading, encode
from models.reports import Report, encode_report
from models.vitals.devices import encode_rejection, rejection_from_payload
from settings.config import KafkaTopics

__all__ = ["ReadingsOut"]

Delivered = Callable[[], None] | None


class ReadingsOut:
    """Produce readings, dead letters and rejections with ``producer`` to ``topics``."""

    def __init__(
        self, producer: ReliableProducer, topics: KafkaTopics, *, keep_bytes: int = 4096
    ) -> None:
        self.producer = producer
        self.topics = topics
        self.keep_bytes = keep_bytes  # of a dead letter's payload

    def reading(self, reading: Reading, *, on_delivered: Delivered = None) -> None:
        """Queue a valid reading on the readings topic (key = its device id)."""
        self.producer.produce(self.topics.readings, encode(reading),
                              key=reading.device_id.encode(), on_delivered=on_delivered)

    def report(self, report: Report, *, on_delivered: Delivered = None) -> None:
        """Queue a valid report on the reports topic (key = its id)."""
        self.producer.produce(self.topics.reports, encode_report(report),
                              key=report.id.encode(), on_delivered=on_delivered)

    def refused(
        self,
        exc: InvalidReading,
        *,
        key: bytes,
        mqtt_topic: bytes = b"",
        district: str | None = None,
        received_at: float,
        source: str,
        on_delivered: Delivered = None,
        pack_index: int | None = None,
    ) -> None:
        """Queue the dead letter of a refused payload (and, out of range in a known
        ``district``, its rejection record); ``on_delivered`` once Kafka has them all.
        ``pack_index``: the record's index in a SenML pack it was refused from."""
        if exc.reason == "out_of_range" and district is not None:
            on_delivered = self._rejection(district, exc.payload, on_delivered)
        payload, detail = exc.payload, exc.detail
        if len(payload) > self.keep_bytes:
            detail = (f"{detail}; the dead letter keeps the first {self.keep_bytes} of "
                      f"{len(payload)} bytes")
            payload = payload[: self.keep_bytes]
        headers = dead_letter_headers(exc.reason, detail, mqtt_topic=mqtt_topic,
                                      received_at=received_at, source=source,
                                      pack_index=pack_index)
        self.producer.produce(self.topics.dead_letter, payload, key=key, headers=headers,
                              on_delivered=on_delivered)

    def _rejection(self, district: str, payload: bytes, on_delivered: Delivered) -> Delivered:
        """Queue the Rejection record of an out-of-range payload; the callback its dead letter
        should get (``on_delivered`` runs once both are delivered)."""
        rejection = rejection_from_payload(district, payload)
        if rejection is None:
            return on_delivered
        delivered = itertools.count(1)

        def both() -> None:
            if next(delivered) == 2 and on_delivered is not None:
                on_delivered()

        self.producer.produce(self.topics.rejected, encode_rejection(rejection),
                              key=rejection.device_id.encode(), on_delivered=both)
        return both
