"""Signed access tokens for the feed and the dispatch API: HMAC-SHA256, stdlib only, no clock.

The claims a token carries, and their checks, are :mod:`models.claims`.

A token is ``<payload>.<signature>``, both base64url without padding: the payload is compact JSON
of the claims ``{"role", "department"?, "sub", "iat", "exp"}`` (epoch seconds), the signature
HMAC-SHA256 of the payload text under a shared secret::

    token = issue_token(role="dispatcher", department="water-authority", sub="ana",
                        secret=secret, now=now, ttl_s=8 * 3600)
    claims = verify_token(token, secret=secret, now=now)     # Claims(role="dispatcher", ...)

Roles are :data:`ROLES`; a dispatcher belongs to exactly one department, other roles to none.
:func:`verify_token` checks the shape, then the signature (constant-time), then the claims and
expiry, and raises one of:

- TokenError
    - WeakSecret: the secret is shorter than :data:`MIN_SECRET_BYTES`
    - MalformedToken: not two base64url parts of JSON claims, or claims that make no sense
    - ForgedToken: the signature does not match (tampered, or signed with another secret)
    - ExpiredToken: ``now`` is at or past ``exp``

Messages never repeat the token or the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re

from models.claims import ROLES, Claims, MalformedToken, TokenError
from models.claims import malformed as _malformed
from models.timefmt import iso

__all__ = [
    "MIN_SECRET_BYTES",
    "ROLES",
    "Claims",
    "ExpiredToken",
    "ForgedToken",
    "MalformedToken",
    "TokenError",
    "WeakSecret",
    "encode_token",
    "issue_token",
    "verify_token",
]

MIN_SECRET_BYTES = 16
_PART = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_TOKEN_CHARS = 4096


class WeakSecret(TokenError):
    """Raised when the signing secret is too short to be safe."""


class ForgedToken(TokenError):
    """Raised when a token's signature does not match its payload under our secret."""


class ExpiredToken(TokenError):
    """Raised when a token's ``exp`` has passed; carries ``exp`` and ``now``."""

    def __init__(self, reason: str, *, exp: float, now: float) -> None:
        super().__init__(reason)
        self.exp = exp
        self.now = now


def issue_token(
    *, role: str, sub: str, secret: str | bytes, now: float, ttl_s: float,
    department: str | None = None,
) -> str:
    """A token for ``sub`` in ``role`` valid from ``now`` for ``ttl_s`` seconds."""
    if not (math.isfinite(ttl_s) and ttl_s >= 1):
        msg = f"token lifetime ttl_s={ttl_s!r} must be at least 1 second"
        raise TokenError(msg)
    iat = int(math.floor(now))
    claims = Claims(role=role, sub=sub, iat=iat, exp=iat + int(ttl_s), department=department)
    return encode_token(claims, secret)


def encode_token(claims: Claims, secret: str | bytes) -> str:
    """Sign ``claims`` (checked first) into a token."""
    key = _key(secret)
    body = json.dumps(claims.check().payload(), separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False)
    payload = _b64encode(body.encode())
    return f"{payload}.{_sign(key, payload)}"


def verify_token(
    token: str, *, secret: str | bytes, now: float, leeway_s: float = 0.0
) -> Claims:
    """The claims of a genuine, unexpired token; a :class:`TokenError` subclass otherwise.

    ``leeway_s`` tolerates clock skew: a token expires at ``exp + leeway_s`` and may be issued
    up to ``leeway_s`` (at least 60 s) in the future.
    """
    key = _key(secret)
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
        _malformed(f"a token is a string of at most {_MAX_TOKEN_CHARS} characters")
    parts = token.strip().split(".")
    if len(parts) != 2 or not all(_PART.match(part) for part in parts):
        _malformed(f"a token is two base64url parts joined by '.', got {len(parts)} part(s)")
    payload, signature = parts
    if not hmac.compare_digest(_sign(key, payload), signature):
        msg = "token signature does not match: it was altered or signed with another secret"
        raise ForgedToken(msg)
    claims = _claims(payload)
    if now >= claims.exp + leeway_s:
        msg = f"token of {claims.sub!r} expired at {iso(claims.exp)} (now {iso(now)})"
        raise ExpiredToken(msg, exp=claims.exp, now=now)
    if claims.iat > now + max(leeway_s, 60.0):
        _malformed(f"token of {claims.sub!r} is issued in the future, at {iso(claims.iat)}")
    return claims


def _claims(payload: str) -> Claims:
    try:
        body = json.loads(_b64decode(payload))
    except (ValueError, binascii.Error):
        _malformed("token payload is not base64url JSON")
    if not isinstance(body, dict):
        _malformed(f"token claims must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - {"role", "sub", "iat", "exp", "department"})
    missing = sorted({"role", "sub", "iat", "exp"} - set(body))
    if unknown or missing:
        _malformed(f"token claims: missing {missing}, unknown {unknown}")
    return Claims(role=body["role"], sub=body["sub"], iat=body["iat"], exp=body["exp"],
                  department=body.get("department")).check()


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < MIN_SECRET_BYTES:
        msg = f"token secret has {len(key)} bytes; at least {MIN_SECRET_BYTES} are needed"
        raise WeakSecret(msg)
    return key


def _sign(key: bytes, payload: str) -> str:
    return _b64encode(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
