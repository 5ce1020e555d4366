"""The push feed's protocol as an AsyncAPI 3.0 document, served at ``/asyncapi.json``.

    document = asyncapi(server="ws://127.0.0.1:8765/feed", title="cityheart feed (Demo)")
    schema = message_schemas()["vital"]        # the JSON Schema of one message type

The channels, filters and error codes come from :mod:`connectors.feed.protocol`, so the document
lists what the code accepts; each message payload is a JSON Schema (draft 7) that the feed tests
check every message they receive against (``tests/connectors/test_feed_asyncapi.py``).
"""

from __future__ import annotations

from typing import Any

from connectors.feed.protocol import CHANNELS, ERROR_CODES

__all__ = ["DATA_TYPES", "asyncapi", "message_schemas"]

DATA_TYPES = ("vital", "indicator", "alert", "incident_event", "incident", "report", "kpi")
"""The data messages, one per record (two per incident record), each with a ``seq``."""

_TIME = {"type": "string", "format": "date-time", "description": "When the feed sent it (UTC)."}
_SEQ = {"type": "integer", "minimum": 1}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_CHANNEL_LIST = {"type": "array", "items": {"enum": list(CHANNELS)}}


def _data(type_: str, summary: str, fields: dict[str, Any], required: tuple[str, ...] = ()
          ) -> dict[str, Any]:
    return {
        "type": "object",
        "description": summary,
        "required": ["type", "seq", "time", "district", "kind", *required],
        "properties": {
            "type": {"const": type_},
            "seq": {**_SEQ, "description": "Position in this feed epoch; resume after it."},
            "time": _TIME,
            "district": {"type": "string", "description": "District id, or \"city\"."},
            "kind": {"type": "string"},
            **fields,
        },
        "additionalProperties": True,
    }


def _control(type_: str, summary: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": summary,
        "required": ["type", "time", *fields],
        "properties": {"type": {"const": type_}, "time": _TIME, **fields},
        "additionalProperties": False,
    }


def message_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every message the feed sends, by its ``type``."""
    window = {"window_start": {"type": "string"}, "window_end": {"type": "string"},
              "emitted_at": {"type": "string", "description": "When the flow wrote it."}}
    data = {
        "hello": _control("hello", "First message on every connection.", {
            "server": {"type": "string"},
            "epoch": {"type": "string", "description": "Changes when the feed restarts; seqs "
                      "of another epoch mean nothing here."},
            "channels": {**_CHANNEL_LIST, "description": "What this client may subscribe to."},
            "last_seq": {"type": "integer", "minimum": 0},
        }),
        "subscribed": _control("subscribed", "The answer to a subscribe op; `replay` messages "
                               "up to `last_seq` follow, then live ones.", {
            "channels": _CHANNEL_LIST, "districts": _STRINGS, "kinds": _STRINGS,
            "since": {"type": ["integer", "null"], "minimum": 0},
            "batch": {"type": "boolean"},
            "last_seq": {"type": "integer", "minimum": 0},
            "replay": {"type": "integer", "minimum": 0},
        }),
        "heartbeat": _control("heartbeat", "Liveness; every wanted message up to `last_seq` "
                              "was sent before it.", {"last_seq": {"type": "integer",
                                                                   "minimum": 0}}),
        "error": _control("error", "A refused op or token, a flood, or a resync order.", {
            "error": {"enum": list(ERROR_CODES)},
            "detail": {"type": "string", "description": "Names the field and the value."},
        }),
        "vital": _data("vital", "A closed window of one kind in one district.", {
            **window, "unit": {"type": "string"}, "count": {"type": "integer"},
            "mean": {"type": "number"}, "min": {"type": "number"}, "max": {"type": "number"},
            "last": {"type": "number"}, "devices": {"type": "integer"},
            "late": {"type": "integer"},
        }, ("window_end", "emitted_at")),
        "indicator": _data("indicator", "An indicator of a district or the city (`kind` is "
                           "the indicator's name).", {
            **window, "record": {"const": "indicator"}, "indicator": {"type": "string"},
            "value": _NUMBER_OR_NULL, "level": {"type": ["string", "null"]},
            "score": _NUMBER_OR_NULL,
        }, ("record", "indicator", "emitted_at")),
        "alert": _data("alert", "A threshold or anomaly alert.", {
            **window, "id": {"type": "string"}, "rule": {"type": "string"},
            "severity": {"type": "string"}, "value": _NUMBER_OR_NULL,
            "message": {"type": "string"},
            "lat": {"type": "number", "description": "Where what raised it is (WGS84): its "
                    "device's or reading's position, else its district's centroid."},
            "lon": {"type": "number"},
        }, ("id", "severity", "emitted_at")),
        "incident_event": _data("incident_event", "What happened to an incident; the incident "
                                "record follows as the next message.", {}),
        "incident": _data("incident", "The incident after the event before it.", {
            "id": {"type": "string"}, "state": {"type": "string"},
            "districts": {**_STRINGS, "description": "Every district its alerts came from."},
            "lat": _NUMBER_OR_NULL, "lon": _NUMBER_OR_NULL,
            "radius_m": {"type": "number", "description": "The circle around its alerts' "
                         "positions (lat, lon: its centre; null when not located)."},
        }, ("id", "state")),
        "report": _data("report", "A report from people or systems (a hotline ticket, a field "
                        "officer's note, a camera's event), on the incidents channel; "
                        "operators only.", {
            "id": {"type": "string"}, "text": {"type": "string"},
            "severity": {"enum": ["info", "warning", "critical"]},
            "ts": {"type": "number", "description": "When it happened (epoch seconds)."},
            "reporter": {"type": "string"}, "source": {"type": "string"},
            "received_at": {"type": "number"}, "lat": _NUMBER_OR_NULL, "lon": _NUMBER_OR_NULL,
            "attachments": {**_STRINGS, "description": "URLs (references, not files)."},
        }, ("id", "text", "severity", "ts", "reporter", "source")),
        "kpi": _data("kpi", "A department's KPIs (`district` \"city\", `kind` the "
                     "department id).", {}),
    }
    batch = {
        "type": "object",
        "description": "Live data messages that left together, in seq order (only to a client "
                       "that subscribed with `batch: true`; it may still get single messages).",
        "required": ["type", "messages"],
        "properties": {
            "type": {"const": "batch"},
            "messages": {"type": "array", "minItems": 1,
                         "items": {"oneOf": [data[t] for t in DATA_TYPES]}},
        },
        "additionalProperties": False,
    }
    return {**data, "batch": batch}


_SUBSCRIBE = {
    "type": "object",
    "required": ["op"],
    "properties": {
        "op": {"const": "subscribe"},
        "channels": {**_CHANNEL_LIST, "description": "Empty or absent: all you may see."},
        "districts": {**_STRINGS, "description": "District ids (or \"city\"); empty: all. "
                      "An unknown id is refused (unknown_district)."},
        "kinds": {**_STRINGS, "description": "Sensor kinds or indicator names; empty: all."},
        "since": {"type": ["integer", "null"], "minimum": 0, "description":
                  "null: a snapshot (latest vital per district and kind, latest indicator, "
                  "open incidents, latest KPIs, alerts and reports in the backlog). N: every "
                  "message after seq N of this epoch, or error resync when the backlog no longer "
                  "reaches back to N or N is ahead of the feed."},
        "token": {"type": "string", "description": "A signed token (or ?token= in the URL)."},
        "batch": {"type": "boolean", "default": False, "description":
                  "true: live data messages that leave together may come as one `batch` "
                  "message (fewer frames for a screen that takes the whole city)."},
    },
    "additionalProperties": False,
}

_RULES = """\
Connect, read `hello`, send a `subscribe` op; the feed answers `subscribed`, sends the replay
(`replay` messages, in seq order) and then live messages with no gap and no duplicate. Send
another `subscribe` at any time to change filters (the new replay replaces what was queued).

Batches: subscribe with `batch: true` and live data messages that leave together (one poll of
the feed's topics) may come as one `batch` message holding them in seq order; the replay, and
what a client that fell behind is sent, still come one message per frame, so read both.

Resume: remember the highest `seq` you received (data messages and `heartbeat.last_seq`).
After a reconnect, if `hello.epoch` is the one you had, subscribe with `since` = that seq and
you get exactly what you missed; if the epoch changed (the feed restarted) or the feed answers
`error` `resync`, subscribe with `since: null` for a snapshot and drop what you already showed
(alerts by `id`, vitals by district, kind and `window_end`).

Slow clients: while a client's queue is full a newer vital replaces the queued vital of the
same district and kind; anything else that does not fit ends in `error` `resync` and close
1013; resume as above. Limits: `ops_burst` ops at once and `ops_per_s` sustained, else
`rate_limited` and close 1008; a frame over 64 KiB closes with 1009.

Auth: present a token as `?token=...` or in the subscribe op. A bad one gets `unauthorized`
and close 1008; without one a client is an operator unless the feed requires tokens. Other
roles get messages masked for their role and department; a channel the role may not see is
refused with `forbidden_channel` and the connection stays open. `hello.channels` lists what
the role may subscribe to. Seqs are per feed process and epoch: replicas behind one address do
not share them, so a client resumes on the process that gave it its epoch (else it resyncs).
"""


def asyncapi(*, server: str, title: str) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the feed at ``server`` (a ws:// URL)."""
    schemas = message_schemas()
    messages = {
        name: {"name": name, "title": name, "summary": schema["description"],
               "contentType": "application/json", "payload": schema}
        for name, schema in schemas.items()
    }
    host, _, path = server.removeprefix("ws://").partition("/")
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": "1", "description": _RULES},
        "defaultContentType": "application/json",
        "servers": {"feed": {"host": host, "protocol": "ws", "pathname": "/" + path,
                             "description": "Text frames, one JSON object each."}},
        "channels": {
            "feed": {
                "address": "/" + path,
                "description": "One connection carries every channel the client subscribes "
                               f"to: {', '.join(CHANNELS)}. Data messages carry a `seq`.",
                "messages": {**{n: {"$ref": f"#/components/messages/{n}"} for n in schemas},
                             "subscribe": {"$ref": "#/components/messages/subscribe"}},
            }
        },
        "operations": {
            "subscribe": {"action": "receive", "channel": {"$ref": "#/channels/feed"},
                          "summary": "The client's op: what to send and from where.",
                          "messages": [{"$ref": "#/channels/feed/messages/subscribe"}]},
            "feedMessages": {"action": "send", "channel": {"$ref": "#/channels/feed"},
                             "summary": "What the feed sends.",
                             "messages": [{"$ref": f"#/channels/feed/messages/{n}"}
                                          for n in schemas]},
        },
        "components": {
            "messages": {**messages, "subscribe": {
                "name": "subscribe", "contentType": "application/json", "payload": _SUBSCRIBE,
                "summary": "Subscribe op (the only op).",
            }},
        },
        "x-error-codes": list(ERROR_CODES),
        "x-channels": list(CHANNELS),
    }
