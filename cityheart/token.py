"""``cityheart token`` and the token check of the feed and the dashboard's API.

The signing secret of local tokens lives only in ``CITYHEART_TOKEN_SECRET`` (never in
config.yaml); with ``auth.oidc`` the tokens of that OpenID Connect provider are accepted too
(:mod:`connectors.oidc`), told apart from local ones by their algorithm (HS256 is local)::

    token = issue(settings, role="dispatcher", department="water-authority", sub="ana")
    authenticate = token_check(settings)         # None: no secret, no provider, not required
    authenticate, view = feed_auth(settings)     # (None, None) likewise
    run_feed(settings, authenticate=authenticate, view=view, may_subscribe=may_subscribe)

With tokens on, the feed also refuses a channel the token's role may see nothing of
(alerts.access.may_subscribe: a viewer asking for ``alerts``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from alerts.access import may_subscribe
from alerts.access import view as access_view
from connectors.audit_log import AuditLog
from connectors.feed.auth import Authenticate, View
from connectors.feed.server import run_feed
from connectors.oidc import ProviderTokens
from connectors.revocations import RevocationList, revoke
from connectors.tokens import (
    MIN_SECRET_BYTES,
    Claims,
    ForgedToken,
    issue_token,
    token_header,
    verify_token,
)
from models.choices import refusal
from models.errors import ConfigError
from settings.auth import LOCAL_ALGORITHM, TOKEN_SECRET_ENV
from settings.config import Settings

__all__ = [
    "audit_path", "feed_auth", "issue", "revoke_token", "revoked_path", "run_feed_with_auth",
    "token_check", "token_secret",
]


def token_secret(env: Mapping[str, str] | None = None) -> str:
    """The signing secret from ``CITYHEART_TOKEN_SECRET``; ConfigError if unset or too short."""
    secret = (os.environ if env is None else env).get(TOKEN_SECRET_ENV, "")
    if not secret:
        msg = f"is not set; export a random secret of at least {MIN_SECRET_BYTES} bytes"
        raise ConfigError(TOKEN_SECRET_ENV, "", msg)
    if len(secret.encode()) < MIN_SECRET_BYTES:
        msg = (f"has {len(secret.encode())} bytes; at least {MIN_SECRET_BYTES} are needed "
               "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        raise ConfigError(TOKEN_SECRET_ENV, "", msg)
    return secret


def issue(
    settings: Settings, *, role: str, department: str | None = None, sub: str | None = None,
    ttl_s: float | None = None, env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time, grant: str | None = None,
) -> str:
    """A signed token for ``role`` (and ``department``, or a consumer's ``grant``), valid
    ``ttl_s`` (auth.token_ttl_s).

    ConfigError if ``department`` is not one of ``incidents.departments`` or ``grant`` not one
    of ``auth.grants``.
    """
    departments = [d.id for d in settings.incidents.departments]
    if department is not None and (reason := refusal([department], departments, "department")):
        raise ConfigError("cityheart token", "--department", reason)
    if grant is not None and (reason := refusal([grant], list(settings.auth.grants), "grant")):
        raise ConfigError("cityheart token", "--grant", reason)
    return issue_token(
        role=role, department=department, grant=grant, sub=sub or role,
        secret=token_secret(env),
        now=clock(), ttl_s=settings.auth.token_ttl_s if ttl_s is None else ttl_s,
    )


def audit_path(settings: Settings, config_path: Path) -> Path:
    """The read audit's directory: ``auth.audit_dir``, relative to config.yaml's directory."""
    return config_path.resolve().parent / settings.auth.audit_dir


def revoked_path(settings: Settings, config_path: Path) -> Path:
    """The revoked-token file: ``auth.revoked_file``, relative to config.yaml's directory."""
    return config_path.resolve().parent / settings.auth.revoked_file


def revoke_token(settings: Settings, token: str, *, config_path: Path, reason: str = "",
                 env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> dict[str, object]:
    """Revoke ``token`` (checked first: it must be genuine); the entry written."""
    check = token_check(settings, env, clock, revoked=revoked_path(settings, config_path))
    if check is None:
        raise ConfigError(TOKEN_SECRET_ENV, "", "is not set: no token can be checked here")
    claims = check(token)
    try:
        return revoke(revoked_path(settings, config_path), claims, now=clock(), reason=reason)
    except ValueError as exc:
        raise ConfigError("cityheart revoke", "TOKEN", str(exc)) from None


def token_check(
    settings: Settings, env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time, *, revoked: Path | None = None,
) -> Authenticate | None:
    """Token -> Claims for local tokens (with a secret) and the provider's (with auth.oidc).

    None when there is neither and tokens are not required; a ConfigError when they are
    required and there is no way to check one. A token revoked in ``revoked`` (the
    ``auth.revoked_file``, read again when it changes) is refused; a consumer's claims carry
    its grant (``auth.grants``), and a token naming a grant not configured here is refused.
    """
    revocations = RevocationList(revoked or Path(settings.auth.revoked_file))
    grants = settings.auth.grant_rules()
    source = os.environ if env is None else env
    oidc = settings.auth.oidc
    if not source.get(TOKEN_SECRET_ENV) and oidc is None and not settings.auth.required:
        return None
    secret = token_secret(source) if source.get(TOKEN_SECRET_ENV) or oidc is None else None
    provider = ProviderTokens(oidc) if oidc is not None else None

    def verify(token: str) -> Claims:
        local = token_header(token).get("alg") == LOCAL_ALGORITHM
        if provider is not None and not local:
            return provider(token, now=clock())
        if secret is None:
            msg = f"this server accepts only tokens of {provider.settings.issuer}"
            raise ForgedToken(msg)
        return verify_token(token, secret=secret, now=clock())

    def authenticate(token: str) -> Claims:
        claims = revocations.check(verify(token))
        if claims.role != "consumer":
            return claims
        rules = grants.get(claims.grant or "")
        if rules is None:
            msg = f"token of {claims.sub!r} names grant {claims.grant!r}, not one of {list(grants)}"
            raise ForgedToken(msg)
        return dataclasses.replace(claims, rules=rules)

    return authenticate


def feed_auth(
    settings: Settings, env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time, *, revoked: Path | None = None,
) -> tuple[Authenticate | None, View | None]:
    """The feed's token check and masking; (None, None) as :func:`token_check` gives None."""
    authenticate = token_check(settings, env, clock, revoked=revoked)
    return (None, None) if authenticate is None else (authenticate, access_view)


def run_feed_with_auth(settings: Settings, *, revoked: Path | None = None,
                       audit_dir: Path | None = None) -> None:
    """``run_feed`` with tokens, role masking and channel checks on when a secret is set, the
    departments' KPIs on its ``kpis`` channel, and what each client received audited."""
    from cityheart.services.kpi_digest import KpiDigest

    authenticate, view = feed_auth(settings, revoked=revoked)
    run_feed(settings, authenticate=authenticate, view=view,
             may_subscribe=may_subscribe if view is not None else None,
             digests=[KpiDigest(settings)],
             audit=AuditLog(audit_dir or Path(settings.auth.audit_dir), "feed"))
