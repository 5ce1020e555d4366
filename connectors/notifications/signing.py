"""Signatures of webhook deliveries and tokens of acknowledgement links: HMAC-SHA256, pure.

A webhook delivery carries three headers; the receiver recomputes the signature over the
timestamp, a dot and the raw body with the shared secret, and refuses old timestamps::

    headers = signed_headers(secret, body, timestamp=now, idempotency_key=notification_id)
    # X-Cityheart-Timestamp: 1765100000
    # X-Cityheart-Signature: v1=5d41402abc4b2a76b9719d911017c592...
    # Idempotency-Key: ntf-...
    verify_signature(secret, body, headers, now=now, tolerance_s=300)   # or InvalidSignature

An acknowledgement link carries a token: the JSON of what it acknowledges (incident, district,
person, department, notification, expiry), base64url, a dot, and its HMAC::

    token = link_token(secret, {"incident_id": ..., "sub": "ana", ...}, expires_at=now + 86400)
    claims = read_link_token(secret, token, now=now)        # or InvalidSignature
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from models.errors import CityheartError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "InvalidSignature",
    "link_token",
    "read_link_token",
    "sign",
    "signed_headers",
    "verify_signature",
]

TIMESTAMP_HEADER = "X-Cityheart-Timestamp"
SIGNATURE_HEADER = "X-Cityheart-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_VERSION = "v1"


class InvalidSignature(CityheartError):
    """Raised when a signature or link token does not check out; ``reason`` says why (never
    the secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid signature: {self.reason}"


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes, *, timestamp: int) -> str:
    """``v1=<hex HMAC-SHA256 of "<timestamp>." + body>``."""
    mac = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{_VERSION}={mac.hexdigest()}"


def signed_headers(
    secret: str | bytes | None, body: bytes, *, timestamp: float, idempotency_key: str
) -> dict[str, str]:
    """The headers of one delivery attempt (no signature without a secret)."""
    stamp = int(timestamp)
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(stamp),
               IDEMPOTENCY_HEADER: idempotency_key}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body, timestamp=stamp)
    return headers


def verify_signature(
    secret: str | bytes, body: bytes, headers: Mapping[str, str], *, now: float,
    tolerance_s: float = 300.0,
) -> None:
    """Check a delivery's signature and freshness (header names case-insensitive)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit():
        msg = f"header {TIMESTAMP_HEADER} {stamp!r} is not epoch seconds"
        raise InvalidSignature(msg)
    if abs(now - int(stamp)) > tolerance_s:
        msg = f"timestamp {stamp} is more than {tolerance_s:g} s from now"
        raise InvalidSignature(msg)
    if not hmac.compare_digest(given, sign(secret, body, timestamp=int(stamp))):
        msg = f"header {SIGNATURE_HEADER} does not match the body and timestamp"
        raise InvalidSignature(msg)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def link_token(secret: str | bytes, claims: Mapping[str, Any], *, expires_at: float) -> str:
    """A signed, expiring token of ``claims`` for an acknowledgement link."""
    body = _b64(orjson.dumps({**claims, "exp": int(expires_at)}, option=orjson.OPT_SORT_KEYS))
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read_link_token(secret: str | bytes, token: str, *, now: float) -> dict[str, Any]:
    """The claims of a :func:`link_token`; InvalidSignature if forged, malformed or expired."""
    body, _, mac = token.partition(".")
    expected = _b64(hmac.new(_key(secret), body.encode(), hashlib.sha256).digest())
    if not body or not hmac.compare_digest(mac, expected):
        msg = "the link's token was not signed by this deployment"
        raise InvalidSignature(msg)
    try:
        claims = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        msg = "the link's token is not JSON"
        raise InvalidSignature(msg) from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        msg = "the link's token has no expiry"
        raise InvalidSignature(msg)
    if now >= claims["exp"]:
        msg = f"the link expired {int(now - claims['exp'])} s ago"
        raise InvalidSignature(msg)
    return claims
