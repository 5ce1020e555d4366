"""``cityheart watch``: print live vital signs, alerts, incidents and KPIs from the push feed.

    cityheart watch                                   # everything, one readable line each
    cityheart watch --district old-town --kind pm25   # filtered by the feed
    cityheart watch --json --count 10                 # ten JSON objects, one a line, then exit
    cityheart watch --channel incidents --channel kpis   # incident events and records, KPIs
    cityheart watch --token "$(cityheart token --role viewer)"   # a feed with auth.required

Human lines::

    2026-11-26T08:00:10.000Z  old-town         pm25           mean 18.21  min 12.00  max 25.10 ug/m3
    2026-11-26T08:00:12.000Z  industrial-east  pm25           CRITICAL  PM2.5 mean 160.2 ug/m3 ...
    2026-11-26T08:01:00.000Z  harbour          inc-...        ACK by ana  on my way
    2026-11-26T08:01:00.000Z  harbour          acknowledged CRITICAL  inc-...  water-authority  ...
    2026-11-26T08:02:00.000Z  water-authority        opened 4  ack 3  resolved 2  backlog 2  ...

The command survives feed restarts (the client resumes where it was), exits 0 after ``count``
messages, at ``timeout_s`` or on Ctrl-C, and raises ConnectorError (the CLI exits 1 with its
message) when the feed cannot be reached or refuses the token (``--token`` or
``CITYHEART_TOKEN``, sent as ``?token=...``; the feed then masks what it sends by the token's
role).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from connectors.feed.client import FeedClient

__all__ = ["format_message", "run_watch"]

CONNECT_TIMEOUT_S = 10.0
"""How long watch keeps trying to reach the feed at start before it gives up."""


def run_watch(
    url: str,
    *,
    channels: Sequence[str],
    districts: Sequence[str],
    kinds: Sequence[str],
    as_json: bool,
    count: int | None,
    timeout_s: float | None,
    token: str | None = None,
    fit_channels: bool = False,
) -> int:
    """Print feed messages to stdout until ``count`` or ``timeout_s``; return the exit code.

    ``token`` (from ``cityheart token``) is presented to the feed; a refused one raises
    ConnectorError with the feed's reason, never the token. ``fit_channels`` (the CLI's
    default channels) drops channels the token's role may not see instead of failing.
    """
    if count is not None and count <= 0:
        return 0
    connect_s = CONNECT_TIMEOUT_S if timeout_s is None else min(CONNECT_TIMEOUT_S, timeout_s)
    client = FeedClient(
        url, channels=channels, districts=districts, kinds=kinds, connect_timeout=connect_s,
        token=token or None, fit_channels=fit_channels,
    )
    shown = 0
    try:
        for message in client.messages(timeout=timeout_s):
            line = orjson.dumps(message).decode() if as_json else format_message(message)
            print(line, flush=True)
            shown += 1
            if count is not None and shown >= count:
                break
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly, and keep Python from complaining
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        client.close()
    return 0


def format_message(message: Mapping[str, Any]) -> str:
    """One readable line for any feed message: a vital sign window, an indicator, an alert, an
    incident event, an incident or a department's KPIs (another type: its fields as JSON)."""
    formatter = _FORMATTERS.get(str(message.get("type", "vital")))
    if formatter is None:
        return orjson.dumps(message).decode()
    return formatter(message).rstrip()


def _vital(message: Mapping[str, Any]) -> str:
    when = message.get("window_end") or message.get("time", "")
    stats = "  ".join(f"{name} {_num(message.get(name))}" for name in ("mean", "min", "max"))
    return f"{when}  {_district(message)} {_kind(message)} {stats} {message.get('unit') or ''}"


def _indicator(message: Mapping[str, Any]) -> str:
    when = message.get("window_end") or message.get("time", "")
    level = message.get("level") or "-"
    low = "" if message.get("confident", True) else "  (low coverage)"
    name = str(message.get("indicator", message.get("kind", "?")))
    return (f"{when}  {_district(message)} {name:<14} {_num(message.get('value'))} "
            f"{message.get('unit') or ''} [{level}]{low}")


def _alert(message: Mapping[str, Any]) -> str:
    when = message.get("ts") or message.get("time", "")
    severity = str(message.get("severity", "?")).upper()
    text = message.get("message") or (
        f"{message.get('stat', 'value')} {_num(message.get('value'))} "
        f"{message.get('unit') or ''} {message.get('direction', '')} "
        f"{_num(message.get('threshold'))}"
    )
    return f"{when}  {_district(message)} {_kind(message)} {severity:<8}  {text}"


def _incident_event(message: Mapping[str, Any]) -> str:
    when = message.get("ts") or message.get("time", "")
    comment = f"  {message['comment']}" if message.get("comment") else ""
    return (f"{when}  {_district(message)} {message.get('incident_id', '?')}  "
            f"{str(message.get('action', '?')).upper()} by {message.get('actor', '?')}{comment}")


def _incident(message: Mapping[str, Any]) -> str:
    when = message.get("updated_at") or message.get("opened_at") or message.get("time", "")
    severity = str(message.get("severity") or "-").upper()
    departments = ",".join(message.get("departments") or []) or "-"
    return (f"{when}  {_district(message)} {message.get('state', '?'):<12} {severity:<9} "
            f"{message.get('id', '?')}  {departments}  alerts {message.get('alert_count', '?')}"
            f"  {message.get('title') or ''}")


def _kpi(message: Mapping[str, Any]) -> str:
    def seconds(value: Any) -> str:
        return "-" if not isinstance(value, int | float) else f"{value:.0f}s"

    def share(value: Any) -> str:
        return "-" if not isinstance(value, int | float) else f"{value:.0%}"

    department = str(message.get("department") or message.get("kind", "?"))
    return (f"{message.get('time', '')}  {department:<22} opened {message.get('opened', 0)}  "
            f"ack {message.get('acknowledged', 0)}  resolved {message.get('resolved', 0)}  "
            f"backlog {message.get('backlog', 0)}  "
            f"median ack {seconds(message.get('median_ack_s'))} "
            f"(SLA {share(message.get('ack_within_sla'))})  "
            f"median resolve {seconds(message.get('median_resolve_s'))} "
            f"(SLA {share(message.get('resolve_within_sla'))})  "
            f"false alarms {message.get('false_alarms', 0)}")


def _district(message: Mapping[str, Any]) -> str:
    return f"{message.get('district', '?')!s:<16}"


def _kind(message: Mapping[str, Any]) -> str:
    return f"{message.get('kind', '?')!s:<14}"


_FORMATTERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "vital": _vital, "indicator": _indicator, "alert": _alert,
    "incident_event": _incident_event, "incident": _incident, "kpi": _kpi,
}
"""Every message type of the feed's channels (connectors.feed.protocol): vitals carries vital and
indicator, alerts alert, incidents incident_event and incident, kpis kpi."""


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.2f}"
