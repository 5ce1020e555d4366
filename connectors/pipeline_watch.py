"""Watch the flow's output topics for two metrics the flow itself cannot give one number for.

    watch = PipelineWatch(bootstrap, vitals_topic="vitals", incidents_topic="incidents")
    watch.start()     # a thread: vitals from their end, incidents from the beginning
    ...
    watch.stop()

- ``cityheart_window_latency_seconds{record}``: ``emitted_at - window_end`` of every vitals
  record (window and indicator records) published after the watch started.
- ``cityheart_incidents_open{department}``: incidents whose latest event leaves them neither
  resolved nor closed, per department they are routed to (``none``: routed nowhere). The
  incidents topic is read from the beginning, so the count is right after any restart.

One process should run it (``cityheart recorder`` does): N flow processes would each observe
every record. Bad records are skipped with a warning; Kafka errors are logged and retried.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException

from connectors.kafka import tail_consumer
from connectors.metrics import INCIDENTS_OPEN, WINDOW_LATENCY
from models.timefmt import from_iso

__all__ = ["IncidentTally", "PipelineWatch"]

log = logging.getLogger(__name__)

BATCH = 500
POLL_S = 0.2
CLOSED_STATES = frozenset({"resolved", "closed"})
NO_DEPARTMENT = "none"


class IncidentTally:
    """Open incidents per department, from incident records in any order of arrival.

    :meth:`add` takes one incidents-topic record (an event carrying ``"incident"``) and returns
    the departments whose count changed; :meth:`open_by_department` the counts.
    """

    def __init__(self) -> None:
        self._latest: dict[str, tuple[int, tuple[str, ...]]] = {}  # id -> (sequence, open in)
        self._open: dict[str, int] = {}

    def add(self, record: Mapping[str, Any]) -> set[str]:
        """Apply one record; the departments whose open count changed."""
        incident = record.get("incident")
        if not isinstance(incident, Mapping) or "id" not in incident:
            msg = f"incident record without an incident: {sorted(record)}"
            raise ValueError(msg)
        incident_id = str(incident["id"])
        sequence = int(incident.get("sequence") or 0)
        previous = self._latest.get(incident_id)
        if previous is not None and previous[0] > sequence:
            return set()  # an older event arriving late changes nothing
        departments = tuple(incident.get("departments") or ()) or (NO_DEPARTMENT,)
        now_open = departments if incident.get("state") not in CLOSED_STATES else ()
        was_open = previous[1] if previous is not None else ()
        self._latest[incident_id] = (sequence, now_open)
        for department in was_open:
            self._open[department] -= 1
        for department in now_open:
            self._open[department] = self._open.get(department, 0) + 1
        return {*was_open, *now_open}

    def open_by_department(self) -> dict[str, int]:
        """How many incidents are open for each department seen so far (0 included)."""
        return dict(self._open)


class PipelineWatch:
    """A thread reading ``vitals_topic`` (from its end) and ``incidents_topic`` (from the
    beginning) into the window latency and open incidents metrics."""

    def __init__(self, bootstrap: str, *, vitals_topic: str, incidents_topic: str) -> None:
        self.bootstrap = bootstrap
        self._vitals_topic = vitals_topic
        self._incidents_topic = incidents_topic
        self.tally = IncidentTally()
        self.seen = 0
        """Records observed so far (for tests and logs)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumers: list[Consumer] = []

    def start(self) -> None:
        """Assign the consumers (ConnectorError if Kafka cannot be reached) and start reading."""
        self._consumers = [
            tail_consumer(self.bootstrap, [self._vitals_topic], start="end"),
            tail_consumer(self.bootstrap, [self._incidents_topic], start="beginning"),
        ]
        self._thread = threading.Thread(target=self._run, name="pipeline-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the consumers."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for consumer in self._consumers:
            consumer.close()
        self._consumers = []

    def _run(self) -> None:
        vitals, incidents = self._consumers
        while not self._stop.is_set():
            try:
                for message in vitals.consume(BATCH, POLL_S / 2):
                    self._observe(message, self._on_vital)
                for message in incidents.consume(BATCH, POLL_S / 2):
                    self._observe(message, self._on_incident)
            except KafkaException as exc:
                log.error("pipeline watch: reading Kafka failed, retrying in 1 s: %s",
                          exc.args[0])
                self._stop.wait(1.0)

    def _observe(self, message: Any, handle: Any) -> None:
        if message.error() is not None:
            log.warning("pipeline watch: Kafka reports %s", message.error())
            return
        try:
            handle(orjson.loads(message.value() or b""))
        except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
            log.warning("pipeline watch: skipping %s[%d]@%d: %s", message.topic(),
                        message.partition(), message.offset(), exc)
            return
        self.seen += 1

    def _on_vital(self, record: Mapping[str, Any]) -> None:
        latency = from_iso(record["emitted_at"]) - from_iso(record["window_end"])
        kind = "indicator" if record.get("record") == "indicator" else "window"
        WINDOW_LATENCY.labels(kind).observe(max(0.0, latency))

    def _on_incident(self, record: Mapping[str, Any]) -> None:
        changed = self.tally.add(record)
        counts = self.tally.open_by_department()
        for department in changed:
            INCIDENTS_OPEN.labels(department).set(counts[department])
