"""Water: level against warning and danger lines with rate of rise; pipe pressure band."""

from __future__ import annotations

import pytest

from models.indicators.levels import InvalidIndicatorInput
from models.indicators.water import (
    PressureBand,
    WaterLevelParams,
    pressure_indicator,
    rate_of_rise,
    water_level_indicator,
)

RIVER = WaterLevelParams(normal_m=1.6, warning_m=3.5, danger_m=4.5, rise_alert_m_per_h=0.3)
T0 = 1_795_669_200.0


def test_rate_of_rise_in_metres_per_hour_from_two_windows() -> None:
    assert rate_of_rise((T0, 2.0), (T0 + 3600.0, 2.5)) == pytest.approx(0.5)
    assert rate_of_rise((T0, 2.90), (T0 + 1800.0, 3.10)) == pytest.approx(0.4)  # 0.2 m in 30 min
    assert rate_of_rise((T0, 3.0), (T0 + 600.0, 2.95)) == pytest.approx(-0.3)   # falling


def test_rate_of_rise_needs_the_later_window_after_the_earlier() -> None:
    with pytest.raises(InvalidIndicatorInput, match="must come after"):
        rate_of_rise((T0, 2.0), (T0, 2.5))


@pytest.mark.parametrize(
    ("level", "rise", "name", "score", "to_warning"),
    [
        (1.6, 0.0, "normal", 100.0, None),
        (2.55, 0.0, "normal", 83.333, None),      # halfway from 1.6 (100) to 3.5 (66.7)
        (2.55, 0.1, "normal", 83.333, 9.5),       # (3.5 - 2.55) / 0.1 h
        (2.55, 0.5, "rising", 66.667, 1.9),       # fast rise: capped at the warning score
        (2.55, -0.2, "normal", 83.333, None),
        (3.5, 0.0, "warning", 66.667, None),      # on the line: the worse level
        (4.0, 0.6, "warning", 50.0, None),
        (4.5, 0.0, "danger", 33.333, None),
        (5.0, 0.0, "danger", 16.667, None),
        (6.0, 0.0, "danger", 0.0, None),
    ],
)
def test_water_level_against_its_lines(level, rise, name, score, to_warning) -> None:
    result = water_level_indicator(level, rise, RIVER)
    assert (result.name, result.unit, result.level, result.value) == ("water_level", "m", name,
                                                                      level)
    assert result.score == pytest.approx(score, abs=1e-3)
    assert result.input("hours_to_warning") == pytest.approx(to_warning)
    assert result.input("warning_m") == 3.5
    assert result.input("rise_m_per_h") == rise


def test_the_lines_must_be_in_order() -> None:
    with pytest.raises(InvalidIndicatorInput, match="strictly increasing"):
        WaterLevelParams(normal_m=1.0, warning_m=4.0, danger_m=3.0)


BAND = PressureBand(critical_low_bar=1.5, low_bar=2.0, high_bar=4.0, critical_high_bar=5.0)


@pytest.mark.parametrize(
    ("pressure", "level", "side", "deviation", "score"),
    [
        (3.0, "normal", "in_band", -1.0, 100.0),
        (3.5, "normal", "in_band", -0.5, 83.333),
        (2.0, "normal", "in_band", 0.0, 66.667),     # the band's edges are in the band
        (4.0, "normal", "in_band", 0.0, 66.667),
        (1.75, "warning", "low", 0.5, 50.0),
        (4.5, "warning", "high", 0.5, 50.0),
        (5.0, "warning", "high", 1.0, 33.333),       # on the critical line
        (5.5, "critical", "high", 1.5, 16.667),
        (1.0, "critical", "low", 2.0, 0.0),
        (0.0, "critical", "low", 4.0, 0.0),
    ],
)
def test_pressure_band(pressure, level, side, deviation, score) -> None:
    result = pressure_indicator(pressure, BAND)
    assert (result.name, result.unit, result.level) == ("water_pressure", "bar", level)
    assert result.input("side") == side
    assert result.input("deviation") == pytest.approx(deviation)
    assert result.score == pytest.approx(score, abs=1e-3)


def test_a_band_must_nest_inside_its_critical_lines() -> None:
    with pytest.raises(InvalidIndicatorInput, match="strictly increasing"):
        PressureBand(critical_low_bar=2.5, low_bar=2.0, high_bar=4.0, critical_high_bar=5.0)
