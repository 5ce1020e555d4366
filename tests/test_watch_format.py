"""`cityheart watch` prints one readable line per vital sign window, indicator or alert."""

from __future__ import annotations

from cityheart.watch import format_message


def test_an_indicator_line_names_value_level_and_low_coverage() -> None:
    line = format_message({"type": "indicator", "district": "harbour", "kind": "aqi",
                           "indicator": "aqi", "value": 57.0, "unit": "", "level": "good",
                           "confident": False, "window_end": "2026-11-26T05:00:10.000Z"})
    assert line.startswith("2026-11-26T05:00:10.000Z  harbour")
    assert "aqi" in line and "57.00" in line and "[good]" in line
    assert "low coverage" in line


def test_an_alert_line_carries_severity_and_message() -> None:
    line = format_message({"type": "alert", "district": "harbour", "kind": "pm25",
                           "severity": "critical", "ts": "2026-11-26T05:00:03.000Z",
                           "message": "PM2.5 mean 212 ug/m3 in harbour is above 150.5"})
    assert "CRITICAL" in line and line.endswith("is above 150.5")
