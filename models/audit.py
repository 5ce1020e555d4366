"""Who read what: the read audit's entries and the question ``cityheart audit`` answers.

Every read through the dashboard's API, the push feed, NGSI-LD and the open-data downloads is
an :class:`AuditEntry`: who (subject, role, grant), through which interface, what (a route,
or the feed's channels), when, and how much of each district's data (records per district)::

    entry = AuditEntry(at=t, sub="ana", role="dispatcher", grant=None, interface="api",
                       what="/api/incidents", districts={"harbour": 3}, records=3)
    readers(entries, district="harbour", since=t0, until=t1)  # one row per reader

``"*"`` as a district stands for "every district" (an open-data download of the whole city).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ALL_DISTRICTS", "AuditEntry", "Reader", "count_districts", "readers"]

ALL_DISTRICTS = "*"


@dataclass(frozen=True)
class AuditEntry:
    """One read (or, for a feed connection, what it received over an interval)."""

    at: float
    sub: str
    role: str
    interface: str
    what: str
    districts: Mapping[str, int]
    records: int
    grant: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The entry as one JSON object."""
        return {"at": self.at, "sub": self.sub, "role": self.role, "grant": self.grant,
                "interface": self.interface, "what": self.what,
                "districts": dict(self.districts), "records": self.records}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AuditEntry:
        """The entry :meth:`to_record` wrote; KeyError/TypeError if it is not one."""
        return cls(at=float(record["at"]), sub=str(record["sub"]), role=str(record["role"]),
                   interface=str(record["interface"]), what=str(record["what"]),
                   districts={str(k): int(v) for k, v in record["districts"].items()},
                   records=int(record["records"]), grant=record.get("grant"))


@dataclass
class Reader:
    """Everything one reader read of a district in a time range."""

    sub: str
    role: str
    grant: str | None
    reads: int = 0
    records: int = 0
    first: float = float("inf")
    last: float = float("-inf")
    interfaces: set[str] = field(default_factory=set)
    what: set[str] = field(default_factory=set)

    def to_record(self) -> dict[str, Any]:
        """The row as one JSON object."""
        return {"sub": self.sub, "role": self.role, "grant": self.grant, "reads": self.reads,
                "records": self.records, "first": self.first, "last": self.last,
                "interfaces": sorted(self.interfaces), "what": sorted(self.what)}


def readers(entries: Iterable[AuditEntry], *, district: str, since: float,
            until: float) -> list[Reader]:
    """Who read ``district``'s data in [since, until): most records first."""
    found: dict[tuple[str, str, str | None], Reader] = {}
    for entry in entries:
        if not since <= entry.at < until:
            continue
        count = entry.districts.get(district)
        if count is None and ALL_DISTRICTS in entry.districts:
            count = entry.districts[ALL_DISTRICTS]
        if not count:
            continue
        key = (entry.sub, entry.role, entry.grant)
        row = found.setdefault(key, Reader(entry.sub, entry.role, entry.grant))
        row.reads += 1
        row.records += count
        row.first, row.last = min(row.first, entry.at), max(row.last, entry.at)
        row.interfaces.add(entry.interface)
        row.what.add(entry.what)
    return sorted(found.values(), key=lambda r: (-r.records, r.sub))


def count_districts(document: Any) -> dict[str, int]:
    """Records per district in an answer: each object naming a ``district`` counts once (its
    own nested objects are not counted again); NGSI-LD's ``{"value": ...}`` form is read."""
    counts: dict[str, int] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            district = value.get("district")
            if isinstance(district, Mapping):
                district = district.get("value")
            if isinstance(district, str):
                counts[district] = counts.get(district, 0) + 1
                return
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(document)
    return counts
