"""The read audit on disk: one JSON line per read, a file per component and UTC day.

    log = AuditLog(Path("var/audit"), component="dashboard")
    log.record(claims, "api", "/api/incidents", {"harbour": 3})
    for entry in read_audit(Path("var/audit"), since=t0, until=t1):
        ...

Each process writes its own files (``<component>-<YYYY-MM-DD>.jsonl``), so the feed and the
dashboard never share one; lines are appended and flushed as they are written, a line at a
time under a lock. ``cityheart audit`` reads every file of the days in its range. Old days
are removed by whoever keeps the machine (the files are plain text, a day each).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import orjson

from models.audit import AuditEntry
from models.claims import Claims

__all__ = ["AuditLog", "read_audit"]

log = logging.getLogger(__name__)


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


class AuditLog:
    """Appends this component's reads to ``directory`` (thread-safe)."""

    def __init__(self, directory: Path, component: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.component = component
        self._clock = clock
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._day = ""

    def record(self, claims: Claims | None, interface: str, what: str,
               districts: Mapping[str, int], *, at: float | None = None) -> None:
        """One read by ``claims`` (None: anonymous, who reads as an operator when auth is off)."""
        self.record_as(claims.sub if claims else "anonymous",
                       claims.role if claims else "anonymous", interface, what, districts,
                       grant=claims.grant if claims else None, at=at)

    def record_as(self, sub: str, role: str, interface: str, what: str,
                  districts: Mapping[str, int], *, grant: str | None = None,
                  at: float | None = None) -> None:
        """One read by ``sub`` in ``role`` (an open-data key: ``key:<id>``, role open-data)."""
        at = self._clock() if at is None else at
        entry = AuditEntry(at=at, sub=sub, role=role, grant=grant, interface=interface,
                           what=what, districts=dict(districts),
                           records=sum(districts.values()))
        line = orjson.dumps(entry.to_record()).decode() + "\n"
        with self._lock:
            try:
                self._open(at).write(line)
                if self._file is not None:
                    self._file.flush()
            except OSError as exc:  # an audit that cannot be written must be seen
                log.error("audit: cannot write %s's read to %s: %s", entry.sub, self.directory,
                          exc)

    def _open(self, at: float) -> TextIO:
        day = _day(at)
        if self._file is None or day != self._day:
            if self._file is not None:
                self._file.close()
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = (self.directory / f"{self.component}-{day}.jsonl").open(
                "a", encoding="utf-8")
            self._day = day
        return self._file

    def close(self) -> None:
        """Close the open file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_audit(directory: Path, *, since: float, until: float) -> Iterator[AuditEntry]:
    """Every entry of ``directory`` in [since, until), by file (component, then day)."""
    first = datetime.fromtimestamp(since, UTC).date()
    last = datetime.fromtimestamp(until, UTC).date()
    days = {(first + timedelta(days=n)).isoformat()
            for n in range((last - first).days + 1)}
    for path in sorted(directory.glob("*.jsonl")):
        if path.stem[-10:] not in days:
            continue
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    entry = AuditEntry.from_record(orjson.loads(line))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                    log.warning("audit: %s line %d is not an audit entry; skipped", path, number)
                    continue
                if since <= entry.at < until:
                    yield entry
