"""What ``/api/v1`` answers look like: opaque cursors, JSON or CSV, and errors that name the
parameter. Pure (no I/O): :mod:`connectors.api_v1` uses it around its queries::

    cursor = encode_cursor("alerts", ["2026-11-26T08:00:00+00:00", "a-1"])
    decode_cursor(cursor, "alerts")              # ["2026-11-26T08:00:00+00:00", "a-1"]
    choose_format("csv", None, ("json", "csv"))  # "csv"; ParameterError when unknown
    csv_bytes(items, ["ts", "value"])            # header line, then one line per item

A cursor is base64url JSON naming the page's kind, so a cursor of one route is refused by
another (it would skip rows there). Errors are :class:`ParameterError`, whose
:meth:`~ParameterError.document` is the answer's body::

    {"error": "invalid", "detail": "resolution 'week' is not one of [...]",
     "parameter": "resolution", "valid": ["raw", "minute", "hour", "day"]}
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson

from models.errors import CityheartError

__all__ = [
    "FORMAT_TYPES", "ParameterError", "choose_format", "csv_bytes", "decode_cursor",
    "encode_cursor", "one_of", "whole_number",
]

FORMAT_TYPES = {"json": "application/json", "csv": "text/csv",
                "geojson": "application/geo+json"}
"""The media type of each ``format=`` value."""

_ACCEPT_ANY = ("*/*", "application/*", "text/*")


class ParameterError(CityheartError):
    """Raised when a request parameter is missing or not valid; names it and the valid values."""

    def __init__(
        self, parameter: str, detail: str, valid: Sequence[str] | None = None,
        status: HTTPStatus = HTTPStatus.BAD_REQUEST, code: str = "invalid",
    ) -> None:
        super().__init__(parameter, detail)
        self.parameter = parameter
        self.detail = detail
        self.valid = list(valid) if valid is not None else None
        self.status = status
        self.code = code

    def __str__(self) -> str:
        return self.detail

    def document(self) -> dict[str, Any]:
        """The error answer's body."""
        body: dict[str, Any] = {"error": self.code, "detail": self.detail,
                                "parameter": self.parameter}
        if self.valid is not None:
            body["valid"] = self.valid
        return body


def one_of(parameter: str, value: str, valid: Sequence[str]) -> str:
    """``value`` if it is one of ``valid``, else a ParameterError listing them."""
    if value not in valid:
        msg = f"{parameter} {value!r} is not one of {list(valid)}"
        raise ParameterError(parameter, msg, valid)
    return value


def whole_number(parameter: str, value: str | None, *, default: int, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]`` (``default`` when None)."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        msg = f"{parameter} {value!r} must be a whole number from {low} to {high}"
        raise ParameterError(parameter, msg)
    return number


def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    """An opaque cursor: the page continues after the row whose key is ``key``."""
    raw = orjson.dumps({"k": kind, "after": list(key)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str) -> list[Any] | None:
    """The key a cursor of this ``kind`` of page carries (None without a cursor)."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        document = None
    if not (isinstance(document, dict) and document.get("k") == kind
            and isinstance(document.get("after"), list)):
        msg = (f"cursor {cursor[:40]!r} is not a cursor this route gave: pass the next_cursor "
               "of the previous page unchanged")
        raise ParameterError("cursor", msg)
    return list(document["after"])


def choose_format(format_: str | None, accept: str | None, valid: Sequence[str]) -> str:
    """The answer's format: ``format=`` if given, else the first of ``valid`` the Accept
    header takes (JSON when it takes anything); 406 when it takes none of them."""
    if format_ is not None:
        return one_of("format", format_, valid)
    if not accept:
        return valid[0]
    wanted = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media in wanted:
        for name in valid:
            if FORMAT_TYPES[name] == media or (name == "json" and media == "application/ld+json"):
                return name
        if media in _ACCEPT_ANY:
            return valid[0]
    types = [FORMAT_TYPES[name] for name in valid]
    msg = f"Accept {accept!r} takes none of {types} (or use format= with one of {list(valid)})"
    raise ParameterError("Accept", msg, types, status=HTTPStatus.NOT_ACCEPTABLE,
                         code="not_acceptable")


def csv_bytes(items: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    """RFC 4180 CSV of ``items``: ``columns`` first, then any other keys in order of first
    appearance; nested values as JSON, missing ones empty."""
    rows = list(items)
    header = list(columns)
    for item in rows:
        header += [key for key in item if key not in header]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for item in rows:
        writer.writerow([_cell(item.get(name)) for name in header])
    return out.getvalue().encode()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return orjson.dumps(value).decode()
    return value
