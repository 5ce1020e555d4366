"""A client of cityheart's own dispatch API (HTTP + JSON), for the command line and scripts.

    client = ApiClient("http://127.0.0.1:8766/", token=token)
    status, document = client.post(f"/api/incidents/{incident_id}/actions",
                                   {"action": "acknowledge", "comment": "on it"})
    status, document = client.get(f"/api/incidents/{incident_id}")

Answers are (HTTP status, JSON document); an error answer is ``{"error", "detail"}`` as the
server sent it. A server that cannot be reached raises ConnectorError naming the URL.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

from models.errors import ConnectorError

__all__ = ["ApiClient"]


class ApiClient:
    """Calls to the API at ``base_url`` with a bearer ``token`` (None: anonymous)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str) -> tuple[int, Any]:
        """GET ``path``: (status, document)."""
        return self._call("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST ``body`` as JSON to ``path``: (status, document)."""
        return self._call("POST", path, orjson.dumps(body))

    def _call(self, method: str, path: str, data: bytes | None) -> tuple[int, Any]:
        url = self.base_url + path
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return answer.status, _document(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _document(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectorError("dispatch API", self.base_url, f"unreachable: {reason}") from exc


def _document(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return {"error": "invalid", "detail": data[:200].decode(errors="replace")}
