"""What every answer of the dashboard's server has in common, for :mod:`connectors.web_app` and
the APIs it mounts (:mod:`connectors.api_v1`, :mod:`connectors.ngsi_ld_api`)::

    send(200, "application/json", body, head=False)   # with the server's security headers
    api_request(request)                               # for connectors.http_api.caller
    openapi_document(app)                              # the document /openapi.json serves
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from connectors.http_api import ApiRequest
from connectors.web_signin import content_security_policy

__all__ = ["CONTENT_SECURITY_POLICY", "api_request", "openapi_document", "raw_path", "send"]

CONTENT_SECURITY_POLICY = content_security_policy(None)
"""Everything comes from this server; only the feed's websocket may be elsewhere."""


def send(status: int, content_type: str, data: bytes, *, head: bool = False) -> Response:
    """An answer with the headers every answer of this server has; no body for HEAD."""
    textual = content_type.startswith("text/") or content_type.endswith(("json", "+xml"))
    return Response(b"" if head else data, status_code=int(status), headers={
        "Content-Type": f"{content_type}; charset=utf-8" if textual else content_type,
        "Content-Length": str(len(data)),
        "Cache-Control": "no-cache",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
    })


def raw_path(request: Request) -> str:
    """The path as the client sent it (still %-encoded), as the routes and file lookup expect."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.url.path


def api_request(request: Request, body: bytes = b"") -> ApiRequest:
    """The request as :mod:`connectors.http_api` takes it (path, query, Authorization, body)."""
    return ApiRequest(request.method, raw_path(request), request.scope["query_string"].decode(
        "latin-1"), request.headers.get("Authorization"), body)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, without the 422 FastAPI lists for its own validation.

    Every parameter here is a string the routes check themselves, answering 400 with
    ``{"error", "detail"}``; the 422 a route may give (an unknown action) is the API's own.
    """
    document = app.openapi()
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in str(responses.get("422", "")):
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if not schemas:
        document.pop("components", None)
    return document
