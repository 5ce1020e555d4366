"""Tokens of an OpenID Connect provider: its keys fetched over HTTP, its claims mapped to ours.

    verify = ProviderTokens(settings.auth.oidc)          # nothing fetched yet
    claims = verify(token, now=time.time())               # Claims(role="dispatcher", ...)

On first use the provider's discovery document (``<issuer>/.well-known/openid-configuration``)
names its JWKS; PyJWT's :class:`jwt.PyJWKClient` fetches and caches the keys, and fetches them
again when they are ``jwks_max_age_s`` old or when a token names a key id (``kid``) it has not
seen, at most once per ``jwks_min_refresh_s``: a provider that rotates its keys is followed
without a restart, and a key it stopped publishing is refused once the cache has been refreshed.

A token is checked for the algorithm (only ``algorithms``, never HMAC or ``none``), the
signature, ``iss``, ``aud``, then :func:`provider_claims` maps its claims to cityheart's (pure:
roles and departments by configuration) and :func:`connectors.tokens.check_times` checks
``exp``, ``iat`` and ``nbf`` with ``leeway_s``. Errors are the :class:`connectors.tokens.TokenError`
tree; a provider that does not answer gives :class:`~connectors.tokens.ProviderUnavailable`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import urllib.request
from typing import Any
from urllib.error import URLError

import jwt

from connectors.tokens import (
    Claims,
    ForeignToken,
    ForgedToken,
    MalformedToken,
    ProviderUnavailable,
    check_times,
    token_header,
)
from models.claims import ROLES
from models.claims import malformed as _malformed
from settings.auth import OidcSettings

__all__ = ["ProviderTokens", "discovery_url", "provider_claims"]

log = logging.getLogger(__name__)

_TIMEOUT_S = 10.0
_MAX_DOCUMENT_BYTES = 1 << 20


def discovery_url(issuer: str) -> str:
    """Where an OpenID Connect provider publishes its configuration (OIDC Discovery 4)."""
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


class ProviderTokens:
    """Verify tokens of the provider in ``settings`` (see the module doc); thread-safe."""

    def __init__(self, settings: OidcSettings, *, timeout_s: float = _TIMEOUT_S) -> None:
        self.settings = settings
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._keys: jwt.PyJWKClient | None = None

    def __call__(self, token: str, *, now: float) -> Claims:
        """The cityheart claims of a genuine, current provider token; TokenError otherwise."""
        oidc = self.settings
        header = token_header(token)
        algorithm = header.get("alg")
        if algorithm not in oidc.algorithms:
            msg = (f"token is signed with {algorithm!r}; tokens of {oidc.issuer} must use one "
                   f"of {list(oidc.algorithms)}")
            raise ForgedToken(msg)
        key = self._key(header.get("kid"))
        try:
            body = jwt.decode(
                token.strip(), key, algorithms=[algorithm], audience=list(oidc.audience),
                issuer=oidc.issuer,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["iss", "aud", "exp", "sub"]},
            )
        except jwt.InvalidSignatureError as exc:
            msg = f"token signature does not match the key {oidc.issuer} publishes for it"
            raise ForgedToken(msg) from exc
        except jwt.InvalidAudienceError as exc:
            msg = f"token is not meant for cityheart: its aud is not one of {list(oidc.audience)}"
            raise ForeignToken(msg) from exc
        except jwt.InvalidIssuerError as exc:
            msg = f"token was not issued by {oidc.issuer}"
            raise ForeignToken(msg) from exc
        except jwt.InvalidTokenError as exc:
            msg = f"token of {oidc.issuer} is not a valid JWT: {exc}"
            raise MalformedToken(msg) from exc
        claims = provider_claims(body, oidc, now=now)
        return check_times(claims, now=now, leeway_s=oidc.leeway_s, nbf=body.get("nbf"))

    def _key(self, kid: Any) -> Any:
        keys = self._client()
        try:
            if kid is None:
                signing = keys.get_signing_keys()
                if len(signing) != 1:
                    _malformed(f"token has no kid and {self.settings.issuer} publishes "
                               f"{len(signing)} signing keys")
                return signing[0].key
            return keys.get_signing_key(str(kid)).key
        except jwt.PyJWKClientConnectionError as exc:
            msg = f"the keys of {self.settings.issuer} could not be fetched: {exc}"
            raise ProviderUnavailable(msg) from exc
        except jwt.PyJWKClientError as exc:
            msg = (f"token is signed with a key {self.settings.issuer} does not publish "
                   f"(kid {kid!r}): forged, or signed with a key it has rotated away")
            raise ForgedToken(msg) from exc

    def _client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                oidc = self.settings
                document = self._discover()
                self._keys = jwt.PyJWKClient(
                    document["jwks_uri"], lifespan=oidc.jwks_max_age_s,
                    cooldown_duration=oidc.jwks_min_refresh_s, timeout=self._timeout_s)
            return self._keys

    def _discover(self) -> dict[str, Any]:
        url = discovery_url(self.settings.issuer)
        try:
            request = urllib.request.Request(url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                document = json.loads(response.read(_MAX_DOCUMENT_BYTES))
        except (URLError, OSError, ValueError) as exc:
            msg = f"the discovery document {url} could not be read: {exc}"
            raise ProviderUnavailable(msg) from exc
        if not isinstance(document, dict) or not isinstance(document.get("jwks_uri"), str):
            msg = f"the discovery document {url} names no jwks_uri"
            raise ProviderUnavailable(msg)
        if document.get("issuer", "").rstrip("/") != self.settings.issuer:
            msg = (f"the discovery document {url} is for issuer {document.get('issuer')!r}, "
                   f"not {self.settings.issuer!r}")
            raise ProviderUnavailable(msg)
        log.info("oidc: %s publishes its keys at %s", self.settings.issuer, document["jwks_uri"])
        return document


def provider_claims(body: dict[str, Any], oidc: OidcSettings, *, now: float) -> Claims:
    """Cityheart's claims for a provider's verified claims ``body`` (pure; MalformedToken)."""
    sub = body.get(oidc.subject_claim) or body.get("sub")
    found = _at(body, oidc.roles_claim)
    values = [found] if isinstance(found, str) else found if isinstance(found, list) else []
    granted = {oidc.roles[v] for v in values if isinstance(v, str) and v in oidc.roles}
    if not granted:
        _malformed(f"token of {sub!r} grants no cityheart role: {oidc.roles_claim} is "
                   f"{found!r}, mapped are {sorted(oidc.roles)}")
    role = next(r for r in ROLES if r in granted)
    department = None
    if role == "dispatcher":
        value = _at(body, oidc.department_claim) if oidc.department_claim else None
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str) or not value:
            _malformed(f"token of dispatcher {sub!r} names no single department at "
                       f"{oidc.department_claim!r} (got {value!r})")
        department = oidc.departments.get(value, value)
    exp = body.get("exp")
    iat = body.get("iat", math.floor(now))
    for name, value in (("exp", exp), ("iat", iat)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            _malformed(f"{name} {value!r} must be epoch seconds")
    return Claims(role=role, sub=sub if isinstance(sub, str) else "", iat=int(iat),
                  exp=int(exp), department=department).check()


def _at(body: dict[str, Any], path: str | None) -> Any:
    """The value at a dotted ``path`` (``realm_access.roles``), or None."""
    value: Any = body
    for part in (path or "").split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
