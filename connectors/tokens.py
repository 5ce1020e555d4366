"""Signed access tokens for the feed and the dispatch API: JSON Web Tokens (RFC 7519), no clock.

The claims a token carries, and their checks, are :mod:`models.claims`. Tokens of an OpenID
Connect provider are checked in :mod:`connectors.oidc`, with the same time checks
(:func:`check_times`) and errors.

A local token is a JWT signed with HS256 under a shared secret (PyJWT does the JOSE work); its
claims are ``{"role", "department"?, "sub", "iat", "exp"}`` (epoch seconds)::

    token = issue_token(role="dispatcher", department="water-authority", sub="ana",
                        secret=secret, now=now, ttl_s=8 * 3600)
    claims = verify_token(token, secret=secret, now=now)     # Claims(role="dispatcher", ...)

Roles are :data:`ROLES`; a dispatcher belongs to exactly one department, other roles to none.
:func:`verify_token` checks the shape, then the algorithm and signature, then the claims and
expiry, and raises one of:

- TokenError
    - WeakSecret: the secret is shorter than :data:`MIN_SECRET_BYTES`
    - MalformedToken: not a JWT of valid claims, or claims that make no sense
    - ForgedToken: the signature does not match (tampered, signed with another secret or key,
      or with an algorithm this server does not accept)
    - ForeignToken: genuine, but issued for another audience or by another issuer
    - ExpiredToken: ``now`` is at or past ``exp``
    - ProviderUnavailable: the identity provider's keys could not be fetched

Messages never repeat the token or the secret.
"""

from __future__ import annotations

import math
import re
import secrets
from typing import Any

import jwt

from models.claims import ROLES, Claims, MalformedToken, TokenError
from models.claims import malformed as _malformed
from models.timefmt import iso
from settings.auth import LOCAL_ALGORITHM

__all__ = [
    "MIN_SECRET_BYTES",
    "ROLES",
    "Claims",
    "ExpiredToken",
    "ForeignToken",
    "ForgedToken",
    "MalformedToken",
    "ProviderUnavailable",
    "TokenError",
    "WeakSecret",
    "check_times",
    "encode_token",
    "issue_token",
    "token_header",
    "verify_token",
]

MIN_SECRET_BYTES = 32
"""RFC 7518 3.2: an HS256 key is at least as long as the hash (256 bits)."""

_PART = re.compile(r"^[A-Za-z0-9_-]*$")
_MAX_TOKEN_CHARS = 16384
_NO_TIME_CHECKS = {"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                   "verify_aud": False, "verify_iss": False}


class WeakSecret(TokenError):
    """Raised when the signing secret is too short to be safe."""


class ForgedToken(TokenError):
    """Raised when a token's signature does not match its payload under a key we trust."""


class ForeignToken(TokenError):
    """Raised when a genuine token was issued by another issuer or for another audience."""


class ProviderUnavailable(TokenError):
    """Raised when the identity provider's discovery document or keys cannot be fetched."""


class ExpiredToken(TokenError):
    """Raised when a token's ``exp`` has passed; carries ``exp`` and ``now``."""

    def __init__(self, reason: str, *, exp: float, now: float) -> None:
        super().__init__(reason)
        self.exp = exp
        self.now = now


def issue_token(
    *, role: str, sub: str, secret: str | bytes, now: float, ttl_s: float,
    department: str | None = None, grant: str | None = None,
) -> str:
    """A token for ``sub`` in ``role`` valid from ``now`` for ``ttl_s`` seconds, with a fresh
    ``jti`` (its id, to revoke it by)."""
    if not (math.isfinite(ttl_s) and ttl_s >= 1):
        msg = f"token lifetime ttl_s={ttl_s!r} must be at least 1 second"
        raise TokenError(msg)
    iat = int(math.floor(now))
    claims = Claims(role=role, sub=sub, iat=iat, exp=iat + int(ttl_s), department=department,
                    grant=grant, jti=secrets.token_hex(8))
    return encode_token(claims, secret)


def encode_token(claims: Claims, secret: str | bytes) -> str:
    """Sign ``claims`` (checked first) into an HS256 JWT."""
    return jwt.encode(claims.check().payload(), _key(secret), algorithm=LOCAL_ALGORITHM)


def token_header(token: object) -> dict[str, Any]:
    """The JOSE header of ``token``, unverified (to choose how to verify it); MalformedToken."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
        _malformed(f"a token is a string of at most {_MAX_TOKEN_CHARS} characters")
    parts = token.strip().split(".")
    if len(parts) != 3 or not all(_PART.match(part) for part in parts) or not parts[0]:
        _malformed(f"a token is three base64url parts joined by '.' (a JWT), "
                   f"got {len(parts)} part(s)")
    try:
        return jwt.get_unverified_header(token.strip())
    except jwt.InvalidTokenError:
        _malformed("token header is not base64url JSON")


def verify_token(
    token: str, *, secret: str | bytes, now: float, leeway_s: float = 0.0
) -> Claims:
    """The claims of a genuine, unexpired local token; a :class:`TokenError` subclass otherwise.

    ``leeway_s`` tolerates clock skew: a token expires at ``exp + leeway_s`` and may be issued
    up to ``leeway_s`` (at least 60 s) in the future.
    """
    key = _key(secret)
    algorithm = token_header(token).get("alg")
    if algorithm != LOCAL_ALGORITHM:
        msg = (f"token is signed with {algorithm!r}; local tokens are {LOCAL_ALGORITHM} "
               "(a provider's token needs auth.oidc configured)")
        raise ForgedToken(msg)
    try:
        body = jwt.decode(token.strip(), key, algorithms=[LOCAL_ALGORITHM],
                          options=_NO_TIME_CHECKS)
    except jwt.InvalidSignatureError as exc:
        msg = "token signature does not match: it was altered or signed with another secret"
        raise ForgedToken(msg) from exc
    except jwt.InvalidTokenError as exc:
        msg = f"token payload is not base64url JSON claims ({exc})"
        raise MalformedToken(msg) from exc
    claims = _claims(body)
    check_times(claims, now=now, leeway_s=leeway_s)
    return claims


def check_times(
    claims: Claims, *, now: float, leeway_s: float, nbf: Any = None
) -> Claims:
    """``claims`` when valid at ``now`` (give or take ``leeway_s``); ExpiredToken or Malformed."""
    if now >= claims.exp + leeway_s:
        msg = f"token of {claims.sub!r} expired at {iso(claims.exp)} (now {iso(now)})"
        raise ExpiredToken(msg, exp=claims.exp, now=now)
    if claims.iat > now + max(leeway_s, 60.0):
        _malformed(f"token of {claims.sub!r} is issued in the future, at {iso(claims.iat)}")
    if nbf is not None:
        if isinstance(nbf, bool) or not isinstance(nbf, int | float):
            _malformed(f"nbf {nbf!r} must be epoch seconds")
        if nbf > now + leeway_s:
            _malformed(f"token of {claims.sub!r} is not valid before {iso(nbf)}")
    return claims


def _claims(body: Any) -> Claims:
    if not isinstance(body, dict):
        _malformed(f"token claims must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - {"role", "sub", "iat", "exp", "department", "grant", "jti"})
    missing = sorted({"role", "sub", "iat", "exp"} - set(body))
    if unknown or missing:
        _malformed(f"token claims: missing {missing}, unknown {unknown}")
    return Claims(role=body["role"], sub=body["sub"], iat=body["iat"], exp=body["exp"],
                  department=body.get("department"), grant=body.get("grant"),
                  jti=body.get("jti")).check()


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < MIN_SECRET_BYTES:
        msg = f"token secret has {len(key)} bytes; at least {MIN_SECRET_BYTES} are needed"
        raise WeakSecret(msg)
    return key
