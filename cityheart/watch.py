"""``cityheart watch``: print live vital signs and alerts from the push feed.

    cityheart watch                                   # everything, one readable line each
    cityheart watch --district old-town --kind pm25   # filtered by the feed
    cityheart watch --json --count 10                 # ten JSON objects, one a line, then exit
    cityheart watch --token "$(cityheart token --role viewer)"   # a feed with auth.required

Human lines::

    2026-11-26T08:00:10.000Z  old-town         pm25           mean 18.21  min 12.00  max 25.10 ug/m3
    2026-11-26T08:00:12.000Z  industrial-east  pm25           CRITICAL  PM2.5 mean 160.2 ug/m3 ...

The command survives feed restarts (the client resumes where it was), exits 0 after ``count``
messages, at ``timeout_s`` or on Ctrl-C, and raises ConnectorError (the CLI exits 1 with its
message) when the feed cannot be reached or refuses the token (``--token`` or
``CITYHEART_TOKEN``, sent as ``?token=...``; the feed then masks what it sends by the token's
role).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
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
    """One readable line for a vital sign window, an indicator or an alert."""
    district = str(message.get("district", "?"))
    kind = str(message.get("kind", "?"))
    unit = message.get("unit") or ""
    if message.get("type") == "alert":
        when = message.get("ts") or message.get("time", "")
        severity = str(message.get("severity", "?")).upper()
        text = message.get("message") or (
            f"{message.get('stat', 'value')} {_num(message.get('value'))} {unit} "
            f"{message.get('direction', '')} {_num(message.get('threshold'))}"
        )
        return f"{when}  {district:<16} {kind:<14} {severity:<8}  {text}"
    when = message.get("window_end") or message.get("time", "")
    if message.get("type") == "indicator":
        level = message.get("level") or "-"
        low = "" if message.get("confident", True) else "  (low coverage)"
        name = str(message.get("indicator", kind))
        return (f"{when}  {district:<16} {name:<14} {_num(message.get('value'))} {unit} "
                f"[{level}]{low}").rstrip()
    stats = "  ".join(f"{name} {_num(message.get(name))}" for name in ("mean", "min", "max"))
    return f"{when}  {district:<16} {kind:<14} {stats} {unit}".rstrip()


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.2f}"
