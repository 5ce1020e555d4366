"""A small OpenID Connect provider on loopback, for the sign-in tests: real HTTP, real keys.

    with OidcProvider(users={"ana": User("pw", roles=["city-dispatcher"],
                                         department="environment-bureau")}) as idp:
        idp.issuer                      # http://127.0.0.1:<port>
        token = idp.token("ana")        # an access token for cityheart, signed with the live key
        idp.rotate(keep_old=False)      # a new signing key; the old one is no longer published

It serves what a browser and a resource server use of a provider such as Keycloak: the discovery
document, the JWKS (RSA keys, each with a ``kid``), an authorization endpoint with a login form
(authorization code flow; PKCE S256 required) and a token endpoint that checks the code, the
client, the redirect URI and the code verifier. The JWKS and token endpoints answer
cross-origin requests, as a provider configured for a single-page client does. ``jwks_fetches``
counts the key downloads.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["OidcProvider", "User", "new_key"]


@dataclass(frozen=True)
class User:
    """A person the provider knows: password, provider roles, department (or None)."""

    password: str
    roles: list[str] = field(default_factory=list)
    department: str | None = None


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OidcProvider:
    """The provider (see module doc); ``client_id`` is the dashboard's public client."""

    def __init__(self, users: dict[str, User], *, client_id: str = "cityheart-dashboard",
                 audience: str = "cityheart", ttl_s: int = 600) -> None:
        self.users = users
        self.client_id = client_id
        self.audience = audience
        self.ttl_s = ttl_s
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = [(secrets.token_hex(4), new_key())]
        self.jwks_fetches = 0
        self.codes: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.provider = self  # type: ignore[attr-defined]
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="oidc-provider",
                                       daemon=True)

    def __enter__(self) -> OidcProvider:
        self.thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def kid(self) -> str:
        """The id of the key tokens are signed with now (the newest)."""
        return self.keys[-1][0]

    def rotate(self, *, keep_old: bool) -> str:
        """Sign with a new key from now on; publish the old ones too only with ``keep_old``."""
        with self.lock:
            fresh = (secrets.token_hex(4), new_key())
            self.keys = [*self.keys, fresh] if keep_old else [fresh]
            return fresh[0]

    def jwks(self) -> dict[str, Any]:
        with self.lock:
            keys = list(self.keys)
        return {"keys": [RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
                         | {"kid": kid, "use": "sig", "alg": "RS256"} for kid, key in keys]}

    def claims(self, username: str, **overrides: Any) -> dict[str, Any]:
        """The access token claims of ``username``, Keycloak-shaped (roles in realm_access)."""
        user = self.users[username]
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": f"uid-{username}",
            "preferred_username": username, "iat": now, "exp": now + self.ttl_s,
            "azp": self.client_id, "realm_access": {"roles": list(user.roles)},
        }
        if user.department is not None:
            body["department"] = user.department
        return body | overrides

    def token(self, username: str, *, key: rsa.RSAPrivateKey | None = None,
              kid: str | None = None, **overrides: Any) -> str:
        """An access token of ``username``, by default signed with the live key."""
        with self.lock:
            live_kid, live_key = self.keys[-1]
        return jwt.encode(self.claims(username, **overrides), key or live_key, algorithm="RS256",
                          headers={"kid": kid or live_kid})

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["none"],
        }


_LOGIN = """<!doctype html><html><head><title>Sign in to the city</title></head><body>
<h1>City identity provider</h1>
<form method="post" action="/authorize">{hidden}
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit" id="login">Sign in</button></form>{problem}</body></html>"""


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    @property
    def idp(self) -> OidcProvider:
        return self.server.provider  # type: ignore[attr-defined]

    def do_OPTIONS(self) -> None:  # noqa: N802 (the stdlib's name)
        self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path == "/.well-known/openid-configuration":
            self._json(HTTPStatus.OK, self.idp.discovery())
        elif parts.path == "/jwks":
            self.idp.jwks_fetches += 1
            self._json(HTTPStatus.OK, self.idp.jwks())
        elif parts.path == "/authorize":
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            self._login(query, "")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        path = urlsplit(self.path).path
        if path == "/authorize":
            self._authorize(form)
        elif path == "/token":
            self._token(form)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not_found"})

    def _login(self, query: dict[str, str], problem: str) -> None:
        keep = ("client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method",
                "nonce", "scope", "response_type")
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(query.get(k, ""))}">'
                         for k in keep)
        page = _LOGIN.format(hidden=hidden, problem=f"<p id='problem'>{problem}</p>")
        self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")

    def _authorize(self, form: dict[str, str]) -> None:
        idp = self.idp
        if form.get("client_id") != idp.client_id or form.get("response_type") != "code":
            self._json(HTTPStatus.BAD_REQUEST, {"error": "unauthorized_client"})
            return
        if form.get("code_challenge_method") != "S256" or not form.get("code_challenge"):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "invalid_request",
                                                "error_description": "PKCE S256 is required"})
            return
        user = idp.users.get(form.get("username", ""))
        if user is None or not secrets.compare_digest(user.password, form.get("password", "")):
            self._login(form, "Wrong username or password.")
            return
        code = secrets.token_urlsafe(16)
        with idp.lock:
            idp.codes[code] = {"username": form["username"], "redirect_uri": form["redirect_uri"],
                               "challenge": form["code_challenge"], "nonce": form.get("nonce")}
        target = f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form['state']})}"
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _token(self, form: dict[str, str]) -> None:
        idp = self.idp
        with idp.lock:
            grant = idp.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if (grant is None or form.get("grant_type") != "authorization_code"
                or form.get("client_id") != idp.client_id
                or form.get("redirect_uri") != grant["redirect_uri"]
                or challenge.decode() != grant["challenge"]):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "invalid_grant"})
            return
        username = grant["username"]
        id_claims = idp.claims(username, aud=idp.client_id, nonce=grant["nonce"])
        with idp.lock:
            kid, key = idp.keys[-1]
        self._json(HTTPStatus.OK, {
            "access_token": idp.token(username), "token_type": "Bearer",
            "expires_in": idp.ttl_s,
            "id_token": jwt.encode(id_claims, key, algorithm="RS256", headers={"kid": kid}),
        })

    def _json(self, status: HTTPStatus, document: dict[str, Any]) -> None:
        self._send(status, orjson.dumps(document), "application/json")

    def _send(self, status: HTTPStatus, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, Authorization")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass
