"""Local signed tokens (HS256 JWTs): what the feed and the dispatch API accept, what they
refuse, and why. A provider's tokens are tests/connectors/test_oidc.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.tokens import (
    Claims,
    ExpiredToken,
    ForeignToken,
    ForgedToken,
    MalformedToken,
    ProviderUnavailable,
    TokenError,
    WeakSecret,
    encode_token,
    issue_token,
    verify_token,
)
from models.errors import CityheartError

SECRET = "a-test-secret-of-32-bytes-length"
NOW = 1_795_669_200.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _header(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_round_trip_gives_back_the_claims() -> None:
    token = issue_token(role="dispatcher", department="water-authority", sub="ana",
                        secret=SECRET, now=NOW + 0.7, ttl_s=3600)
    claims = verify_token(token, secret=SECRET, now=NOW + 10)
    jti = _payload(token)["jti"]  # each token gets its own id, to be revoked by
    assert len(jti) == 16 and jti != _payload(issue_token(
        role="viewer", sub="ana", secret=SECRET, now=NOW, ttl_s=60))["jti"]
    assert claims == Claims(role="dispatcher", sub="ana", iat=int(NOW), exp=int(NOW) + 3600,
                            department="water-authority", jti=jti)
    assert _payload(token) == {"role": "dispatcher", "department": "water-authority",
                               "sub": "ana", "iat": int(NOW), "exp": int(NOW) + 3600,
                               "jti": jti}
    assert _header(token) == {"alg": "HS256", "typ": "JWT"}
    assert "=" not in token and token.count(".") == 2


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_operators_and_viewers_have_no_department(role: str) -> None:
    token = issue_token(role=role, sub="screen-1", secret=SECRET.encode(), now=NOW, ttl_s=60)
    claims = verify_token(token, secret=SECRET.encode(), now=NOW)
    assert (claims.role, claims.department) == (role, None)
    assert "department" not in _payload(token)


def test_a_token_expires_at_exp_and_says_when() -> None:
    token = issue_token(role="viewer", sub="wall", secret=SECRET, now=NOW, ttl_s=60)
    assert verify_token(token, secret=SECRET, now=NOW + 59.999).sub == "wall"
    with pytest.raises(ExpiredToken) as caught:
        verify_token(token, secret=SECRET, now=NOW + 60)
    assert caught.value.exp == NOW + 60
    assert "'wall'" in str(caught.value) and "2026-11-26T05:01:00.000Z" in str(caught.value)
    assert verify_token(token, secret=SECRET, now=NOW + 65, leeway_s=10).sub == "wall"


def test_a_tampered_payload_is_forged() -> None:
    token = issue_token(role="viewer", sub="eve", secret=SECRET, now=NOW, ttl_s=60)
    header, payload, signature = token.split(".")
    claims = _payload(token) | {"role": "operator"}
    promoted = _b64(json.dumps(claims, separators=(",", ":")).encode())
    with pytest.raises(ForgedToken, match="altered or signed with another secret"):
        verify_token(f"{header}.{promoted}.{signature}", secret=SECRET, now=NOW)
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(ForgedToken):
        verify_token(f"{header}.{payload}.{flipped}", secret=SECRET, now=NOW)


@pytest.mark.parametrize("alg", ["none", "HS512", "RS256"])
def test_a_token_naming_another_algorithm_is_forged(alg: str) -> None:
    """alg=none (no signature) or another algorithm never passes as a local token."""
    token = issue_token(role="viewer", sub="eve", secret=SECRET, now=NOW, ttl_s=60)
    _, payload, signature = token.split(".")
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    with pytest.raises(ForgedToken, match=f"signed with '{alg}'"):
        verify_token(f"{header}.{payload}.{signature}", secret=SECRET, now=NOW)
    with pytest.raises(ForgedToken):
        verify_token(f"{header}.{payload}.", secret=SECRET, now=NOW)


def test_a_token_signed_with_another_secret_is_forged() -> None:
    token = issue_token(role="operator", sub="ops", secret="another-secret-of-32-bytes-or-more",
                        now=NOW, ttl_s=60)
    with pytest.raises(ForgedToken) as caught:
        verify_token(token, secret=SECRET, now=NOW)
    assert SECRET not in str(caught.value) and token not in str(caught.value)


def test_the_signature_is_checked_before_expiry() -> None:
    old = issue_token(role="operator", sub="ops", secret="another-secret-of-32-bytes-or-more",
                      now=NOW - 7200, ttl_s=60)
    with pytest.raises(ForgedToken):
        verify_token(old, secret=SECRET, now=NOW)


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("", "three base64url parts"),
        ("abc", "three base64url parts"),
        ("a.b", "got 2 part(s)"),
        ("a.b.c.d", "got 4 part(s)"),
        ("ab$c.def.ghi", "three base64url parts"),
        ("é.b.c", "three base64url parts"),
        ("abc.def.ghi", "header is not base64url JSON"),
    ],
)
def test_malformed_tokens_say_what_is_wrong(token: str, fragment: str) -> None:
    with pytest.raises(MalformedToken) as caught:
        verify_token(token, secret=SECRET, now=NOW)
    assert fragment in str(caught.value)


def _signed(body: bytes) -> str:
    """A correctly signed HS256 JWT around any payload bytes (to test claim checks)."""
    header = _b64(b'{"alg":"HS256","typ":"JWT"}')
    signed = f"{header}.{_b64(body)}"
    signature = _b64(hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest())
    return f"{signed}.{signature}"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not base64url JSON claims"),
        (b"[1, 2]", "must be a json object"),
        (b'{"role": "viewer", "sub": "x", "iat": 1}', "missing ['exp']"),
        (b'{"role": "root", "sub": "x", "iat": 1, "exp": 2}', "role 'root' is not one of"),
        (b'{"role": "dispatcher", "sub": "x", "iat": 1, "exp": 2}', "needs a department"),
        (b'{"role": "viewer", "sub": "x", "iat": 1, "exp": 2, "department": "d"}',
         "takes no department"),
        (b'{"role": "viewer", "sub": "", "iat": 1, "exp": 2}', "non-empty string"),
        (b'{"role": "viewer", "sub": "x", "iat": "1", "exp": 2}', "whole epoch seconds"),
        (b'{"role": "viewer", "sub": "x", "iat": 5, "exp": 5}', "must be after iat"),
        (b'{"role": "viewer", "sub": "x", "iat": 1, "exp": 2, "admin": true}',
         "unknown ['admin']"),
    ],
)
def test_signed_but_nonsensical_claims_are_malformed(body: bytes, fragment: str) -> None:
    with pytest.raises(MalformedToken) as caught:
        verify_token(_signed(body), secret=SECRET, now=1.5)
    assert fragment in str(caught.value)


def test_a_token_from_the_future_is_refused() -> None:
    token = issue_token(role="viewer", sub="x", secret=SECRET, now=NOW + 3600, ttl_s=60)
    with pytest.raises(MalformedToken, match="issued in the future"):
        verify_token(token, secret=SECRET, now=NOW)


def test_issuing_checks_the_claims_and_the_secret() -> None:
    with pytest.raises(MalformedToken, match="needs a department"):
        issue_token(role="dispatcher", sub="ana", secret=SECRET, now=NOW, ttl_s=60)
    with pytest.raises(WeakSecret, match="at least 32"):
        issue_token(role="viewer", sub="ana", secret="sixteen-bytes-ok", now=NOW, ttl_s=60)
    with pytest.raises(WeakSecret):
        verify_token("a.b.c", secret=b"", now=NOW)
    with pytest.raises(TokenError, match="ttl_s=0"):
        issue_token(role="viewer", sub="ana", secret=SECRET, now=NOW, ttl_s=0)
    claims = Claims(role="viewer", sub="x", iat=1, exp=10)
    assert verify_token(encode_token(claims, SECRET), secret=SECRET, now=5) == claims


def test_errors_belong_to_the_cityheart_tree() -> None:
    for error in (MalformedToken, ForgedToken, ForeignToken, ExpiredToken, WeakSecret,
                  ProviderUnavailable):
        assert issubclass(error, TokenError) and issubclass(error, CityheartError)


@given(st.text(max_size=300))
def test_any_string_verifies_or_raises_a_token_error(text: str) -> None:
    try:
        verify_token(text, secret=SECRET, now=NOW)
    except TokenError:
        pass
