"""Who a dispatch API caller is: a token's claims, a refusal, or an anonymous role."""

from __future__ import annotations

import time

from connectors.http_api import ApiRequest, caller
from connectors.tokens import Claims, issue_token, verify_token

SECRET = "api-secret-0123456789abcdef-012345"


def authenticate(token: str) -> Claims:
    return verify_token(token, secret=SECRET, now=time.time())


def request(authorization: str | None = None, query: str = "") -> ApiRequest:
    return ApiRequest("POST", "/api/incidents/inc-1/actions", query, authorization)


def test_without_a_token_only_a_server_that_checks_none_treats_the_caller_as_an_operator() -> None:
    demo = caller(request(), authenticate=None, auth_required=False)
    assert isinstance(demo, Claims) and demo.role == "operator"
    checked = caller(request(), authenticate=authenticate, auth_required=False)
    assert isinstance(checked, Claims) and checked.role == "viewer"   # no actions, masked
    status, refused = caller(request(), authenticate=authenticate, auth_required=True)
    assert (int(status), refused["error"]) == (401, "unauthorized")


def test_a_token_in_the_header_or_the_query_speaks_for_its_role() -> None:
    token = issue_token(role="dispatcher", department="water-authority", sub="ana",
                        secret=SECRET, now=time.time(), ttl_s=60)
    for who in (caller(request(f"Bearer {token}"), authenticate=authenticate,
                       auth_required=True),
                caller(request(query=f"token={token}"), authenticate=authenticate,
                       auth_required=True)):
        assert isinstance(who, Claims) and (who.sub, who.department) == ("ana", "water-authority")
    for bad in (f"Bearer {token}x", "Basic abc", "Bearer "):
        status, refused = caller(request(bad), authenticate=authenticate, auth_required=False)
        assert int(status) == 401 and refused["error"] == "unauthorized"
    status, _ = caller(request(f"Bearer {token}"), authenticate=None, auth_required=False)
    assert int(status) == 401   # a token where none are checked: said so, not ignored
