"""The ``auth:`` section of config.yaml: which tokens the feed and the dispatch API accept.

Frozen pydantic models, no I/O. Two kinds of token, both JSON Web Tokens (RFC 7519):

- local tokens, issued by ``cityheart token`` and signed (HS256) with the secret in the
  environment variable ``CITYHEART_TOKEN_SECRET`` (never configured here: the cityheart layer,
  ``cityheart.token``, reads it and passes it in);
- with ``oidc:``, tokens of the city's OpenID Connect provider (Keycloak, Keyrock, Azure AD, ...),
  checked against the keys it publishes, its claims mapped to cityheart's roles and departments::

    auth:
      required: false      # true: a client without a valid token is refused
      token_ttl_s: 43200   # default lifetime of tokens issued by `cityheart token`
      oidc:
        issuer: https://id.city.example/realms/city   # its /.well-known/openid-configuration
        audience: cityheart          # the `aud` its tokens for cityheart carry (or a list)
        client_id: cityheart-dashboard   # the dashboard's public client (code flow + PKCE)
        roles_claim: realm_access.roles  # where the provider lists a person's roles
        roles: {city-operator: operator, city-dispatcher: dispatcher, city-viewer: viewer}
        department_claim: department     # a dispatcher's department (a department id)
      grants:                          # what each consumer (role "consumer") may read
        water-partner: {channels: [vitals, incidents], districts: [harbour], detail: raw,
                        kinds: [water_level], fields: [district, kind, mean, window_end]}
        resident-app:
          detail: derived              # yes/no answers only, never a value
          questions: [{id: air-above-warning, indicator: aqi, at_least: 101}]
      revoked_file: revoked-tokens.yaml  # `cityheart token revoke`; relative to config.yaml
      audit_dir: var/audit             # who read what: `cityheart audit`

A grant (:mod:`models.grants`) names channels (vitals, alerts, incidents, kpis), districts and
kinds (left out: all), fields (left out: all) and a level of detail (raw, aggregated, derived).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.claims import ROLES
from models.grants import Grant, Question

__all__ = ["LOCAL_ALGORITHM", "TOKEN_SECRET_ENV", "AuthSettings", "GrantSettings",
           "OidcSettings", "QuestionSettings"]

TOKEN_SECRET_ENV = "CITYHEART_TOKEN_SECRET"
"""The environment variable holding the token signing secret."""

LOCAL_ALGORITHM = "HS256"
"""How local tokens are signed; a provider's tokens never may be (its keys are public)."""

_PROVIDER_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA")


class OidcSettings(BaseModel):
    """An OpenID Connect provider whose tokens cityheart accepts (see the module doc).

    ``roles`` maps the values found at ``roles_claim`` (a dotted path into the token's claims,
    whose value is a string or a list of strings) to cityheart roles; a person with several
    gets the first of operator, dispatcher, viewer. ``departments`` maps the value at
    ``department_claim`` to a department id (unmapped values are taken as ids). ``subject_claim``
    names the person (``sub`` when absent). The dashboard signs in with ``client_id`` and sends
    the provider's ``dashboard_token`` (whose ``aud`` must be ``audience``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str
    audience: tuple[str, ...]
    client_id: str | None = None
    scope: str = "openid profile"
    dashboard_token: Literal["access_token", "id_token"] = "access_token"
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256")
    leeway_s: Annotated[float, Field(ge=0, le=300)] = 30.0
    jwks_max_age_s: Annotated[float, Field(ge=1)] = 300.0
    jwks_min_refresh_s: Annotated[float, Field(ge=0)] = 5.0
    subject_claim: str = "preferred_username"
    roles_claim: str = "roles"
    roles: dict[str, Literal["operator", "dispatcher", "viewer"]]
    department_claim: str | None = "department"
    departments: dict[str, str] = {}

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        loopback = parts.hostname in ("localhost",) or _is_loopback(parts.hostname or "")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            msg = (f"auth.oidc.issuer {value!r} must be an https:// URL "
                   "(http:// only on loopback, for tests)")
            raise ValueError(msg)
        return value.rstrip("/")

    @field_validator("audience", mode="before")
    @classmethod
    def _audience(cls, value: object) -> object:
        items = (value,) if isinstance(value, str) else value
        if not items:
            msg = "auth.oidc.audience needs at least one value (the `aud` cityheart accepts)"
            raise ValueError(msg)
        return items

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in _PROVIDER_ALGORITHMS]
        if unknown or not value:
            msg = (f"auth.oidc.algorithms {list(value)!r}: {unknown!r} not accepted; "
                   f"valid: {list(_PROVIDER_ALGORITHMS)}")
            raise ValueError(msg)
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            msg = f"auth.oidc.roles must map at least one provider role to one of {list(ROLES)}"
            raise ValueError(msg)
        return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class QuestionSettings(BaseModel):
    """A yes/no question of a derived-only grant: is ``indicator`` at or above ``at_least``?"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(min_length=1)]
    indicator: Annotated[str, Field(min_length=1)]
    at_least: float


class GrantSettings(BaseModel):
    """What one consumer may read (see :class:`models.grants.Grant`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: list[Literal["vitals", "alerts", "incidents", "kpis"]] = ["vitals"]
    detail: Literal["raw", "aggregated", "derived"] = "aggregated"
    districts: list[str] | None = None
    kinds: list[str] | None = None
    fields: list[str] | None = None
    questions: list[QuestionSettings] = []

    def grant(self, name: str) -> Grant:
        """The grant as the masking code uses it."""
        return Grant(
            name=name, channels=frozenset(self.channels), detail=self.detail,
            districts=None if self.districts is None else frozenset(self.districts),
            kinds=None if self.kinds is None else frozenset(self.kinds),
            fields=None if self.fields is None else frozenset(self.fields),
            questions=tuple(Question(q.id, q.indicator, q.at_least) for q in self.questions))


class AuthSettings(BaseModel):
    """Authentication: ``required`` refuses clients without a token (else: operator)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: bool = False
    token_ttl_s: Annotated[int, Field(ge=1)] = 43200
    oidc: OidcSettings | None = None
    grants: dict[str, GrantSettings] = {}
    revoked_file: str = "revoked-tokens.yaml"
    audit_dir: str = "var/audit"

    def grant_rules(self) -> dict[str, Grant]:
        """Each configured grant by name."""
        return {name: g.grant(name) for name, g in self.grants.items()}
