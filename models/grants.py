"""Grants: what one consumer (a department's system, an enterprise, an app) may read, to a field.

A token of role ``consumer`` names a grant (``auth.grants`` in config.yaml); the grant says
which channels (``vitals``: vital signs and indicators, ``alerts``, ``incidents``: incidents and
their events, ``kpis``), which districts and kinds, which fields, and at what level of detail::

    grant = Grant(name="water-partner", channels=frozenset({"vitals"}),
                  districts=frozenset({"harbour"}), kinds=frozenset({"water_level"}),
                  fields=frozenset({"district", "kind", "mean", "window_end"}), detail="raw")
    grant.view(message)      # the message as this consumer may see it, or None

Levels of detail:

- ``raw``: the records as they are (still cut to ``fields`` when given);
- ``aggregated``: no device ids, places or people (as the public ``viewer`` sees them) and no
  raw alerts;
- ``derived``: no value at all, only the answers to the grant's questions. A
  :class:`Question` asks whether a district's indicator is at or above a level now ("is the air
  in the harbour above the warning level: yes or no"); the consumer gets an ``answer`` message
  (district, question, yes/no, as of when) from each indicator record, never the value behind
  it, as a resident may be told "married or not" without seeing the record.

A grant never widens what a message holds: every check only removes. Control messages
(``hello``, ``subscribed``, ``error``, ``heartbeat``) pass as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CHANNEL_OF_TYPE", "DETAILS", "GRANT_CHANNELS", "Detail", "Grant", "Question"]

Detail = Literal["raw", "aggregated", "derived"]
DETAILS: tuple[str, ...] = ("raw", "aggregated", "derived")
GRANT_CHANNELS: tuple[str, ...] = ("vitals", "alerts", "incidents", "kpis")
CHANNEL_OF_TYPE: Mapping[str, str] = {
    "vital": "vitals", "indicator": "vitals", "answer": "vitals", "alert": "alerts",
    "incident": "incidents", "incident_event": "incidents", "kpi": "kpis",
}
_CONTROL = frozenset({"hello", "subscribed", "error", "heartbeat"})
_ALWAYS = frozenset({"type", "seq", "time"})
_PRIVATE = frozenset({
    "device", "device_id", "device_ids", "detector", "detectors", "station", "area",
    "substation", "worst_substation", "sensor", "sensor_id", "alert_ids",
    "lat", "lon", "lng", "latitude", "longitude", "coordinates", "coords", "location",
    "position", "geometry", "point", "centroid", "polygon",
    "comment", "comments", "note", "notes", "actor", "acknowledged_by", "reporter",
    "assignee", "title", "description",
})
_DEVICE_LISTS = frozenset({"devices", "silent", "stuck", "out_of_range"})


@dataclass(frozen=True)
class Question:
    """A yes/no question a derived-only consumer may ask of each district's indicator."""

    id: str
    indicator: str
    at_least: float

    def answer(self, message: Mapping[str, Any]) -> dict[str, Any] | None:
        """The answer an ``indicator`` record gives (None: it is not about this indicator)."""
        value = message.get("value")
        if message.get("indicator") != self.indicator or not isinstance(value, int | float):
            return None
        return {"type": "answer", "seq": message.get("seq"), "time": message.get("time"),
                "district": message.get("district"), "question": self.id,
                "answer": bool(value >= self.at_least),
                "as_of": message.get("window_end") or message.get("ts")}


@dataclass(frozen=True)
class Grant:
    """What one consumer may read (see the module doc); None in a scope means "all"."""

    name: str
    channels: frozenset[str]
    detail: Detail = "aggregated"
    districts: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    fields: frozenset[str] | None = None
    questions: tuple[Question, ...] = ()

    def may_subscribe(self, channel: str) -> bool:
        """Whether this consumer may see anything on feed ``channel``."""
        if self.detail == "derived":
            return channel == "vitals" and bool(self.questions)
        if self.detail == "aggregated" and channel == "alerts":
            return False
        return channel in self.channels

    def covers(self, district: str | None) -> bool:
        """Whether this consumer may read data of ``district`` (None: no district, e.g. KPIs)."""
        return self.districts is None or (district is not None and district in self.districts)

    def view(self, message: Mapping[str, Any]) -> dict[str, Any] | None:
        """``message`` as this consumer may see it, or None when nothing of it."""
        kind = message.get("type")
        if kind in _CONTROL:
            return dict(message)
        channel = CHANNEL_OF_TYPE.get(str(kind))
        if channel is None or channel not in self.channels or not self._in_scope(message):
            return None
        if self.detail == "derived":
            return self._derived(message)
        if self.detail == "aggregated":
            if kind == "alert":
                return None
            message = _scrub(message)
        if self.fields is None:
            return dict(message)
        return {k: v for k, v in message.items() if k in self.fields or k in _ALWAYS}

    def _in_scope(self, message: Mapping[str, Any]) -> bool:
        if self.districts is not None:
            touched = message.get("districts")
            if isinstance(touched, list | tuple) and touched:
                if not set(touched) & self.districts:
                    return False
            elif message.get("district") not in self.districts:
                return False
        if self.kinds is not None:
            kind = message.get("kind") or message.get("indicator")
            if kind is not None and kind not in self.kinds:
                return False
        return True

    def _derived(self, message: Mapping[str, Any]) -> dict[str, Any] | None:
        if message.get("type") != "indicator":
            return None
        for question in self.questions:
            answer = question.answer(message)
            if answer is not None:
                return answer
        return None


def _scrub(value: Any) -> Any:
    """``value`` without keys that name devices, places or people, at any depth."""
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items()
                if k not in _PRIVATE and not (k in _DEVICE_LISTS and not isinstance(v, int))}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value
