"""The departments' KPIs on the push feed: computed by the feed from the incident events it reads.

    digest = KpiDigest(settings)           # a connectors.feed.server.Digest
    run_feed(settings, ..., digests=[digest])

The feed reads the ``incidents`` topic from its start (as far as Kafka keeps it) and hands each
record to :meth:`KpiDigest.observe`; every ``interval_s`` the digest computes
:func:`alerts.kpi.department_kpis` over the incidents opened in the last ``period_s`` and the
feed publishes one ``kpi`` message per department on its ``kpis`` channel (``district`` "city",
``kind`` the department id; operators see all, a department's dispatchers their own, viewers
none). ``cityheart kpi`` and ``/api/kpi`` compute the same from PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from alerts.kpi import department_kpis
from settings.config import Settings

__all__ = ["KPI_PERIOD_S", "KpiDigest"]

KPI_PERIOD_S = 7 * 86400.0
"""The KPIs on the feed cover the incidents opened in the last seven days."""

_MAX_EVENTS = 200_000


class KpiDigest:
    """Department KPIs from the incident events the feed reads (see module doc)."""

    channel = "kpis"

    def __init__(
        self, settings: Settings, *, interval_s: float = 60.0, period_s: float = KPI_PERIOD_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.departments = settings.incidents.departments
        self.interval_s = interval_s
        self.period_s = period_s
        self._clock = clock
        self._events: deque[dict[str, Any]] = deque(maxlen=_MAX_EVENTS)
        self._lock = threading.Lock()

    def observe(self, channel: str, value: bytes) -> None:
        """Keep the event of an ``incidents`` record (without the incident it carries)."""
        if channel != "incidents":
            return
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if isinstance(event, dict):
            event.pop("incident", None)
            with self._lock:
                self._events.append(event)

    def records(self) -> list[bytes]:
        """One record per department: its KPIs over the last ``period_s``."""
        now = self._clock()
        with self._lock:
            events = list(self._events)
        rows = department_kpis(events, self.departments, now=now, since=now - self.period_s)
        return [orjson.dumps({**row.to_record(), "district": "city", "kind": row.department,
                              "period_s": self.period_s}) for row in rows]
