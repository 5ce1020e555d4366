"""Kafka plumbing shared by the bridge, the flow and the feed; any Kafka-compatible broker works.

- :func:`create_topics` makes cityheart's topics if they are missing; :func:`topic_id` names
  one topic's incarnation (a recreated topic gets a new id).
- :class:`ReliableProducer` produces with delivery callbacks: a record is "done" only when the
  broker confirmed it, and a failed delivery is raised, never silently dropped.
- :func:`tail_consumer` reads whole topics by explicit partition assignment (no consumer group:
  group joins are slow on some brokers and each reader here keeps its own position), and never
  skips a record a broker showed late (:class:`GaplessConsumer`); :func:`read_to_end` reads
  a topic from its start up to where it ended when called.
- :func:`kafka_source` and :class:`KafkaRecordSink` are the Bytewax source and sink the flow
  uses (flows never import ``bytewax.connectors`` or confluent_kafka themselves); the sink takes
  :class:`KafkaRecord` items and confirms every batch with the broker before Bytewax moves on.

Latency-sensitive readers set ``fetch.wait.max.ms`` low: some brokers answer an empty fetch only
after it expires. Producers batch (``linger.ms``) because small batches cost brokers dearly.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bytewax.inputs import FixedPartitionedSource
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from models.errors import ConnectorError

__all__ = [
    "BATCH_FETCH",
    "BATCH_RECORDS",
    "FAST_FETCH",
    "HISTORY_FETCH",
    "GapGuard",
    "GaplessConsumer",
    "KafkaRecord",
    "KafkaRecordSink",
    "ReliableProducer",
    "create_topics",
    "kafka_source",
    "partitions_of",
    "read_to_end",
    "tail_consumer",
    "topic_id",
]

log = logging.getLogger(__name__)

FAST_FETCH: dict[str, Any] = {"fetch.wait.max.ms": 10, "fetch.error.backoff.ms": 50}
"""Consumer settings for readers that must see new records within milliseconds."""

BATCH_FETCH: dict[str, Any] = {
    **FAST_FETCH,
    # answer a fetch as soon as one record is there: a record is already a batch (up to 50 ms of
    # readings, connectors.batcher), so waiting for more bytes would only add latency
    "fetch.min.bytes": 1,
    # records are batches of up to kafka.readings_batch.max_readings readings: the prefetch
    # queue counts records, so librdkafka's 100,000 would be millions of readings; 2,000
    # records (100 s of a partition's 50-ms batches, 1.6 s at 1,000-reading records, or
    # 60,000 readings/s), and at most 32 MB per partition, keep fetches ahead without
    # hoarding memory
    "queued.min.messages": 2000,
    "queued.max.messages.kbytes": 32768,
}
"""Consumer settings for readers of batch records (the ``readings`` topic): new records
within milliseconds, a bounded prefetch. Give them a small ``batch_size`` too (records per
Bytewax batch: :data:`BATCH_RECORDS`). ``fetch.wait.max.ms`` stays at FAST_FETCH's 10 ms: some
brokers (Tansu) answer an empty fetch only when it expires, so it is the latency of the first
record after a pause."""

HISTORY_FETCH: dict[str, Any] = {**BATCH_FETCH, "fetch.wait.max.ms": 500}
"""Consumer settings for readers of batch records that may lag by half a second (the recorder):
BATCH_FETCH, but a fetch waits up to 500 ms for new records. Where a fast reader fetches once
per batch the producer writes (about 20 a second per partition at the 50-ms linger), this one
fetches a few times a second and takes what gathered meanwhile. Some brokers pay for each fetch
that finds new records in proportion to the batches the partition holds (Tansu 0.6's memory
engine lists them all and never deletes any: BENCHMARKS.md), so every reader that does not need
milliseconds should use this."""

BATCH_RECORDS = 1
"""Records per Bytewax batch for readers of batch records: one (up to 50 ms of readings at live
rates, at most ``max_readings`` while a backlog is read). Bytewax then interleaves the
partitions finely while a backlog is read: with 10 records of 100 readings, two flow processes
over three partitions (tests/flows/test_scale.py) let one process's partitions run so far
ahead that whole devices of the others came after their windows had closed (late, and at the
end of the backlog never reported); with one, none."""


def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, *, timeout: float = 15.0
) -> None:
    """Create the topics in ``names`` with ``partitions`` partitions unless they exist."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        msg = f"cannot list topics: {exc.args[0]}"
        raise ConnectorError("kafka", bootstrap, msg) from exc
    wanted = [NewTopic(n, partitions, 1) for n in names if n not in existing]
    if not wanted:
        return
    for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            msg = f"cannot create topic {name!r}: {exc.args[0]}"
            raise ConnectorError("kafka", bootstrap, msg) from exc
        log.info("created Kafka topic %r with %d partitions", name, partitions)


def partitions_of(bootstrap: str, topic: str, *, timeout: float = 15.0) -> list[int]:
    """The partition numbers of ``topic``; ConnectorError if the topic does not exist."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        metadata = admin.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException as exc:
        msg = f"error listing partitions for Kafka topic {topic!r}: {exc.args[0]}"
        raise ConnectorError("kafka", bootstrap, msg) from exc
    if metadata is None or metadata.error is not None or not metadata.partitions:
        msg = f"Kafka topic {topic!r} does not exist"
        raise ConnectorError("kafka", bootstrap, msg)
    return sorted(metadata.partitions)


_NO_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA"  # the all-zero id of brokers that assign none


def topic_id(bootstrap: str, topic: str, *, timeout: float = 15.0) -> str | None:
    """The broker's id of ``topic`` (base64 of a UUID, fixed when the topic was created: a topic
    deleted and made again, or a broker that lost its data, gives a new one); None when the
    broker assigns no topic ids. ConnectorError if the topic does not exist."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        future = admin.describe_topics(TopicCollection([topic]), request_timeout=timeout)[topic]
        found = str(future.result(timeout).topic_id)
    except KafkaException as exc:
        msg = f"cannot describe Kafka topic {topic!r}: {exc.args[0]}"
        raise ConnectorError("kafka", bootstrap, msg) from exc
    except concurrent.futures.TimeoutError as exc:
        msg = f"no answer about topic {topic!r} within {timeout:g} s (is the broker running?)"
        raise ConnectorError("kafka", bootstrap, msg) from exc
    return None if found in ("", "None", _NO_TOPIC_ID) else found


GAP_PATIENCE_S = 2.0
"""How long a reader waits for the records of a gap in offsets before it goes on without them."""

KEEP, SEEN, REWIND = "keep", "seen", "rewind"


class GapGuard:
    """The offset a reader expects next in each partition, and what to make of each record.

    Tansu (the embedded broker) reserves a batch's offsets before it stores the batch, so while
    two producers write one partition a fetch can return the later batch before the earlier one
    exists; a reader that moves on never sees the earlier one. :meth:`verdict` says ``KEEP``
    for the record expected next, ``SEEN`` for one already returned (read again after a
    rewind), and ``REWIND`` when records are missing before this one: read again from
    :meth:`expected`. A gap that stays open for ``patience_s`` (offsets a compacted or
    transactional topic on Kafka proper never fills) is accepted, with a warning.
    """

    def __init__(
        self, patience_s: float = GAP_PATIENCE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._patience_s = patience_s
        self._clock = clock
        self._next: dict[tuple[str, int], int] = {}
        self._open: dict[tuple[str, int], float] = {}   # partition -> when its gap was seen
        self.rewinds = 0

    def expect(self, topic: str, partition: int, offset: int) -> None:
        """The next record of ``topic`` ``partition`` should have ``offset``."""
        self._next[(topic, partition)] = offset

    def forget(self, topic: str, partition: int) -> None:
        """Expect nothing of ``topic`` ``partition`` until its next record (a new position)."""
        self._next.pop((topic, partition), None)
        self._open.pop((topic, partition), None)

    def expected(self, topic: str, partition: int) -> int | None:
        """The offset expected next, None before the first record of an unknown start."""
        return self._next.get((topic, partition))

    def verdict(self, topic: str, partition: int, offset: int) -> str:
        """``KEEP``, ``SEEN`` or ``REWIND`` for a record at ``offset`` (see the class)."""
        key = (topic, partition)
        expected = self._next.get(key)
        if expected is not None and offset < expected:
            return SEEN
        if expected is not None and offset > expected:
            now = self._clock()
            since = self._open.setdefault(key, now)
            if now - since < self._patience_s:
                self.rewinds += 1
                return REWIND
            log.warning("records %d-%d of %s partition %d never arrived; reading on",
                        expected, offset - 1, topic, partition)
        self._open.pop(key, None)
        self._next[key] = offset + 1
        return KEEP


class GaplessConsumer(Consumer):
    """A Consumer whose :meth:`consume` returns each record once, in order, without gaps.

    It keeps a :class:`GapGuard`: on a gap it seeks back to the first missing offset and drops
    what it already returned when the broker sends it again. :meth:`assign` starts each
    partition afresh: the first record after it sets the expectation, unless the caller says
    what to expect (``guard.expect``).
    """

    def __init__(self, config: Mapping[str, Any], guard: GapGuard | None = None) -> None:
        super().__init__(dict(config))
        self.guard = guard if guard is not None else GapGuard()

    def assign(self, partitions: list[TopicPartition]) -> None:
        super().assign(partitions)
        for tp in partitions:
            self.guard.forget(tp.topic, tp.partition)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        guard = self.guard
        kept = []
        rewound: set[tuple[str, int]] = set()
        for message in super().consume(num_messages, timeout):
            if message.error() is not None:
                kept.append(message)
                continue
            topic, partition = message.topic(), message.partition()
            if (topic, partition) in rewound:
                continue   # read again after the seek
            verdict = guard.verdict(topic, partition, message.offset())
            if verdict == KEEP:
                kept.append(message)
            elif verdict == REWIND:
                rewound.add((topic, partition))
                missing = guard.expected(topic, partition)
                self.seek(TopicPartition(topic, partition, missing))
        return kept


def tail_consumer(
    bootstrap: str,
    topics: Sequence[str],
    *,
    start: str = "beginning",
    config: Mapping[str, Any] | None = None,
) -> GaplessConsumer:
    """A consumer assigned every partition of ``topics`` from the ``beginning`` or the ``end``.

    "end" is resolved to each partition's high watermark now, not at the first fetch, so a
    record produced after this returns is never skipped. From the beginning, a fetch the
    broker answers "offset out of range" (Tansu can, while a new partition fills) falls back
    to the earliest offset, not librdkafka's default of the latest, which would skip every
    record already there. The reader expects the offsets from there on without a gap
    (:class:`GaplessConsumer`): from the partition's first offset, or from the end from the
    first record it gets.
    """
    if start not in ("beginning", "end"):
        msg = f"start must be 'beginning' or 'end', got {start!r}"
        raise ValueError(msg)
    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": "cityheart-unused",  # required by librdkafka; no group is joined
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest" if start == "beginning" else "latest",
        **FAST_FETCH,
        **(config or {}),
    }
    consumer = GaplessConsumer(settings)
    assignment = []
    firsts = []   # (topic, partition, first offset) of the partitions read from the beginning
    for topic in topics:
        for part in partitions_of(bootstrap, topic):
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
            except KafkaException as exc:
                consumer.close()
                msg = f"cannot read the offsets of {topic!r} partition {part}: {exc.args[0]}"
                raise ConnectorError("kafka", bootstrap, msg) from exc
            if start == "end":
                offset = high   # some brokers under-report it: no offset is expected from it
            else:
                offset = OFFSET_BEGINNING
                firsts.append((topic, part, low))
            assignment.append(TopicPartition(topic, part, offset))
    consumer.assign(assignment)
    for topic, part, low in firsts:
        consumer.guard.expect(topic, part, low)
    return consumer


def read_to_end(
    bootstrap: str, topic: str, *, timeout: float = 60.0, poll_s: float = 0.2
) -> Iterator[Any]:
    """Every record of ``topic`` from its start up to its end as of this call (confluent_kafka
    messages, each once, in order per partition); ConnectorError if that takes over ``timeout``.

    Done when every partition was read up to its high watermark and a poll then found nothing
    more (Tansu 0.6 may report the end of a partition as the first offset of its last batch
    plus one: reaching it means that batch is here, not that it was all read).
    """
    consumer = tail_consumer(bootstrap, [topic])
    try:
        ends = {}
        for tp in consumer.assignment():
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > low:
                ends[tp.partition] = high
        done: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        while ends:
            messages = consumer.consume(500, poll_s)
            for message in messages:
                if message.error() is not None:
                    if message.error().fatal():
                        msg = f"cannot read topic {topic!r}: {message.error()}"
                        raise ConnectorError("kafka", bootstrap, msg)
                    continue
                done[message.partition()] = message.offset() + 1
                yield message
            if not messages and all(done.get(p, 0) >= end for p, end in ends.items()):
                return
            if time.monotonic() > deadline:
                msg = (f"reading topic {topic!r} to its end took over {timeout:g} s (at "
                       f"{done}, ends {ends})")
                raise ConnectorError("kafka", bootstrap, msg)
    except KafkaException as exc:
        msg = f"cannot read topic {topic!r}: {exc.args[0]}"
        raise ConnectorError("kafka", bootstrap, msg) from exc
    finally:
        consumer.close()


class ReliableProducer:
    """A producer that reports every delivery and raises on the first failed one.

        producer = ReliableProducer("127.0.0.1:9092", linger_ms=50)
        producer.produce("readings", value, key=b"dev-1", on_delivered=lambda: ack(mid))
        producer.poll(0)          # serves callbacks; raises ConnectorError on a failed delivery
        producer.flush(10)

    ``on_delivered`` runs (on the thread calling poll/flush) once the broker confirmed the
    record. librdkafka retries transient errors itself until ``delivery_timeout_ms``; a record
    that still fails is kept in :attr:`failures` and raised from the next poll or flush.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        linger_ms: float = 20,
        delivery_timeout_ms: int = 300_000,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": linger_ms,
                "acks": "all",
                "enable.idempotence": False,
                "delivery.timeout.ms": delivery_timeout_ms,
                "queue.buffering.max.messages": 500_000,
                "batch.num.messages": 10_000,
                **(config or {}),
            }
        )
        self._lock = threading.Lock()
        self.failures: list[tuple[str, bytes | None, str]] = []
        self.delivered = 0

    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        on_delivered: Callable[[], None] | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue one record (to ``partition``, or where the partitioner puts its key); waits
        (serving callbacks) while the local queue is full."""
        where = {} if partition is None else {"partition": partition}

        def report(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                with self._lock:
                    self.failures.append((topic, key, str(err)))
                return
            self.delivered += 1
            if on_delivered is not None:
                on_delivered()

        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=report,
                                       **where)
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:
                msg = f"cannot produce to topic {topic!r}: {exc.args[0]}"
                raise ConnectorError("kafka", self.bootstrap, msg) from exc

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks for up to ``timeout`` s; raise on a failed delivery."""
        served = self._producer.poll(timeout)
        self._raise_failures()
        return served

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued record is delivered; raise if any failed or time ran out."""
        remaining = self._producer.flush(timeout)
        self._raise_failures()
        if remaining:
            msg = f"{remaining} records not delivered within {timeout:g} s"
            raise ConnectorError("kafka", self.bootstrap, msg)

    def __len__(self) -> int:
        """Records queued and not yet confirmed."""
        return len(self._producer)

    def _raise_failures(self) -> None:
        if self.failures:
            with self._lock:
                topic, key, reason = self.failures[0]
                count = len(self.failures)
            msg = f"{count} deliveries failed, first to topic {topic!r} key {key!r}: {reason}"
            raise ConnectorError("kafka", self.bootstrap, msg)


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One record to produce: ``key`` (or None), ``value`` and ``headers`` (name, bytes) pairs.

    It has the ``key``, ``value`` and ``headers`` attributes of the messages
    :func:`kafka_source` emits, so tests can feed KafkaRecords to a flow in their place.
    """

    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()
    topic: str | None = None
    """Where a :class:`KafkaRecordSink` writes it; None: the sink's own topic."""


def kafka_source(
    bootstrap: str,
    topics: Sequence[str],
    *,
    start: str = "beginning",
    batch_size: int = 2000,
    config: Mapping[str, Any] | None = None,
) -> FixedPartitionedSource:
    """A Bytewax source reading every partition of ``topics`` from the ``beginning`` or ``end``.

    Items have ``key``, ``value`` (bytes) and ``headers``. Partitions are assigned explicitly
    (no consumer group) and fetches return within milliseconds (:data:`FAST_FETCH`); a consumer
    error stops the dataflow. Without Bytewax recovery the position is not kept across runs.
    """
    # imported here: only the flow process needs bytewax's Kafka connector (and its metrics)
    from bytewax.connectors.kafka import KafkaSource

    offsets = {"beginning": OFFSET_BEGINNING, "end": OFFSET_END}
    if start not in offsets:
        msg = f"start {start!r} is not 'beginning' or 'end'"
        raise ValueError(msg)
    source = KafkaSource(
        [server.strip() for server in bootstrap.split(",")],
        list(topics),
        tail=True,
        starting_offset=offsets[start],
        add_config={**FAST_FETCH, **(config or {})},
        batch_size=batch_size,
        raise_on_errors=True,
    )
    return _AssignedKafkaSource(bootstrap, list(topics), source)


class _AssignedKafkaSource(FixedPartitionedSource):
    """bytewax's KafkaSource, but partitions are listed with :func:`partitions_of`.

    KafkaSource lists them with an admin client given the consumer settings, which librdkafka
    then warns about; partitions_of also names a missing topic in a ConnectorError.
    """

    def __init__(self, bootstrap: str, topics: list[str], source: FixedPartitionedSource) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self._source = source

    def list_parts(self) -> list[str]:
        """``"<partition>-<topic>"`` for each partition of the topics, as KafkaSource names them."""
        return [
            f"{part}-{topic}"
            for topic in self._topics
            for part in partitions_of(self._bootstrap, topic)
        ]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> Any:
        """KafkaSource's consumer for one partition, assigned (no consumer group); its position
        feeds the ``cityheart_consumer_lag`` metric."""
        partition, topic = for_part.split("-", 1)
        inner = self._source.build_part(step_id, for_part, resume_state)
        # imported here: only the flow process needs the metrics wrapper (and bytewax)
        from connectors.metrics import track_partition

        return track_partition(inner, self._bootstrap, topic, int(partition))


class _RecordSinkPartition(StatelessSinkPartition[KafkaRecord]):
    def __init__(self, producer: ReliableProducer, topic: str, flush_timeout: float) -> None:
        self._producer = producer
        self._topic = topic
        self._flush_timeout = flush_timeout

    def write_batch(self, items: list[KafkaRecord]) -> None:
        produce = self._producer.produce
        topic = self._topic
        for record in items:
            headers = list(record.headers) if record.headers else None
            produce(record.topic or topic, record.value, key=record.key, headers=headers)
        # confirmed before returning: Bytewax never gets ahead of what Kafka stored
        self._producer.flush(self._flush_timeout)

    def close(self) -> None:
        self._producer.flush(self._flush_timeout)


class KafkaRecordSink(DynamicSink[KafkaRecord]):
    """A Bytewax sink producing :class:`KafkaRecord` items to ``topic`` (or the record's own
    ``topic``), every batch confirmed.

    Each worker gets its own :class:`ReliableProducer`. ``write_batch`` returns only once the
    broker confirmed the whole batch; a failed delivery (or none within ``flush_timeout`` s)
    raises ConnectorError, which stops the dataflow rather than losing records.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        linger_ms: float = 5,
        flush_timeout: float = 30.0,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._linger_ms = linger_ms
        self._flush_timeout = flush_timeout
        self._config = dict(config or {})

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _RecordSinkPartition:
        """A partition with its own producer, for one worker."""
        producer = ReliableProducer(
            self.bootstrap, linger_ms=self._linger_ms, config=self._config
        )
        return _RecordSinkPartition(producer, self.topic, self._flush_timeout)
