"""What an HTTP ingest request's body holds: one payload per reading, or why a record is not one.

    items = decode_body("application/json", b'[{"device_id": ...}, ...]')
    for item in items:              # in the body's order; item.index counts from 0
        item.payload                # the reading's JSON object, as bytes, for ReadingParser
        item.error                  # or an InvalidReading saying why this record is none

Bodies, by Content-Type (no I/O here; the server reads the bytes):

- ``application/json``: one reading object, or a JSON array of them (fields as over MQTT:
  device_id, district, kind, value, unit, ts, optional seq);
- ``application/senml+json``: a SenML pack (RFC 8428; :mod:`models.senml` maps its records);
- ``text/csv``: a header row naming those fields, then one reading a row (empty cell: field
  missing; value and seq are numbers).

A body that is not one of these at all raises :class:`BodyError` (400/415): nothing in it
could be a reading.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from models.errors import InvalidReading
from models.readings import encode
from models.senml import PackParser

__all__ = ["CONTENT_TYPES", "BodyError", "Item", "decode_body", "senml_decoder"]

CONTENT_TYPES = ("application/json", "application/senml+json", "text/csv")
"""The media types the ingest endpoint takes."""

_FIELDS = ("device_id", "district", "kind", "value", "unit", "ts", "seq")


class BodyError(Exception):
    """Raised when a body as a whole cannot be read (``status`` 400 or 415, ``reason``)."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(status, reason, detail)
        self.status = status
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Item:
    """One record of a body: its reading payload or why it is none."""

    index: int
    payload: bytes
    error: InvalidReading | None = None


SenmlDecoder = Callable[[bytes], list[Item]]


def decode_body(content_type: str | None, body: bytes, *,
                senml: SenmlDecoder | None = None) -> list[Item]:
    """The records of ``body`` sent as ``content_type`` (see the module doc)."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media == "application/json":
        return _json(body)
    if media == "text/csv":
        return _csv(body)
    if media == "application/senml+json" and senml is not None:
        return senml(body)
    detail = f"Content-Type {media!r} is not one of {list(CONTENT_TYPES)}"
    raise BodyError(415, "unsupported_media_type", detail)


def senml_decoder(packs: PackParser, clock: Callable[[], float]) -> SenmlDecoder:
    """A SenML body decoder over ``packs`` (relative times anchored at ``clock()``): each
    record's reading as its canonical JSON, each refused record with its reason; a pack refused
    whole is a BodyError (400)."""

    def decode(body: bytes) -> list[Item]:
        try:
            result = packs.parse(body, clock())
        except InvalidReading as exc:
            raise BodyError(400, exc.reason, exc.detail) from None
        items = [Item(index, encode(reading)) for index, reading in result.readings]
        items += [Item(r.index, r.error.payload, r.error) for r in result.refused]
        return sorted(items, key=lambda item: item.index)

    return decode


def _json(body: bytes) -> list[Item]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, "invalid_json", f"the body is not JSON: {exc}") from None
    if isinstance(document, dict):
        return [Item(0, body)]
    if not isinstance(document, list):
        detail = f"the body is a JSON {type(document).__name__}, not an object or an array"
        raise BodyError(400, "not_an_object", detail)
    items = []
    for index, record in enumerate(document):
        payload = orjson.dumps(record)
        if isinstance(record, dict):
            items.append(Item(index, payload))
        else:
            detail = f"record {index} is a JSON {type(record).__name__}, not an object"
            items.append(Item(index, payload, InvalidReading(payload, "not_an_object", detail)))
    return items


def _cell(name: str, text: str) -> object:
    if name == "value":
        try:
            return float(text)
        except ValueError:
            return text  # the parser names it: not a number
    if name == "seq":
        return int(text) if text.isdigit() else text
    return text


def _csv(body: bytes) -> list[Item]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(400, "bad_row", f"the CSV body is not UTF-8: {exc}") from None
    lines = text.splitlines()
    rows = csv.reader(lines)
    header = [name.strip() for name in next(rows, [])]
    unknown = [name for name in header if name not in _FIELDS]
    if not header or unknown:
        detail = (f"the CSV header {header} names unknown columns {unknown}; columns are "
                  f"{list(_FIELDS)}" if unknown else "the CSV body has no header row")
        raise BodyError(400, "bad_row", detail)
    items = []
    for index, row in enumerate(rows):
        line = lines[rows.line_num - 1].encode() if rows.line_num <= len(lines) else b""
        if len(row) != len(header):
            detail = f"row {index + 1} has {len(row)} cells, the header {len(header)}"
            items.append(Item(index, line, InvalidReading(line, "bad_row", detail)))
            continue
        record = {name: _cell(name, cell.strip()) for name, cell in zip(header, row, strict=True)
                  if cell.strip()}
        items.append(Item(index, orjson.dumps(record)))
    return items
