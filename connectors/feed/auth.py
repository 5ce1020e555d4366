"""Authentication, role masking and abuse limits for the push feed: what ``feed_server`` uses.

The feed never decides what a role may see: it is given functions by the cityheart layer,

    authenticate(token) -> Claims     # raises connectors.tokens.TokenError when it is not genuine
    view(claims, message) -> dict | None   # alerts.access.view: the masked message, or None
    may_subscribe(claims, channel) -> bool # alerts.access.may_subscribe

A client presents its token as ``?token=...`` in the feed URL or as ``"token"`` in a subscribe
op (:func:`token_in_path`, :func:`split_token`). Operators and unauthenticated clients (only
allowed while ``auth.required`` is false) get the shared bytes serialised once; other roles get
bytes masked once per (role, department) per message, kept in a :class:`MaskCache`::

    masks = MaskCache(view, limit=4 * backlog)
    shown = masks.shown(claims, message)   # message itself, a masked copy, or None

A subscribe op naming a channel the role may see nothing of is refused with
``forbidden_channel`` (:func:`check_channels`); the other channels work when asked again without
it. :func:`quiet_logger` keeps websockets' debug dumps (request paths and frames, which carry
tokens) out of the logs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from connectors.feed.protocol import CHANNELS, FeedError, FeedMessage
from connectors.tokens import Claims, TokenError

__all__ = [
    "Authenticate",
    "MaskCache",
    "MaySubscribe",
    "View",
    "admit",
    "allowed_channels",
    "check_channels",
    "quiet_logger",
    "split_token",
    "token_in_path",
]

Authenticate = Callable[[str], Claims]
"""A token's claims, or a connectors.tokens.TokenError."""
View = Callable[[Claims, Mapping[str, Any]], "dict[str, Any] | None"]
"""The part of a feed message a role may see, or None."""
MaySubscribe = Callable[[Claims, str], bool]
"""Whether a role may see anything on a feed channel."""


def token_in_path(path: str) -> str | None:
    """The ``token`` query parameter of a request path, or None when there is none."""
    values = parse_qs(urlsplit(path).query).get("token")
    return values[-1] if values else None


def split_token(frame: str | bytes) -> tuple[Any, str | bytes]:
    """(the op's ``token`` or None, the frame without it); frames that are not objects pass."""
    try:
        op = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None, frame
    if not isinstance(op, dict) or "token" not in op:
        return None, frame
    token = op.pop("token")
    return token, orjson.dumps(op)


def admit(authenticate: Authenticate | None, token: Any) -> Claims:
    """The claims of ``token``, or FeedError ``unauthorized`` saying why it is refused.

    ``token`` None means the client gave none (refused: callers admit anonymous clients
    themselves while ``auth.required`` is false).
    """
    if token is None:
        detail = "this feed requires a token: connect with ?token=... or add one to subscribe"
    elif authenticate is None:
        detail = "this feed checks no tokens (CITYHEART_TOKEN_SECRET is not set); send none"
    else:
        try:
            return authenticate(token)
        except TokenError as exc:
            detail = f"token refused: {exc}"
    raise FeedError("unauthorized", detail)


def allowed_channels(may_subscribe: MaySubscribe | None, claims: Claims | None) -> tuple[str, ...]:
    """The channels a client may subscribe to: all without a check or a token."""
    if may_subscribe is None or claims is None:
        return CHANNELS
    return tuple(c for c in CHANNELS if may_subscribe(claims, c))


def check_channels(
    may_subscribe: MaySubscribe | None, claims: Claims | None, channels: Collection[str]
) -> None:
    """Raise FeedError ``forbidden_channel`` naming the first channel the role may not see.

    An empty ``channels`` (all) passes: the role then gets what :data:`View` lets through.
    """
    allowed = allowed_channels(may_subscribe, claims)
    refused = sorted(set(channels).difference(allowed))
    if not refused or claims is None:
        return
    who = f"role {claims.role!r}"
    if claims.department is not None:
        who += f" (department {claims.department!r})"
    if claims.grant is not None:
        who += f" (grant {claims.grant!r})"
    detail = (f"{who} may not subscribe to channel {refused[0]!r}; subscribe again with "
              f"channels among {list(allowed)}")
    raise FeedError("forbidden_channel", detail)


class _NoDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


def quiet_logger(name: str) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for websockets that never logs at debug level (its frame and header dumps).

    Those dumps would put ``?token=...`` and subscribe ops, tokens included, into the log.
    """
    return _NoDebug(logging.getLogger(name), {})


class MaskCache:
    """Masked copies of feed messages, made once per (role, department or grant) and message.

    ``limit`` bounds how many (message, role, department) entries are kept; the oldest go first.
    """

    def __init__(self, view: View, limit: int) -> None:
        self.view = view
        self.limit = max(1, limit)
        self._cache: OrderedDict[tuple[int, str, str | None], FeedMessage | None] = OrderedDict()

    def shown(self, claims: Claims | None, message: FeedMessage) -> FeedMessage | None:
        """``message`` itself for operators and anonymous clients, else :meth:`masked`."""
        if claims is None or claims.role == "operator":
            return message
        return self.masked(claims, message)

    def masked(self, claims: Claims, message: FeedMessage) -> FeedMessage | None:
        """``message`` as ``claims`` may see it, or None when it may see none of it."""
        # the view depends on nothing else (a consumer's grant is configuration: one per name)
        key = (message.seq, claims.role, claims.department or claims.grant)
        if key in self._cache:
            return self._cache[key]
        shown = self.view(claims, orjson.loads(message.payload))
        result = None
        if shown is not None:
            result = dataclasses.replace(message, payload=orjson.dumps(shown))
        self._cache[key] = result
        if len(self._cache) > self.limit:
            self._cache.popitem(last=False)
        return result
