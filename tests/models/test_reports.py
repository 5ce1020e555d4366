"""Reports as a parser sees them: a report parses or raises InvalidReading naming the field;
a report of info severity is no alert; only operators see report messages on the feed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.access import view
from alerts.report_alerts import report_alert
from models.claims import Claims
from models.errors import InvalidReading
from models.reports import ReportParser, decode_report, encode_report

NOW = 1_796_666_000.0


def parser() -> ReportParser:
    return ReportParser(["harbour", "old-town"],
                        locate=lambda lat, lon: "harbour" if lon > 11.64 else None)


def test_a_report_is_read_placed_and_encoded_both_ways() -> None:
    report = parser().parse({"kind": "pothole", "text": "Deep pothole", "lat": 48.14,
                             "lon": 11.65, "reporter": "officer-17",
                             "time": "2026-12-07T09:00:00+01:00"}, source="field",
                            received_at=NOW)
    assert (report.district, report.ts, report.severity) == ("harbour", 1796630400.0, "warning")
    assert report.id.startswith("r-") and report == decode_report(encode_report(report))
    again = parser().parse({"kind": "pothole", "text": "Deep pothole", "lat": 48.14,
                            "lon": 11.65, "reporter": "officer-17",
                            "time": "2026-12-07T08:00:00Z"}, source="field", received_at=NOW + 9)
    assert again.id == report.id, "the same report sent twice has one id"


@pytest.mark.parametrize(("document", "reason", "field"), [
    ({"text": "t", "district": "harbour", "reporter": "r"}, "missing_field", "kind"),
    ({"kind": "Pot Hole", "text": "t", "district": "harbour", "reporter": "r"}, "wrong_type",
     "kind"),
    ({"kind": "x", "text": "", "district": "harbour", "reporter": "r"}, "wrong_type", "text"),
    ({"kind": "x", "text": "t", "lat": 48.0, "lon": 1.0, "reporter": "r"},
     "unknown_district", "48.0,1.0"),
    ({"kind": "x", "text": "t", "district": "harbour", "reporter": "r",
      "time": "2026-12-07T09:00:00"}, "bad_timestamp", "time zone"),
    ({"kind": "x", "text": "t", "district": "harbour", "reporter": "r", "colour": "red"},
     "wrong_type", "colour"),
])
def test_a_bad_report_says_which_field(document: dict, reason: str, field: str) -> None:
    with pytest.raises(InvalidReading) as refused:
        parser().parse(document, source="s", received_at=NOW)
    assert refused.value.reason == reason and field in refused.value.detail


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_invalid_reading(payload: bytes) -> None:
    try:
        parser().parse_bytes(payload, source="s", received_at=NOW)
    except InvalidReading:
        pass


def test_info_reports_raise_no_alert_and_only_operators_see_reports() -> None:
    base = {"kind": "litter", "text": "t", "district": "harbour", "reporter": "r"}
    info = parser().parse({**base, "severity": "info"}, source="s", received_at=NOW)
    assert report_alert(info) is None
    alert = report_alert(parser().parse(base, source="s", received_at=NOW))
    assert alert is not None and (alert.rule, alert.kind) == ("report.litter", "litter")
    message = {"type": "report", "seq": 1, "district": "harbour", "kind": "litter",
               "reporter": "Jane Doe, +49 170 000"}
    for role, department in (("dispatcher", "city-cleaning"), ("viewer", None)):
        claims = Claims(role=role, sub="x", iat=1, exp=2, department=department)
        assert view(claims, message) is None
    assert view(Claims(role="operator", sub="x", iat=1, exp=2), message) == message
