"""``POST /reports``: reports from people and systems, validated and produced, answered once
Kafka has them.

    reports = ReportIntake(settings, intake.producer)       # shares the ingest's producer
    outcome = await reports.submit("hotline", documents)   # a ReportOutcome, or None (no Kafka)

    with ReportSender(settings) as sender:                 # a producer of its own (the dashboard)
        outcome = await sender.intake.submit("dashboard", documents)

A body is one report (a JSON object) or a JSON array of them (:mod:`models.reports`). Each
valid one goes to the reports topic (key = its id), each refused one to the dead-letter topic
(``source`` header ``reports``, key ``reports/<source>``) and is listed in the answer with its
index, reason and detail. A key limited to some districts (``ingest-keys add --district``)
may report only there (``not_allowed``). The answer, once Kafka confirmed every record::

    202 {"accepted": 1, "rejected": 0, "ids": ["ticket-2231"], "reasons": {}, "rejections": []}
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectors.ingest.deliveries import Deliveries
from connectors.kafka import ReliableProducer
from connectors.readings_out import ReadingsOut
from models.errors import InvalidReading
from models.geography import Locator
from models.reports import ReportParser
from settings.config import Settings

__all__ = ["ReportIntake", "ReportOutcome", "ReportSender"]

log = logging.getLogger(__name__)


@dataclass
class ReportOutcome:
    """What became of a request's reports (the 202 answer's document)."""

    ids: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The answer's JSON document."""
        reasons: dict[str, int] = {}
        for entry in self.rejected:
            reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
        return {"accepted": len(self.ids), "rejected": len(self.rejected), "ids": self.ids,
                "reasons": reasons, "rejections": self.rejected}


class ReportIntake:
    """Validate reports and produce them with ``producer`` (its deliveries served elsewhere)."""

    def __init__(self, settings: Settings, producer: ReliableProducer, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._timeout_s = settings.ingest.delivery_timeout_s
        self._parser = ReportParser(
            settings.district_ids(), locate=Locator(settings.geography.districts).locate,
            max_future_s=settings.flow.max_future_s)
        self._out = ReadingsOut(producer, settings.kafka.topics,
                                keep_bytes=settings.mqtt.max_payload_bytes)

    def documents(self, body: bytes) -> list[Any] | InvalidReading:
        """The reports of a body (one object or an array), or why it is not JSON at all."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return InvalidReading(body, "invalid_json", f"the body is not JSON: {exc}")
        return document if isinstance(document, list) else [document]

    async def submit(self, source: str, documents: list[Any], *,
                     districts: Collection[str] = ()) -> ReportOutcome | None:
        """Produce ``documents`` of ``source`` (only in ``districts`` when given); the outcome
        once Kafka confirmed them all, None if it did not within ``ingest.delivery_timeout_s``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        outcome, now = ReportOutcome(), self._clock()
        pending, lock = [1], threading.Lock()

        def one_done() -> None:
            with lock:
                pending[0] -= 1
                finished = pending[0] == 0
            if finished:
                loop.call_soon_threadsafe(settle)

        def settle() -> None:
            if not future.done():
                future.set_result(None)

        where = f"reports/{source}".encode()
        for index, document in enumerate(documents):
            try:
                report = self._parser.parse(document, source=source, received_at=now)
                if districts and report.district not in districts:
                    raw = orjson.dumps(document, default=str)
                    detail = (f"source {source!r} may not report in district "
                              f"{report.district!r} (only {list(districts)})")
                    raise InvalidReading(raw, "not_allowed", detail)
            except InvalidReading as exc:
                outcome.rejected.append({"index": index, "reason": exc.reason,
                                         "detail": exc.detail})
                with lock:
                    pending[0] += 1
                self._out.refused(exc, key=where, received_at=now, source="reports",
                                  on_delivered=one_done)
                continue
            outcome.ids.append(report.id)
            with lock:
                pending[0] += 1
            self._out.report(report, on_delivered=one_done)
        one_done()
        try:
            await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            return None
        return outcome


class ReportSender:
    """A :class:`ReportIntake` with a producer of its own, its deliveries served on a thread:
    for a component that files reports without the ingest (the dashboard's form).

    :meth:`start` is quick (the producer connects in the background; while Kafka is away a
    submission times out, None); :meth:`close` delivers what is queued, then stops.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self._deliveries = Deliveries(settings, name="reports")
        self.producer = self._deliveries.producer
        self.intake = ReportIntake(settings, self.producer, clock=clock)

    def __enter__(self) -> ReportSender:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Serve delivery reports on a thread of its own."""
        self._deliveries.start()

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (for at most ``timeout`` s), then stop serving reports."""
        self._deliveries.stop(timeout)
