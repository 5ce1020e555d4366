"""The HTTP ingest's ASGI application (Starlette): ``POST /ingest``, ``POST /reports`` and
``GET /health``.

    app = build_app(settings, intake, keys)      # intake: Intake, keys: KeysFile

``POST /ingest`` with ``Authorization: Bearer chk_...`` (a source's key) and a body of
readings (:mod:`connectors.ingest.bodies`) answers, once Kafka confirmed every record:

- ``202`` ``{"accepted", "duplicates", "rejected", "reasons", "rejections": [{"index",
  "reason", "detail"}]}`` (each rejected record is also in the dead-letter topic);
- ``400`` a body that is not JSON/CSV at all (dead-lettered whole), ``401`` no or an unknown
  key, ``409`` the same ``Idempotency-Key`` while its first request is under way, ``413``
  over ``ingest.max_body_bytes`` or ``ingest.max_records``, ``415`` another Content-Type,
  ``422`` an ``Idempotency-Key`` reused with another body, ``429`` over the source's rate
  (``Retry-After`` in seconds), ``503`` Kafka did not confirm within
  ``ingest.delivery_timeout_s`` (retry with the same ``Idempotency-Key``).

A request repeated with the same ``Idempotency-Key`` gets the first answer again (header
``Idempotent-Replayed: true``) and produces nothing. Errors are ``{"error", "detail"}``.

``POST /reports`` (the same keys and limits; :mod:`connectors.ingest.reports`) takes a report
from people or systems, or a JSON array of them, and answers ``202`` ``{"accepted",
"rejected", "ids", "reasons", "rejections"}`` once Kafka has them, ``400`` a body that is not
JSON, ``401``/``413``/``415``/``503`` as above.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.ingest.bodies import BodyError, Item, SenmlDecoder, decode_body
from connectors.ingest.intake import AnswerMemory, Intake, Outcome
from connectors.ingest.keys import IngestKey, KeysFile
from connectors.ingest.reports import ReportIntake
from connectors.rate_limit import RateLimiter
from models.errors import InvalidReading
from settings.config import Settings

__all__ = ["build_app"]

log = logging.getLogger(__name__)


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document), status_code=status,
                    media_type="application/json", headers=headers)


def _error(status: int, error: str, detail: str, **headers: str) -> Response:
    return _json(status, {"error": error, "detail": detail}, headers or None)


async def _read(request: Request, limit: int) -> bytes | None:
    """The body, or None once it grows over ``limit`` bytes (the rest is not read)."""
    kept = bytearray()
    async for chunk in request.stream():
        kept += chunk
        if len(kept) > limit:
            return None
    return bytes(kept)


def build_app(
    settings: Settings, intake: Intake, keys: KeysFile, *,
    senml: SenmlDecoder | None = None, monotonic: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The ingest endpoint over ``intake`` with the sources of ``keys``."""
    limits = settings.ingest
    limiter = RateLimiter(limits.per_source_per_s, limits.burst)
    report_intake = ReportIntake(settings, intake.producer)
    answers = AnswerMemory(limits.idempotency_ttl_s, limits.idempotency_max_keys)

    async def produce(key: Any, items: list[Item]) -> Outcome | None:
        """Submit ``items`` and wait for Kafka; None if it did not confirm in time."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()

        def done(outcome: Outcome) -> None:
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(outcome))

        intake.submit(key, items, done)
        try:
            return await asyncio.wait_for(future, limits.delivery_timeout_s)
        except TimeoutError:
            return None

    def authenticate(request: Request) -> IngestKey | None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        return keys.current(monotonic()).authenticate(token.strip()) \
            if scheme.lower() == "bearer" else None

    def unauthorized() -> Response:
        return _error(401, "unauthorized", "send Authorization: Bearer <a source's key> "
                      "(cityheart ingest-keys add)", **{"WWW-Authenticate": "Bearer"})

    async def reports(request: Request) -> Response:
        key = authenticate(request)
        if key is None:
            return unauthorized()
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
        if content_type != "application/json":
            return _error(415, "unsupported_media_type", f"Content-Type {content_type!r}: "
                          "reports are application/json (one object or an array)")
        body = await _read(request, limits.max_body_bytes)
        if body is None:
            return _error(413, "too_large", f"the body is over {limits.max_body_bytes} bytes "
                          "(ingest.max_body_bytes)")
        documents = report_intake.documents(body)
        if isinstance(documents, InvalidReading):
            return _error(400, documents.reason, documents.detail)
        if len(documents) > limits.max_records:
            return _error(413, "too_many_records", f"{len(documents)} reports are over "
                          f"{limits.max_records} a request (ingest.max_records)")
        if documents and not limiter.allow(key.source, monotonic(), len(documents)):
            wait = max(1, math.ceil(len(documents) / limits.per_source_per_s))
            return _error(429, "rate_limited", f"source {key.source!r} is over its rate: "
                          f"retry after {wait} s", **{"Retry-After": str(wait)})
        outcome = await report_intake.submit(key.source, documents,
                                             districts=key.districts)
        if outcome is None:
            detail = (f"Kafka did not confirm the reports within "
                      f"{limits.delivery_timeout_s:g} s: send them again (same ids)")
            return _error(503, "unavailable", detail, **{"Retry-After": "5"})
        return _json(202, outcome.document())

    async def ingest(request: Request) -> Response:
        key = authenticate(request)
        if key is None:
            return unauthorized()
        length = request.headers.get("content-length")
        too_big = f"the body is over {limits.max_body_bytes} bytes (ingest.max_body_bytes)"
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            return _error(413, "too_large", too_big)
        body = await _read(request, limits.max_body_bytes)
        if body is None:
            return _error(413, "too_large", too_big)
        idempotency = request.headers.get("idempotency-key")
        if idempotency:
            earlier = answers.begin(key.source, idempotency, body, time.time())
            if earlier is not None:
                status, document = earlier
                replayed = {"Idempotent-Replayed": "true"} if status in (202, 400) else None
                return _json(status, document, replayed)
        answer = await _answer(key, request.headers.get("content-type"), body)
        if idempotency:
            status = answer.status_code
            kept = (status, orjson.loads(answer.body)) if status in (202, 400) else None
            answers.finish(key.source, idempotency, kept)
        return answer

    async def _answer(key: Any, content_type: str | None, body: bytes) -> Response:
        status = 202
        try:
            items = decode_body(content_type, body, senml=senml)
        except BodyError as exc:
            if exc.status != 400:
                return _error(exc.status, exc.reason, exc.detail)
            items = [Item(0, body, InvalidReading(body, exc.reason, exc.detail))]
            status = 400
        if len(items) > limits.max_records:
            detail = (f"{len(items)} records are over {limits.max_records} a request "
                      "(ingest.max_records): send them in smaller requests")
            return _error(413, "too_many_records", detail)
        if items and not limiter.allow(key.source, monotonic(), len(items)):
            wait = max(1, math.ceil(len(items) / limits.per_source_per_s))
            detail = (f"source {key.source!r} is over {limits.per_source_per_s:g} readings a "
                      f"second (burst {limits.burst}): retry after {wait} s")
            return _error(429, "rate_limited", detail, **{"Retry-After": str(wait)})
        outcome = await produce(key, items)
        if outcome is None:
            detail = (f"Kafka did not confirm the records within {limits.delivery_timeout_s:g} s"
                      f" ({intake.failed or 'no answer'}): retry with the same Idempotency-Key")
            return _error(503, "unavailable", detail, **{"Retry-After": "5"})
        document = outcome.document()
        if status == 400:
            document = {"error": items[0].error.reason, **document}  # type: ignore[union-attr]
        return _json(status, document)

    async def health(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def elsewhere(request: Request) -> Response:
        return _error(404, "not_found", f"no such endpoint: {request.method} "
                      f"{request.url.path} (POST /ingest, POST /reports)")

    return Starlette(routes=[
        Route("/ingest", ingest, methods=["POST"]),
        Route("/reports", reports, methods=["POST"]),
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/{rest:path}", elsewhere, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    ])
