"""Request and reply over Kafka: put an incident command on ``commands``, await its answer.

The dispatch API does not change incidents itself; the city flow does (the one writer of their
events). :class:`CommandBus` sends a command record keyed by incident id (so commands on one
incident stay in order) and waits for the record with the same command id on the
``command_results`` topic::

    with CommandBus(bootstrap, topics.commands, topics.command_results) as bus:
        answer = bus.request(command_id, incident_id, record, timeout=10.0)  # a dict

A background thread reads ``command_results`` from its end as it was when the bus started
(:meth:`CommandBus.start`, or the first request), so no answer to a command sent afterwards is
missed; answers nobody waits for are dropped (some brokers under-report a partition's end, so
a few old answers may be read again: they match no waiting command). A
request with no answer within ``timeout`` raises ConnectorError: the flow is down or behind;
the command may still be applied later (it stays on the topic), and its event then reaches
the feed and the stores as usual.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException

from connectors.kafka import ReliableProducer, tail_consumer
from models.errors import ConnectorError

__all__ = ["CommandBus"]

log = logging.getLogger(__name__)


class CommandBus:
    """Commands out on ``commands_topic``, answers in from ``results_topic`` (see module doc)."""

    def __init__(self, bootstrap: str, commands_topic: str, results_topic: str) -> None:
        self.bootstrap = bootstrap
        self.commands_topic = commands_topic
        self.results_topic = results_topic
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: ReliableProducer | None = None

    def __enter__(self) -> CommandBus:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Position on the results' end and start reading them; ConnectorError if unreachable."""
        with self._send_lock:
            if self._producer is not None:
                return
            consumer = tail_consumer(self.bootstrap, [self.results_topic], start="end")
            self._producer = ReliableProducer(self.bootstrap, linger_ms=0)
        self._thread = threading.Thread(target=self._read, args=(consumer,),
                                        name="command-results", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop reading answers."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def request(
        self, command_id: str, incident_id: str, record: dict[str, Any], *, timeout: float,
    ) -> dict[str, Any]:
        """Send ``record`` and return the flow's answer to ``command_id`` (a result dict)."""
        self.start()
        assert self._producer is not None
        done = threading.Event()
        answers: list[dict[str, Any]] = []
        with self._lock:
            self._waiting[command_id] = (done, answers)
        try:
            with self._send_lock:  # one producer, many HTTP threads
                self._producer.produce(self.commands_topic, orjson.dumps(record),
                                       key=incident_id.encode())
                self._producer.flush(timeout)
            if not done.wait(timeout):
                msg = f"no answer to command {command_id} within {timeout:g} s (is the flow up?)"
                raise ConnectorError("kafka", self.bootstrap, msg)
            return answers[0]
        finally:
            with self._lock:
                self._waiting.pop(command_id, None)

    def _read(self, consumer: Any) -> None:
        try:
            while not self._stop.is_set():
                try:
                    messages = consumer.consume(100, 0.2)
                except KafkaException as exc:
                    log.warning("command bus: reading answers failed, retrying: %s", exc)
                    self._stop.wait(1.0)
                    continue
                for message in messages:
                    if message.error() is not None:
                        if message.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("command bus: %s", message.error())
                        continue
                    self._deliver(message.value())
        finally:
            consumer.close()

    def _deliver(self, value: bytes) -> None:
        try:
            answer = orjson.loads(value)
            command_id = answer["command_id"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            log.warning("command bus: unreadable answer %r", value[:200])
            return
        with self._lock:
            waiting = self._waiting.get(command_id)
        if waiting is not None:
            done, answers = waiting
            answers.append(answer)
            done.set()
