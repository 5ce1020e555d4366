"""What the dashboard's page needs to sign people in through an OpenID Connect provider.

Pure (no I/O): ``/config.json`` carries :func:`signin_document` (None without ``auth.oidc`` or
its ``client_id``: the page then only offers the paste-in of ``cityheart token``), and every
answer carries :func:`content_security_policy`, which lets the page reach the provider (its
discovery document and token endpoint, on the issuer's origin) and nothing else::

    {"issuer": "https://id.city.example/realms/city", "client_id": "cityheart-dashboard",
     "scope": "openid profile", "token": "access_token"}

The page runs the authorization code flow with PKCE itself (``web/js/oidc.js``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from settings.auth import OidcSettings

__all__ = ["content_security_policy", "signin_document"]

_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:{provider}; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def signin_document(oidc: OidcSettings | None) -> dict[str, Any] | None:
    """The provider the page signs in with, or None when it only takes pasted tokens."""
    if oidc is None or oidc.client_id is None:
        return None
    return {"issuer": oidc.issuer, "client_id": oidc.client_id, "scope": oidc.scope,
            "token": oidc.dashboard_token}


def content_security_policy(oidc: OidcSettings | None) -> str:
    """Everything from this server; only the feed's websocket and the provider elsewhere."""
    if signin_document(oidc) is None:
        return _POLICY.format(provider="")
    parts = urlsplit(oidc.issuer)
    return _POLICY.format(provider=f" {parts.scheme}://{parts.netloc}")
