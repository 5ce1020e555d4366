"""Air quality index: worked examples from HJ 633-2012 Table 1 and the EPA 2024 AQI table.

The breakpoint lists below are transcribed here from the standards independently of
models/aqi_tables.py, so a typo in either place fails a test.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.aqi import (
    NAMES,
    AqiError,
    AqiResult,
    OutOfTable,
    check_unit,
    compute_aqi,
    level_of,
    names_for,
    sub_index,
    unit_of,
)
from models.errors import CityheartError

ROOT = Path(__file__).resolve().parents[2]

HJ_IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
HJ_BREAKPOINTS = {  # HJ 633-2012 Table 1: the concentration at each IAQI above
    "so2_24h": (0, 50, 150, 475, 800, 1600, 2100, 2620),
    "so2_1h": (0, 150, 500, 650, 800),
    "no2_24h": (0, 40, 80, 180, 280, 565, 750, 940),
    "no2_1h": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "pm10_24h": (0, 50, 150, 250, 350, 420, 500, 600),
    "co_24h": (0, 2, 4, 14, 24, 36, 48, 60),
    "co_1h": (0, 5, 10, 35, 60, 90, 120, 150),
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 160, 215, 265, 800),
    "pm25_24h": (0, 35, 75, 115, 150, 250, 350, 500),
}

EPA_SEGMENTS = {  # 40 CFR 58 App. G Table 2 as revised in 2024: (C_lo, C_hi, I_lo, I_hi)
    "o3_8h": (("0.000", "0.054", 0, 50), ("0.055", "0.070", 51, 100),
              ("0.071", "0.085", 101, 150), ("0.086", "0.105", 151, 200),
              ("0.106", "0.200", 201, 300)),
    "o3_1h": (("0.125", "0.164", 101, 150), ("0.165", "0.204", 151, 200),
              ("0.205", "0.404", 201, 300), ("0.405", "0.604", 301, 500)),
    "pm25_24h": (("0.0", "9.0", 0, 50), ("9.1", "35.4", 51, 100), ("35.5", "55.4", 101, 150),
                 ("55.5", "125.4", 151, 200), ("125.5", "225.4", 201, 300),
                 ("225.5", "325.4", 301, 500)),
    "pm10_24h": (("0", "54", 0, 50), ("55", "154", 51, 100), ("155", "254", 101, 150),
                 ("255", "354", 151, 200), ("355", "424", 201, 300), ("425", "604", 301, 500)),
    "co_8h": (("0.0", "4.4", 0, 50), ("4.5", "9.4", 51, 100), ("9.5", "12.4", 101, 150),
              ("12.5", "15.4", 151, 200), ("15.5", "30.4", 201, 300),
              ("30.5", "50.4", 301, 500)),
    "so2_1h": (("0", "35", 0, 50), ("36", "75", 51, 100), ("76", "185", 101, 150),
               ("186", "304", 151, 200)),
    "so2_24h": (("305", "604", 201, 300), ("605", "1004", 301, 500)),
    "no2_1h": (("0", "53", 0, 50), ("54", "100", 51, 100), ("101", "360", 101, 150),
               ("361", "649", 151, 200), ("650", "1249", 201, 300), ("1250", "2049", 301, 500)),
}


def hj_edges(*, top: bool = True):
    for name, concentrations in HJ_BREAKPOINTS.items():
        for c, i in zip(concentrations, HJ_IAQI, strict=False):
            if top or c != concentrations[-1]:
                yield pytest.param(name, c, i, id=f"{name}={c}")


def epa_edges():
    for name, segments in EPA_SEGMENTS.items():
        for lo, hi, i_lo, i_hi in segments:
            yield pytest.param(name, float(lo), i_lo, id=f"{name}={lo}")
            yield pytest.param(name, float(hi), i_hi, id=f"{name}={hi}")


# --- breakpoint edges --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "expected"), list(hj_edges()))
def test_hj633_every_breakpoint_gives_its_iaqi(name: str, value: int, expected: int) -> None:
    assert sub_index("hj633", name, value) == expected
    assert sub_index("hj633", name, float(value)) == expected


@pytest.mark.parametrize(("name", "value", "expected"), list(hj_edges(top=False)))
def test_hj633_just_above_a_breakpoint_rounds_up(name: str, value: int, expected: int) -> None:
    # 0.01 above a breakpoint adds less than 1 to the IAQI in every segment; HJ 633 rounds up.
    assert sub_index("hj633", name, value + 0.01) == expected + 1


@pytest.mark.parametrize(("name", "value", "expected"), list(epa_edges()))
def test_epa_both_ends_of_every_segment(name: str, value: float, expected: int) -> None:
    assert sub_index("epa", name, value) == expected


@pytest.mark.parametrize(
    ("name", "hi", "expected"),
    [pytest.param(n, hi, i_hi, id=f"{n}<{hi}+1unit") for n, s in EPA_SEGMENTS.items()
     for _, hi, _, i_hi in s],
)
def test_epa_truncates_before_the_lookup(name: str, hi: str, expected: int) -> None:
    # hi + 0.9 of the last decimal place truncates back to hi, never into the gap or above.
    unit = Decimal(1).scaleb(Decimal(hi).as_tuple().exponent)
    assert sub_index("epa", name, float(Decimal(hi) + unit * Decimal("0.9"))) == expected


def test_epa_truncation_examples() -> None:
    assert sub_index("epa", "pm25_24h", 9.09) == 50  # 9.09 -> 9.0, not in the 9.0|9.1 gap
    assert sub_index("epa", "pm25_24h", 9.1) == 51
    assert sub_index("epa", "o3_8h", 0.0709) == 100  # 0.0709 -> 0.070
    assert sub_index("epa", "pm10_24h", 154.99) == 100  # -> 154
    assert sub_index("epa", "pm25_24h", 0.29) == 1  # -> 0.2: 50 * 0.2 / 9.0 = 1.11 -> 1
    assert sub_index("epa", "pm25_24h", 0.3) == 2  # 50 * 0.3 / 9.0 = 1.67 -> 2
    assert sub_index("epa", "co_8h", 50.49) == 500  # -> 50.4, the top of the Hazardous segment


def test_epa_rounds_halves_up() -> None:
    # co_8h 1.1 ppm: 50 * (1.1 - 0.0) / (4.4 - 0.0) = 12.5 -> 13 (not banker's 12)
    assert sub_index("epa", "co_8h", 1.1) == 13
    # o3_8h 0.078: 101 + 49 * (0.078 - 0.071) / (0.085 - 0.071) = 101 + 24.5 = 125.5 -> 126
    assert sub_index("epa", "o3_8h", 0.078) == 126


def test_hj633_exact_values_are_not_bumped_by_float_noise() -> None:
    # co_1h 2.3 mg/m3: 50 * 2.3 / 5 = 23 exactly; float arithmetic could say 23.000000000000004
    assert sub_index("hj633", "co_1h", 2.3) == 23
    assert sub_index("hj633", "co_24h", 0.6) == 15  # 50 * 0.6 / 2 = 15


# --- one worked interpolation per pollutant and standard ----------------------------------------

HJ_MIDDLES = [
    ("pm25_24h", 80, 107),  # 100 + 50 * (80 - 75) / (115 - 75) = 106.25 -> 107
    ("pm10_24h", 123, 87),  # 50 + 50 * (123 - 50) / (150 - 50) = 86.5 -> 87
    ("so2_24h", 300, 124),  # 100 + 50 * (300 - 150) / (475 - 150) = 123.08 -> 124
    ("so2_1h", 300, 72),  # 50 + 50 * (300 - 150) / (500 - 150) = 71.43 -> 72
    ("no2_24h", 123, 122),  # 100 + 50 * (123 - 80) / (180 - 80) = 121.5 -> 122
    ("no2_1h", 333, 114),  # 100 + 50 * (333 - 200) / (700 - 200) = 113.3 -> 114
    ("co_24h", 5.5, 108),  # 100 + 50 * (5.5 - 4) / (14 - 4) = 107.5 -> 108
    ("co_1h", 12.3, 105),  # 100 + 50 * (12.3 - 10) / (35 - 10) = 104.6 -> 105
    ("o3_1h", 333, 167),  # 150 + 50 * (333 - 300) / (400 - 300) = 166.5 -> 167
    ("o3_8h", 180, 119),  # 100 + 50 * (180 - 160) / (215 - 160) = 118.18 -> 119
]

EPA_MIDDLES = [
    ("pm25_24h", 20.0, 71),  # 51 + 49 * (20.0 - 9.1) / (35.4 - 9.1) = 71.31 -> 71
    ("pm10_24h", 200, 123),  # 101 + 49 * (200 - 155) / (254 - 155) = 123.27 -> 123
    ("o3_8h", 0.078, 126),  # 101 + 49 * (0.078 - 0.071) / (0.085 - 0.071) = 125.5 -> 126
    ("o3_1h", 0.180, 170),  # 151 + 49 * (0.180 - 0.165) / (0.204 - 0.165) = 169.85 -> 170
    ("co_8h", 10.0, 109),  # 101 + 49 * (10.0 - 9.5) / (12.4 - 9.5) = 109.45 -> 109
    ("so2_1h", 100, 112),  # 101 + 49 * (100 - 76) / (185 - 76) = 111.79 -> 112
    ("so2_24h", 400, 232),  # 201 + 99 * (400 - 305) / (604 - 305) = 232.46 -> 232
    ("no2_1h", 200, 120),  # 101 + 49 * (200 - 101) / (360 - 101) = 119.73 -> 120
]


@pytest.mark.parametrize(("name", "value", "expected"), HJ_MIDDLES)
def test_hj633_interpolates_inside_a_segment(name: str, value: float, expected: int) -> None:
    assert sub_index("hj633", name, value) == expected


@pytest.mark.parametrize(("name", "value", "expected"), EPA_MIDDLES)
def test_epa_interpolates_inside_a_segment(name: str, value: float, expected: int) -> None:
    assert sub_index("epa", name, value) == expected


def test_every_name_is_covered_by_the_worked_examples() -> None:
    assert {n for n, _, _ in HJ_MIDDLES} == set(names_for("hj633"))
    assert {n for n, _, _ in EPA_MIDDLES} == set(names_for("epa"))
    assert set(names_for("hj633")) | set(names_for("epa")) == set(NAMES)


# --- the whole index: level, category, primary pollutant ----------------------------------------


def test_hj633_result_from_the_issue() -> None:
    result = compute_aqi("hj633", {"pm25_24h": 80, "pm10_24h": 120})
    # PM2.5: 106.25 -> 107; PM10: 50 + 50 * 70 / 100 = 85
    assert result == AqiResult("hj633", 107, 3, "Lightly polluted", ("pm25_24h",),
                               {"pm25_24h": 107, "pm10_24h": 85})
    assert result.as_dict()["primary"] == ["pm25_24h"]


@pytest.mark.parametrize(
    ("aqi_at", "level", "hj", "epa"),
    [
        (0, 1, "Excellent", "Good"), (50, 1, "Excellent", "Good"),
        (51, 2, "Good", "Moderate"), (100, 2, "Good", "Moderate"),
        (101, 3, "Lightly polluted", "Unhealthy for Sensitive Groups"),
        (150, 3, "Lightly polluted", "Unhealthy for Sensitive Groups"),
        (151, 4, "Moderately polluted", "Unhealthy"), (200, 4, "Moderately polluted", "Unhealthy"),
        (201, 5, "Heavily polluted", "Very Unhealthy"),
        (300, 5, "Heavily polluted", "Very Unhealthy"),
        (301, 6, "Severely polluted", "Hazardous"), (500, 6, "Severely polluted", "Hazardous"),
    ],
)
def test_levels_and_categories(aqi_at: int, level: int, hj: str, epa: str) -> None:
    assert level_of(aqi_at) == level
    # NO2 1-hour (EPA, ppb) and PM2.5 (HJ) concentrations that land exactly on these indices
    epa_value = {0: 0, 50: 53, 51: 54, 100: 100, 101: 101, 150: 360, 151: 361, 200: 649,
                 201: 650, 300: 1249, 301: 1250, 500: 2049}[aqi_at]
    result = compute_aqi("epa", {"no2_1h": epa_value})
    assert (result.aqi, result.level, result.category) == (aqi_at, level, epa)
    hj_value = {0: 0, 50: 35, 51: 35.8, 100: 75, 101: 75.8, 150: 115, 151: 115.7, 200: 150,
                201: 151, 300: 250, 301: 251, 500: 500}[aqi_at]
    result = compute_aqi("hj633", {"pm25_24h": hj_value})
    assert (result.aqi, result.level, result.category) == (aqi_at, level, hj)


def test_hj633_has_no_primary_pollutant_at_50_or_below() -> None:
    assert compute_aqi("hj633", {"pm25_24h": 35, "no2_1h": 20}).primary == ()
    assert compute_aqi("hj633", {"pm25_24h": 35.1, "no2_1h": 20}).primary == ("pm25_24h",)


def test_epa_names_the_main_pollutant_even_when_the_air_is_good() -> None:
    # PM2.5 5.0: 50 * 5.0 / 9.0 = 27.8 -> 28; NO2 10: 50 * 10 / 53 = 9.4 -> 9
    result = compute_aqi("epa", {"pm25_24h": 5.0, "no2_1h": 10})
    assert (result.aqi, result.primary) == (28, ("pm25_24h",))


@pytest.mark.parametrize(
    ("standard", "concentrations", "aqi"),
    [
        ("hj633", {"pm25_24h": 75, "pm10_24h": 150, "no2_1h": 100}, 100),
        ("epa", {"no2_1h": 100, "pm25_24h": 35.4, "pm10_24h": 154, "co_8h": 1.0}, 100),
    ],
)
def test_a_tie_gives_several_primary_pollutants_in_reporting_order(
    standard: str, concentrations: dict[str, float], aqi: int
) -> None:
    result = compute_aqi(standard, concentrations)
    assert result.aqi == aqi
    assert result.primary == tuple(n for n in NAMES if result.iaqi.get(n) == aqi)
    assert len(result.primary) >= 2


# --- above the top breakpoint ------------------------------------------------------------------


def test_epa_extrapolates_beyond_500_along_the_hazardous_segment() -> None:
    # 301 + 199 * (425.4 - 225.5) / (325.4 - 225.5) = 301 + 398.2 = 699.2 -> 699
    assert sub_index("epa", "pm25_24h", 425.4) == 699
    # 301 + 199 * (2008 - 605) / (1004 - 605) = 301 + 699.74 = 1000.74 -> 1001
    assert sub_index("epa", "so2_24h", 2008) == 1001
    result = compute_aqi("epa", {"pm25_24h": 425.4, "pm10_24h": 50})
    assert (result.aqi, result.level, result.category) == (699, 6, "Hazardous")


@pytest.mark.parametrize(("name", "top"), [(n, c[-1]) for n, c in HJ_BREAKPOINTS.items()
                                           if n not in ("so2_1h", "o3_8h")])
def test_hj633_refuses_above_its_top_breakpoint(name: str, top: int) -> None:
    assert sub_index("hj633", name, top) == 500
    with pytest.raises(OutOfTable) as info:
        sub_index("hj633", name, top + 0.1)
    assert info.value.use is None
    assert f"{top + 0.1}" in str(info.value)
    assert "500" in str(info.value)


# --- averaging periods the standards hand over to each other ------------------------------------


def test_hj633_so2_1h_above_800_uses_the_24h_value() -> None:
    assert sub_index("hj633", "so2_1h", 800) == 200
    # 24 h: 50 + 50 * (100 - 50) / (150 - 50) = 75
    result = compute_aqi("hj633", {"so2_1h": 900, "so2_24h": 100})
    assert result.iaqi == {"so2_1h": None, "so2_24h": 75}
    assert (result.aqi, result.primary) == (75, ("so2_24h",))
    with pytest.raises(OutOfTable) as info:
        compute_aqi("hj633", {"so2_1h": 900, "pm25_24h": 40})
    assert info.value.use == "so2_24h"
    assert "900" in str(info.value) and "800" in str(info.value)


def test_hj633_o3_8h_above_800_uses_the_1h_value() -> None:
    # 1 h: 300 + 100 * (900 - 800) / (1000 - 800) = 350
    result = compute_aqi("hj633", {"o3_8h": 900, "o3_1h": 900})
    assert (result.aqi, result.iaqi) == (350, {"o3_1h": 350, "o3_8h": None})
    with pytest.raises(OutOfTable) as info:
        sub_index("hj633", "o3_8h", 801)
    assert info.value.use == "o3_1h"


def test_epa_ozone_8h_above_0200_uses_the_1h_value() -> None:
    # 1 h: 201 + 99 * (0.300 - 0.205) / (0.404 - 0.205) = 248.26 -> 248
    result = compute_aqi("epa", {"o3_8h": 0.250, "o3_1h": 0.300})
    assert (result.aqi, result.iaqi) == (248, {"o3_1h": 248, "o3_8h": None})
    with pytest.raises(OutOfTable, match="o3_1h") as info:
        compute_aqi("epa", {"o3_8h": 0.250})
    assert info.value.use == "o3_1h"


def test_epa_ozone_1h_below_0125_uses_the_8h_value() -> None:
    # 8 h: 50 * 0.050 / 0.054 = 46.3 -> 46
    result = compute_aqi("epa", {"o3_8h": 0.050, "o3_1h": 0.100})
    assert (result.aqi, result.iaqi) == (46, {"o3_1h": None, "o3_8h": 46})
    with pytest.raises(OutOfTable, match="0.125") as info:
        compute_aqi("epa", {"o3_1h": 0.100})
    assert info.value.use == "o3_8h"


def test_epa_both_ozone_values_count_when_both_are_in_their_tables() -> None:
    # 8 h 0.078 -> 126 (above); 1 h 0.180 -> 170 (above): the larger is the AQI
    result = compute_aqi("epa", {"o3_8h": 0.078, "o3_1h": 0.180})
    assert (result.aqi, result.primary) == (170, ("o3_1h",))


def test_epa_so2_hands_over_between_1h_and_24h_at_304_305_ppb() -> None:
    assert compute_aqi("epa", {"so2_1h": 400, "so2_24h": 400}).iaqi == {
        "so2_1h": None, "so2_24h": 232}
    # 1 h: 51 + 49 * (50 - 36) / (75 - 36) = 68.6 -> 69
    assert compute_aqi("epa", {"so2_1h": 50, "so2_24h": 100}).iaqi == {
        "so2_1h": 69, "so2_24h": None}
    with pytest.raises(OutOfTable, match="so2_24h"):
        compute_aqi("epa", {"so2_1h": 305})
    with pytest.raises(OutOfTable, match="so2_1h"):
        compute_aqi("epa", {"so2_24h": 304})
    with pytest.raises(OutOfTable, match="no index for this pair") as info:
        compute_aqi("epa", {"so2_1h": 400, "so2_24h": 100})
    assert info.value.use is None


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("standard", "concentrations", "words"),
    [
        ("aqi-in", {"pm25_24h": 1}, ["'aqi-in'", "hj633", "epa"]),
        ("epa", {"co_1h": 3}, ["co_1h", "US EPA", "co_8h"]),
        ("epa", {"no2_24h": 3}, ["no2_24h", "US EPA"]),
        ("hj633", {"co_8h": 3}, ["co_8h", "HJ 633-2012", "co_1h"]),
        ("hj633", {"pm1_24h": 3}, ["'pm1_24h'", "unknown"]),
        ("hj633", {"pm25_24h": -0.5}, ["-0.5", "negative"]),
        ("epa", {"pm25_24h": math.nan}, ["nan", "finite"]),
        ("epa", {"pm25_24h": math.inf}, ["inf", "finite"]),
        ("epa", {"pm25_24h": "12"}, ["'12'", "not a number"]),
        ("epa", {"pm25_24h": True}, ["True", "not a number"]),
        ("epa", {}, ["no concentrations"]),
    ],
)
def test_bad_input_is_a_clear_error(standard, concentrations, words) -> None:
    with pytest.raises(AqiError) as info:
        compute_aqi(standard, concentrations)
    assert isinstance(info.value, CityheartError)
    for word in words:
        assert word in str(info.value)


def test_units_are_the_standards_own() -> None:
    assert [unit_of("hj633", n) for n in ("pm25_24h", "co_1h", "co_24h", "o3_8h")] == [
        "ug/m3", "mg/m3", "mg/m3", "ug/m3"]
    assert [unit_of("epa", n) for n in ("pm25_24h", "o3_8h", "co_8h", "so2_1h", "no2_1h")] == [
        "ug/m3", "ppm", "ppm", "ppb", "ppb"]
    check_unit("epa", "pm25_24h", "µg/m³")
    check_unit("hj633", "co_24h", "mg/m3")
    with pytest.raises(AqiError) as info:
        check_unit("epa", "co_8h", "mg/m3")
    assert "'mg/m3'" in str(info.value) and "'ppm'" in str(info.value)


@hsettings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from([(s, n) for s in ("hj633", "epa") for n in NAMES if n in names_for(s)]),
    a=st.floats(0, 4000, allow_nan=False),
    b=st.floats(0, 4000, allow_nan=False),
)
def test_the_index_never_falls_as_the_concentration_rises(key, a, b) -> None:
    standard, name = key
    scale = 1000.0 if unit_of(standard, name) == "ppm" else 1.0
    low, high = sorted((a / scale, b / scale))
    try:
        indices = sub_index(standard, name, low), sub_index(standard, name, high)
    except OutOfTable:
        assume(False)
    assert 0 <= indices[0] <= indices[1]


# --- the command --------------------------------------------------------------------------------


def cityheart(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cityheart", "aqi", *args], input=stdin, capture_output=True,
        text=True, cwd=ROOT, timeout=60, check=False,
    )


@pytest.mark.timeout(120)
def test_command_prints_one_json_object() -> None:
    run = cityheart("--standard", "hj633", "pm25_24h=80", "pm10_24h=120")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "standard": "hj633", "aqi": 107, "level": 3, "category": "Lightly polluted",
        "primary": ["pm25_24h"], "iaqi": {"pm25_24h": 107, "pm10_24h": 85},
        "beyond_table": [], "skipped": {},
        "concentrations": {"pm25_24h": 80.0, "pm10_24h": 120.0},
    }
    run = cityheart("--standard", "epa", "co_8h=9.5:ppm", "o3_8h=0.071", "o3_1h=0.1")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["iaqi"] == {"o3_1h": None, "o3_8h": 101, "co_8h": 101}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--standard", "epa", "pm25_24h=9:ppm"], ["'ppm'", "'ug/m3'", "pm25_24h"]),
        (["--standard", "epa", "co_8h=9.5:furlongs"], ["'furlongs'", "ppm", "co_8h"]),
        (["--standard", "epa", "co_1h=3"], ["co_1h", "US EPA"]),
        (["--standard", "epa", "so2_1h=400"], ["no index", "so2_24h"]),
        (["--standard", "who", "pm25_24h=3"], ["'who'", "hj633", "epa"]),
        (["--standard", "hj633", "pm25_24h=-1"], ["negative"]),
        (["--standard", "hj633", "pm25_24h=nan"], ["finite"]),
        (["--standard", "hj633", "pm25_24h=lots"], ["'lots'", "not a number"]),
        (["--standard", "hj633", "pm25_24h"], ["NAME=VALUE"]),
    ],
)
def test_command_errors_go_to_stderr_with_exit_2(args: list[str], words: list[str]) -> None:
    run = cityheart(*args)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.startswith("error: ")
    for word in words:
        assert word in run.stderr


@pytest.mark.timeout(120)
def test_batch_keeps_one_output_line_per_input_line_and_exits_1_on_a_bad_line() -> None:
    lines = ['{"pm25_24h": 80, "pm10_24h": 120}', '{"pm25_24h": -1}', "not json",
             '{"co_24h": "5.5:mg/m3"}']
    run = cityheart("--standard", "hj633", "--batch", stdin="\n".join(lines) + "\n")
    assert run.returncode == 1
    out = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(out) == 4
    assert out[0]["aqi"] == 107
    assert "negative" in out[1]["error"]
    assert "not valid JSON" in out[2]["error"]
    assert out[3]["iaqi"] == {"co_24h": 108}


@pytest.mark.timeout(120)
def test_batch_of_good_lines_exits_0() -> None:
    run = cityheart("--standard", "epa", "--batch", stdin='{"pm25_24h": 425.4}\n{"so2_1h": 50}\n')
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["aqi"] for line in run.stdout.splitlines()] == [699, 69]


# --- the command gives the flow's answer -------------------------------------------------------

# (standard, this window's mean per pollutant in the kind's unit of config.yaml: PM, NO2, O3 and
# SO2 in ug/m3, CO in mg/m3). The flow's instant AQI puts each into one table (INSTANT) and takes
# the same mean for another period where the standard sends it there; the command is given
# every NAME the flow used, each in the kind's unit.
FLOW_INPUTS = [
    ("epa", {"no2": 100.0}),  # ug/m3 into the ppb table
    ("epa", {"co": 11.0, "o3": 150.0}),  # mg/m3 and ug/m3 into the ppm tables
    ("epa", {"o3": 500.0}),  # 8-hour O3 above 0.200 ppm: the 1-hour table
    ("epa", {"pm25": 425.4}),  # beyond the AQI: EPA extrapolates, 699
    ("epa", {"pm25": 20.0, "so2": 1100.0}),  # 1-hour SO2 above 304 ppb: the 24-hour table
    ("hj633", {"pm25": 80.0, "pm10": 120.0}),
    ("hj633", {"pm25": 1000.0}),  # above HJ 633's table: 500, a lower bound
    ("hj633", {"pm25": 1000.0, "pm10": 700.0, "no2": 50.0}),
    ("hj633", {"co": 9.5, "o3": 250.0}),
    ("hj633", {"so2": 900.0}),  # 1-hour SO2 above 800: the 24-hour table
]


def _flow_and_command(base_settings, standard: str, means: dict[str, float]):
    from dataclasses import replace

    from settings.params import air_params

    params = replace(air_params(base_settings), standard=standard)
    flow = params.instant(means)
    assert flow is not None
    line = {}
    for name in flow.concentrations:
        pollutant = name.rpartition("_")[0]
        line[name] = f"{means[pollutant]}:{params.kinds[pollutant][1]}"
    return flow, json.dumps(line)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("standard", ["epa", "hj633"])
def test_the_command_gives_the_flows_answer_for_the_same_input(
    base_settings, standard: str
) -> None:
    cases = [_flow_and_command(base_settings, s, m) for s, m in FLOW_INPUTS if s == standard]
    stdin = "".join(line + "\n" for _, line in cases)
    run = cityheart("--standard", standard, "--batch", stdin=stdin)
    assert run.returncode == 0, run.stdout + run.stderr
    printed = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(line, out) for (_, line), out in zip(cases, printed, strict=True)] == [
        (line, flow.as_dict()) for flow, line in cases
    ]


@pytest.mark.timeout(120)
def test_the_command_converts_units_and_reports_beyond_the_table_like_the_flow() -> None:
    run = cityheart("--standard", "epa", "no2_1h=100:ug/m3")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert (out["iaqi"], out["concentrations"]) == ({"no2_1h": 50}, {"no2_1h": 53.1406})
    run = cityheart("--standard", "hj633", "pm25_24h=1000")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert (out["aqi"], out["level"], out["beyond_table"]) == (500, 6, ["pm25_24h"])


@pytest.mark.timeout(120)
def test_the_command_uses_the_configs_standard_and_its_help_example_works(
    base_settings, tmp_path: Path
) -> None:
    from cityheart.aqi import EXAMPLE
    from tests.support import write_config

    shipped = cityheart("pm25_24h=20")  # ./config.yaml: hj633
    assert json.loads(shipped.stdout)["standard"] == "hj633", shipped.stderr
    aqi = base_settings.indicators.aqi.model_copy(update={"standard": "epa"})
    indicators = base_settings.indicators.model_copy(update={"aqi": aqi})
    config = write_config(base_settings.model_copy(update={"indicators": indicators}),
                          tmp_path / "config.yaml")
    run = cityheart("--config", str(config), "pm25_24h=20")
    assert run.returncode == 0, run.stderr
    assert (json.loads(run.stdout)["standard"], json.loads(run.stdout)["aqi"]) == ("epa", 71)
    for standard in ("hj633", "epa"):
        example = cityheart("--config", str(config), "--standard", standard, *EXAMPLE.split())
        assert example.returncode == 0, example.stderr
        assert json.loads(example.stdout)["standard"] == standard
