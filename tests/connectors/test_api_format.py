"""/api/v1's answer formats, pure: cursors, content negotiation, CSV."""

from __future__ import annotations

import csv
import io
from http import HTTPStatus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.api_format import (
    ParameterError,
    choose_format,
    csv_bytes,
    decode_cursor,
    encode_cursor,
)

KEYS = st.lists(st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1), st.none()), max_size=4)


@given(KEYS)
def test_a_cursor_gives_back_its_key_on_its_own_route_only(key: list) -> None:
    cursor = encode_cursor("alerts", key)
    assert decode_cursor(cursor, "alerts") == key
    with pytest.raises(ParameterError) as refused:
        decode_cursor(cursor, "incidents")
    assert refused.value.parameter == "cursor"


@given(st.text())
def test_any_text_as_a_cursor_decodes_or_is_refused_naming_cursor(text: str) -> None:
    try:
        decode_cursor(text, "alerts")
    except ParameterError as exc:
        assert exc.parameter == "cursor"


@pytest.mark.parametrize(("format_", "accept", "expected"), [
    (None, None, "json"),
    (None, "*/*", "json"),
    (None, "text/csv", "csv"),
    (None, "text/html, text/csv;q=0.9", "csv"),
    (None, "application/ld+json", "json"),
    ("csv", "application/json", "csv"),
])
def test_the_format_comes_from_format_else_accept(format_: str | None, accept: str | None,
                                                  expected: str) -> None:
    assert choose_format(format_, accept, ("json", "csv")) == expected


def test_unknown_formats_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(ParameterError) as bad:
        choose_format("xml", None, ("json", "csv"))
    assert (bad.value.status, bad.value.valid) == (HTTPStatus.BAD_REQUEST, ["json", "csv"])
    with pytest.raises(ParameterError) as unacceptable:
        choose_format(None, "application/xml", ("json", "csv"))
    assert unacceptable.value.status == HTTPStatus.NOT_ACCEPTABLE
    assert unacceptable.value.document()["valid"] == ["application/json", "text/csv"]


def test_csv_has_the_columns_first_then_extra_keys_and_nested_values_as_json() -> None:
    items = [{"id": "a", "value": 1.5, "details": {"band": [1, 2]}},
             {"id": "b, with comma", "lat": 48.1}]
    rows = list(csv.reader(io.StringIO(csv_bytes(items, ["id", "value"]).decode())))
    assert rows == [["id", "value", "details", "lat"],
                    ["a", "1.5", '{"band":[1,2]}', ""],
                    ["b, with comma", "", "", "48.1"]]
    assert csv_bytes([], ["id", "value"]) == b"id,value\r\n"
