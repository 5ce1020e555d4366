"""``cityheart token`` and the feed's token check: the secret read from the environment here.

The signing secret lives only in ``CITYHEART_TOKEN_SECRET`` (never in config.yaml)::

    token = issue(settings, role="dispatcher", department="water-authority", sub="ana")
    authenticate, view = feed_auth(settings)     # (None, None) when no secret and not required
    run_feed(settings, authenticate=authenticate, view=view, may_subscribe=may_subscribe)

With tokens on, the feed also refuses a channel the token's role may see nothing of
(alerts.access.may_subscribe: a viewer asking for ``alerts``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from alerts.access import may_subscribe
from alerts.access import view as access_view
from connectors.feed.auth import Authenticate, View
from connectors.feed.server import run_feed
from connectors.tokens import MIN_SECRET_BYTES, Claims, issue_token, verify_token
from models.choices import refusal
from models.errors import ConfigError
from settings.auth import TOKEN_SECRET_ENV
from settings.config import Settings

__all__ = ["feed_auth", "issue", "run_feed_with_auth", "token_secret"]


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
    clock: Callable[[], float] = time.time,
) -> str:
    """A signed token for ``role`` (and ``department``), valid ``ttl_s`` (auth.token_ttl_s).

    ConfigError if ``department`` is not one of ``incidents.departments``.
    """
    departments = [d.id for d in settings.incidents.departments]
    if department is not None and (reason := refusal([department], departments, "department")):
        raise ConfigError("cityheart token", "--department", reason)
    return issue_token(
        role=role, department=department, sub=sub or role, secret=token_secret(env),
        now=clock(), ttl_s=settings.auth.token_ttl_s if ttl_s is None else ttl_s,
    )


def feed_auth(
    settings: Settings, env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[Authenticate | None, View | None]:
    """The feed's token check and masking; (None, None) without a secret unless required."""
    source = os.environ if env is None else env
    if not source.get(TOKEN_SECRET_ENV) and not settings.auth.required:
        return None, None
    secret = token_secret(source)

    def authenticate(token: str) -> Claims:
        return verify_token(token, secret=secret, now=clock())

    return authenticate, access_view


def run_feed_with_auth(settings: Settings) -> None:
    """``run_feed`` with tokens, role masking and channel checks on when a secret is set, and
    the departments' KPIs on its ``kpis`` channel."""
    from cityheart.services.kpi_digest import KpiDigest

    authenticate, view = feed_auth(settings)
    run_feed(settings, authenticate=authenticate, view=view,
             may_subscribe=may_subscribe if view is not None else None,
             digests=[KpiDigest(settings)])
