"""A department's dispatch queue reader, its bookkeeping only: where it is, what it has handled.

Pure (no I/O, no clock): :class:`connectors.dispatch.consumer.DispatchConsumer` reads the Kafka
topic and keeps a :class:`DispatchLedger` in a checkpoint file. For every record, in partition
order::

    ledger = DispatchLedger(topic)                     # or DispatchLedger.from_record(saved)
    check = ledger.check(record)                       # the record's JSON value, decoded
    if check.deliver:
        handler(record)
    ledger.commit(partition, offset, check)            # next offset, last sequence handled
    saved = ledger.to_record()                         # JSON-ready checkpoint
    ledger.forget(now=now, limits=DispatchLimits())    # keep the per-incident map bounded

A record is an incident event (``IncidentEvent.to_record()`` plus ``"incident"``, the incident
after it); events of one incident have increasing ``sequence`` numbers and share a partition.
:meth:`DispatchLedger.check` says what a record is (:data:`Verdict`):

- ``new``: the next event of an incident already seen.
- ``first``: the first event seen of an incident. Its sequence may be above 1: an incident routed
  to the department mid-life starts there, and its record carries the whole incident.
- ``gap``: a later event than expected: events in between never came. It is delivered (the
  record carries the whole incident) and the reader logs it.
- ``duplicate``: a sequence at or below the last handled one: skipped, counted.

Checkpoint record (``version`` 1)::

    {"version": 1, "topic": "dispatch.water-authority",
     "offsets": {"0": 42},                               # next offset to read, per partition
     "incidents": {"inc-5f0c": {"sequence": 4, "state": "dispatched",
                                "ts": "2026-11-26T08:00:10.000Z"}},   # last handled event
     "handled": 40, "duplicates": 2, "gaps": 0, "invalid": 0}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from models.errors import CityheartError
from models.timefmt import from_iso, iso

__all__ = [
    "CHECKPOINT_VERSION",
    "Check",
    "DispatchLedger",
    "DispatchLimits",
    "CheckpointError",
    "InvalidDispatchRecord",
    "Mark",
    "Verdict",
    "parse_mark",
]

CHECKPOINT_VERSION = 1

Verdict = Literal["new", "first", "gap", "duplicate"]

_DELIVERED: tuple[Verdict, ...] = ("new", "first", "gap")


class InvalidDispatchRecord(CityheartError):
    """Raised when a dispatch queue record is not an incident event (no incident id, sequence
    or time); ``reason`` says which field and value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid dispatch record: {self.reason}"


class CheckpointError(CityheartError):
    """Raised when a checkpoint cannot be read, written or used: ``source`` names it (a file),
    ``reason`` says what is wrong."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(source, reason)
        self.source = source
        self.reason = reason

    def __str__(self) -> str:
        return f"dispatch checkpoint {self.source}: {self.reason}"


@dataclass(frozen=True, slots=True)
class DispatchLimits:
    """How long incidents stay in the ledger's per-incident map, and how many at most.

    A closed incident is forgotten ``closed_s`` after its last event, a resolved one after
    ``resolved_s`` (it may still be reopened or closed); beyond ``max_incidents`` the quietest
    go first. An event of a forgotten incident counts as ``first`` again.
    """

    closed_s: float = 86400.0
    resolved_s: float = 7 * 86400.0
    max_incidents: int = 50_000


@dataclass(frozen=True, slots=True)
class Mark:
    """An incident's last handled event: its ``sequence``, the incident's ``state`` after it
    (None if the record did not say) and the event's time ``ts`` (epoch seconds)."""

    incident_id: str
    sequence: int
    state: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class Check:
    """What :meth:`DispatchLedger.check` found about one record."""

    verdict: Verdict
    mark: Mark
    last: int | None
    """The incident's last handled sequence before this record (None: not seen)."""

    @property
    def deliver(self) -> bool:
        """Whether the handler gets the record (everything but a duplicate)."""
        return self.verdict in _DELIVERED


def parse_mark(record: Mapping[str, Any]) -> Mark:
    """The incident id, sequence, state and time of a dispatch record; InvalidDispatchRecord if
    it lacks them."""
    if not isinstance(record, Mapping):
        msg = f"expected a JSON object, got {type(record).__name__}"
        raise InvalidDispatchRecord(msg)
    incident_id = record.get("incident_id")
    if not isinstance(incident_id, str) or not incident_id:
        msg = f"incident_id {incident_id!r} is not an incident id"
        raise InvalidDispatchRecord(msg)
    sequence = record.get("sequence")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        msg = f"sequence {sequence!r} of incident {incident_id!r} is not a positive integer"
        raise InvalidDispatchRecord(msg)
    ts = record.get("ts")
    try:
        when = from_iso(ts) if isinstance(ts, str) else float(ts)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        msg = f"ts {ts!r} of event {incident_id}:{sequence} is not a time"
        raise InvalidDispatchRecord(msg) from None
    incident = record.get("incident")
    state = incident.get("state") if isinstance(incident, Mapping) else None
    return Mark(incident_id, sequence, state if isinstance(state, str) else None, when)


@dataclass
class DispatchLedger:
    """A dispatch queue reader's position and the last event handled per incident."""

    topic: str
    offsets: dict[int, int] = field(default_factory=dict)
    marks: dict[str, Mark] = field(default_factory=dict)
    handled: int = 0
    duplicates: int = 0
    gaps: int = 0
    invalid: int = 0

    def check(self, record: Mapping[str, Any]) -> Check:
        """What ``record`` is to this reader; changes nothing. InvalidDispatchRecord if it is
        not an incident event."""
        mark = parse_mark(record)
        known = self.marks.get(mark.incident_id)
        if known is None:
            return Check("first", mark, None)
        if mark.sequence <= known.sequence:
            return Check("duplicate", mark, known.sequence)
        verdict: Verdict = "new" if mark.sequence == known.sequence + 1 else "gap"
        return Check(verdict, mark, known.sequence)

    def commit(self, partition: int, offset: int, check: Check) -> None:
        """Record that the record at ``offset`` was handled (or skipped, for a duplicate)."""
        self._advance(partition, offset)
        if not check.deliver:
            self.duplicates += 1
            return
        self.handled += 1
        if check.verdict == "gap":
            self.gaps += 1
        previous = self.marks.pop(check.mark.incident_id, None)
        state = check.mark.state or (previous.state if previous else None)
        mark = Mark(check.mark.incident_id, check.mark.sequence, state, check.mark.ts)
        self.marks[mark.incident_id] = mark  # re-inserted: the map stays in handling order

    def skip_invalid(self, partition: int, offset: int) -> None:
        """Record that the record at ``offset`` was not an incident event and was skipped."""
        self._advance(partition, offset)
        self.invalid += 1

    def next_offset(self, partition: int) -> int | None:
        """Where to read ``partition`` from (None: from its beginning)."""
        return self.offsets.get(partition)

    def forget(self, *, now: float, limits: DispatchLimits) -> list[str]:
        """Drop closed and resolved incidents quiet long enough, then the quietest beyond
        ``limits.max_incidents``; the ids dropped."""
        keep_after = {"closed": now - limits.closed_s, "resolved": now - limits.resolved_s}
        dropped = [
            key for key, mark in self.marks.items()
            if mark.state in keep_after and mark.ts < keep_after[mark.state]
        ]
        excess = len(self.marks) - len(dropped) - limits.max_incidents
        if excess > 0:
            gone = set(dropped)
            rest = sorted((m for k, m in self.marks.items() if k not in gone), key=_quietness)
            dropped += [m.incident_id for m in rest[:excess]]
        for key in dropped:
            del self.marks[key]
        return dropped

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready checkpoint (see the module docstring)."""
        return {
            "version": CHECKPOINT_VERSION,
            "topic": self.topic,
            "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
            "incidents": {
                key: {"sequence": m.sequence, "state": m.state, "ts": iso(m.ts)}
                for key, m in self.marks.items()
            },
            "handled": self.handled,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "invalid": self.invalid,
        }

    @classmethod
    def from_record(cls, record: Any, *, source: str) -> DispatchLedger:
        """The ledger of a :meth:`to_record` dict; CheckpointError naming ``source`` if it is
        not one (whose ``topic`` it is, the caller checks)."""
        if not isinstance(record, Mapping) or record.get("version") != CHECKPOINT_VERSION:
            version = record.get("version") if isinstance(record, Mapping) else record
            msg = f"version {version!r} is not {CHECKPOINT_VERSION} (not a checkpoint?)"
            raise CheckpointError(source, msg)
        try:
            offsets = {int(p): int(o) for p, o in record["offsets"].items()}
            marks = {
                key: Mark(key, int(m["sequence"]), m.get("state"), from_iso(m["ts"]))
                for key, m in record["incidents"].items()
            }
            counts = {name: int(record.get(name, 0))
                      for name in ("handled", "duplicates", "gaps", "invalid")}
            topic = str(record["topic"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            msg = f"malformed: {exc!r}"
            raise CheckpointError(source, msg) from exc
        return cls(topic, offsets, marks, **counts)

    def _advance(self, partition: int, offset: int) -> None:
        self.offsets[partition] = offset + 1


def _quietness(mark: Mark) -> tuple[int, float]:
    """Sort key: inactive (resolved, closed) before active, then oldest last event first."""
    return (0 if mark.state in ("resolved", "closed") else 1, mark.ts)
