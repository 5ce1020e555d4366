"""One request to a pulled source, and what its answer would become.

    headers = auth_headers(spec, os.environ)      # once, at the edge; ConfigError names the var
    document = fetch_json(spec, headers, timeout_s=10, max_bytes=16 << 20)   # or FetchError
    preview = Preview.of(spec, document, parser, mapper_for(settings, spec), now)
    preview.readings, preview.refused          # what would be produced, what would not

:func:`fetch_json` asks with the standard library's HTTP client and raises
:class:`FetchError` (an :class:`~models.errors.ConnectorError`) for a refused connection, a
time-out, a status other than 2xx, an answer over ``max_bytes`` or one that is not JSON.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from connectors.sources.mapping import Mapper
from models.errors import ConfigError, ConnectorError, InvalidReading
from models.geography import Locator
from models.readings import Reading, ReadingParser
from settings.config import Settings
from settings.sources import SourceSpec

__all__ = ["FetchError", "Preview", "auth_headers", "fetch_json", "mapper_for"]


class FetchError(ConnectorError):
    """Raised when a pulled source does not answer with JSON (down, 5xx, time-out, not JSON)."""


def auth_headers(spec: SourceSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The request headers of ``spec``: its own, and its auth read from ``environ``."""
    auth = spec.auth

    def secret(name: str | None) -> str:
        value = environ.get(name or "")
        if not value:
            where, reason = f"source {spec.name!r}", f"environment variable {name!r} is not set"
            raise ConfigError(where, "auth", reason)
        return value

    headers = {"Accept": "application/json", "User-Agent": "cityheart-sources",
               **spec.headers}
    if auth.type == "bearer":
        headers["Authorization"] = f"Bearer {secret(auth.token_env)}"
    elif auth.type == "header":
        headers[str(auth.header)] = secret(auth.token_env)
    elif auth.type == "basic":
        pair = f"{secret(auth.username_env)}:{secret(auth.password_env)}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
    return headers


def fetch_json(
    spec: SourceSpec, headers: Mapping[str, str], *, timeout_s: float, max_bytes: int
) -> object:
    """The JSON document ``spec.url`` answers with; FetchError saying why not."""
    request = urllib.request.Request(spec.url, headers=dict(headers), method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
            body = answer.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchError(spec.name, spec.url, f"answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(spec.name, spec.url, f"no answer: {reason}") from None
    if len(body) > max_bytes:
        raise FetchError(spec.name, spec.url, f"the answer is over {max_bytes} bytes "
                         "(sources.max_response_bytes)")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FetchError(spec.name, spec.url, f"the answer is not JSON: {exc}") from None


def mapper_for(settings: Settings, spec: SourceSpec, locator: Locator | None = None) -> Mapper:
    """The mapper of ``spec`` in this city (kinds' units, districts located)."""
    locator = locator or Locator(settings.geography.districts)
    units = {kind_id: kind.unit for kind_id, kind in settings.kinds.items()}
    return Mapper(spec.mapping, units=units, locate=locator.locate)


@dataclass
class Preview:
    """What an answer becomes: valid readings, and refused payloads with their reasons."""

    items: int = 0
    readings: list[Reading] = field(default_factory=list)
    refused: list[tuple[int, InvalidReading]] = field(default_factory=list)

    @classmethod
    def of(cls, document: object, parser: ReadingParser, mapper: Mapper, now: float) -> Preview:
        """Map ``document`` and validate each record as any other way in does."""
        preview = cls(items=len(mapper.items(document)))
        for record in mapper.records(document):
            if record.error is not None:
                preview.refused.append((record.index, record.error))
                continue
            try:
                preview.readings.append(parser.parse(record.payload, None, now))
            except InvalidReading as exc:
                preview.refused.append((record.index, exc))
        return preview
