"""Where incident history and the event log disagree at the flow's start: what to take up again.

The flow is the one writer of incident events, and the ``incidents`` topic its log; PostgreSQL
keeps what the recorder stored of it. Normally history is the log or behind it. When the log was
lost (an in-memory broker restarted, a topic recreated) or lost its tail, history holds
incidents the flow no longer knows: listed as open, but no component could act on them (a
command finds nothing, nothing escalates them). :func:`reconcile` compares the two and says
what to do::

    plan = reconcile(stored_incidents, logged_sequences, now=now, keep_s=QUIET_S)
    plan.restored          # (restore event, incident after it): write these to the log
    plan.by_district()     # incidents the flow's state should hold from the start

Decision: rebuild from history, do not close. An open incident stands for something in the city
(a flooded street) that a restart of the software did not fix; closing it as "orphaned" would
hide work people still have to do, and lose acknowledgements and dispatches made on it. So an
active incident (open, acknowledged, dispatched) that the log lacks, or holds only an older
version of, gets a ``restore`` event (the next sequence number, with the reason as its comment
and ``details.reason``) that goes to the log, its departments' queues and history like every
other event, and the flow's state starts with it: people can act on it, escalation goes on, and
new alerts join it. Resolved and closed incidents updated within ``keep_s`` (the time the flow's
state keeps them, :data:`flows.incidents.QUIET_S`) are taken into the state without an event, so
people can still close or reopen them. Where the log is ahead of history (the recorder has not
caught up yet), the log wins and nothing is done; where both agree the incident is taken into
the state from the start (so no command or alert arrives before the flow read the log back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerts.escalation import SYSTEM_ACTOR
from alerts.lifecycle import Incident, IncidentEvent, apply

__all__ = ["LOST_LOG", "LOST_TAIL", "Reconciliation", "reconcile", "restore_event"]

LOST_LOG = "log_lost"
"""``details.reason`` of a restore event: the log held none of the incident's events."""
LOST_TAIL = "log_behind"
"""``details.reason`` of a restore event: the log held only its first events."""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What :func:`reconcile` decided: restore events to write, incidents for the state."""

    restored: tuple[tuple[IncidentEvent, Incident], ...] = ()
    adopted: tuple[Incident, ...] = ()
    """Every incident the flow's state should hold from the start (restored ones after their
    restore event)."""

    def by_district(self) -> dict[str, list[Incident]]:
        """:attr:`adopted` by district (the flow's incident state is per district)."""
        grouped: dict[str, list[Incident]] = {}
        for incident in self.adopted:
            grouped.setdefault(incident.district, []).append(incident)
        return grouped


def restore_event(incident: Incident, *, at: float, logged: int | None) -> IncidentEvent:
    """The ``restore`` event of ``incident``, of which the log holds events up to ``logged``."""
    if logged is None:
        reason = LOST_LOG
        comment = ("restored from history: the event log that held this incident was lost "
                   f"(its last stored event is number {incident.sequence})")
    else:
        reason = LOST_TAIL
        comment = (f"restored from history: the event log lost events {logged + 1} to "
                   f"{incident.sequence} of this incident")
    return IncidentEvent(incident.id, incident.sequence + 1, at, SYSTEM_ACTOR, "restore", comment,
                         incident.departments,
                         {"reason": reason, "logged_sequence": logged,
                          "stored_sequence": incident.sequence})


def reconcile(
    stored: Iterable[Incident], logged: Mapping[str, int], *, now: float, keep_s: float
) -> Reconciliation:
    """Compare incidents from history (``stored``) with the log (``logged``: incident id -> the
    highest event sequence the log holds); see the module doc. ``now`` is the restore events'
    time; inactive incidents last updated before ``now - keep_s`` are left alone."""
    restored: list[tuple[IncidentEvent, Incident]] = []
    adopted: list[Incident] = []
    for incident in stored:
        in_log = logged.get(incident.id)
        if in_log is not None and in_log > incident.sequence:
            continue  # history is behind the log: the recorder will catch up
        if not incident.active and incident.updated_at < now - keep_s:
            continue
        if incident.active and (in_log is None or in_log < incident.sequence):
            event = restore_event(incident, at=max(now, incident.updated_at), logged=in_log)
            incident = apply(incident, event)
            restored.append((event, incident))
        adopted.append(incident)
    return Reconciliation(tuple(restored), tuple(adopted))
