"""Air quality index: China's HJ 633-2012 IAQI/AQI and the US EPA AQI (2024 PM2.5 breakpoints).

    >>> r = compute_aqi("hj633", {"pm25_24h": 80, "pm10_24h": 120})
    >>> (r.aqi, r.level, r.category, r.primary, r.iaqi)
    (107, 3, 'Lightly polluted', ('pm25_24h',), {'pm25_24h': 107, 'pm10_24h': 85})
    >>> sub_index("epa", "pm25_24h", 20.0)
    71

A concentration is named by pollutant and averaging period (``pm25_24h``, ``pm10_24h``, ``o3_1h``,
``o3_8h``, ``co_1h``, ``co_8h``, ``co_24h``, ``so2_1h``, ``so2_24h``, ``no2_1h``, ``no2_24h``)
and is given in the standard's own unit (:func:`unit_of`): HJ 633 uses ug/m3, CO mg/m3, and
has no ``co_8h``; EPA uses ug/m3 for PM, ppm for O3 and CO, ppb for SO2 and NO2, and has
tables only for ``pm25_24h``, ``pm10_24h``, ``o3_8h``, ``o3_1h``, ``co_8h``, ``so2_1h``,
``so2_24h`` and ``no2_1h``. The AQI is the largest sub-index.

Rules, per standard:

- **hj633**: IAQI by linear interpolation in Table 1, rounded *up* to an integer (exact
  rational arithmetic, so 2.3 mg/m3 of 1-hour CO is IAQI 23, not 24). The primary pollutants
  are those with the largest IAQI when the AQI is above 50 (several on a tie), none otherwise.
  Levels 1-6: Excellent, Good, Lightly polluted, Moderately polluted, Heavily polluted,
  Severely polluted (0-50, 51-100, 101-150, 151-200, 201-300, above 300).
- **epa**: each concentration is first truncated to its table's decimal places (O3 3, PM2.5
  and CO 1, PM10, SO2 and NO2 0), the index is rounded to the nearest integer, halves up. The
  primary pollutants are those with the largest sub-index, whatever the AQI. Levels 1-6: Good,
  Moderate, Unhealthy for Sensitive Groups, Unhealthy, Very Unhealthy, Hazardous.

Where a standard says to use another averaging period (HJ 633: 1-hour SO2 above 800 ug/m3 ->
24-hour SO2, 8-hour O3 above 800 ug/m3 -> 1-hour O3; EPA: 8-hour O3 above 0.200 ppm -> 1-hour
O3, 1-hour O3 below 0.125 ppm -> 8-hour O3, 1-hour SO2 above 304 ppb -> 24-hour SO2, 24-hour
SO2 below 305 ppb -> 1-hour SO2), :func:`compute_aqi` reports that NAME's sub-index as None and
takes the other one, which must then be given too; otherwise it raises :class:`OutOfTable`
naming the one to give. If both of a pair point at each other (EPA 1-hour SO2 above 304 ppb
with 24-hour SO2 below 305 ppb, or 8-hour O3 above 0.200 with 1-hour O3 below 0.125 ppm), no
table defines the index and :class:`OutOfTable` says so.

Above the top breakpoint (index 500):

- **epa extrapolates** along the last (Hazardous, 301-500) segment, as the EPA Technical
  Assistance Document (May 2024) says to compute AQI values above 500 with the same equation
  and the Hazardous breakpoints; EPA calls these values "Beyond the AQI" and they keep level 6,
  Hazardous. PM2.5 of 425.4 ug/m3 is AQI 699.
- **hj633 refuses**: Table 1 ends at IAQI 500 and the standard defines nothing beyond it, so a
  concentration above the last breakpoint (PM2.5 above 500 ug/m3, ...) raises
  :class:`OutOfTable` instead of inventing a number.

Negative, NaN or infinite concentrations, unknown NAMEs and NAMEs the standard has no table for
raise :class:`AqiError`; wrong units are caught by :func:`check_unit`.

Sources: HJ 633-2012, Table 1 and its notes (breakpoints) and Table 2 (levels and categories);
40 CFR Part 58 Appendix G, Table 2, as revised on 6 March 2024 (89 FR 16202), and EPA-454/B-24-002
(Technical Assistance Document for the Reporting of Daily Air Quality, May 2024), Table 6, for
the breakpoints, truncation and rounding. The numbers are in :mod:`models.aqi_tables`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from models.aqi_tables import EPA, EPA_PLACES, HJ633, UNITS, Row
from models.errors import CityheartError

__all__ = [
    "CATEGORIES",
    "NAMES",
    "STANDARDS",
    "AqiError",
    "AqiResult",
    "OutOfTable",
    "check_concentration",
    "check_unit",
    "compute_aqi",
    "level_of",
    "names_for",
    "spell_unit",
    "sub_index",
    "unit_of",
]

STANDARDS = ("hj633", "epa")
"""The standards, by the name config.yaml and the CLI use."""

NAMES = (
    "pm25_24h", "pm10_24h", "o3_1h", "o3_8h", "co_1h", "co_8h", "co_24h",
    "so2_1h", "so2_24h", "no2_1h", "no2_24h",
)
"""Every concentration NAME (pollutant and averaging period), in reporting order."""

CATEGORIES: dict[str, tuple[str, ...]] = {
    "hj633": ("Excellent", "Good", "Lightly polluted", "Moderately polluted",
              "Heavily polluted", "Severely polluted"),
    "epa": ("Good", "Moderate", "Unhealthy for Sensitive Groups", "Unhealthy",
            "Very Unhealthy", "Hazardous"),
}
"""Category names of levels 1-6 (index 0 is level 1)."""

_TITLES = {"hj633": "HJ 633-2012", "epa": "the US EPA AQI"}
_LEVEL_TOPS = (50, 100, 150, 200, 300)
_BELOW = {("epa", "o3_1h"): "o3_8h", ("epa", "so2_24h"): "so2_1h"}
_ABOVE = {
    ("hj633", "so2_1h"): "so2_24h", ("hj633", "o3_8h"): "o3_1h",
    ("epa", "o3_8h"): "o3_1h", ("epa", "so2_1h"): "so2_24h",
}


class AqiError(CityheartError):
    """Raised when an air quality index cannot be computed from what was given.

    ``standard`` and ``name`` say where (either may be empty), ``reason`` what was wrong, naming
    the value: an unknown standard or NAME, a NAME the standard has no table for, a wrong unit,
    a negative or non-finite value.
    """

    def __init__(self, standard: str, name: str, reason: str) -> None:
        super().__init__(standard, name, reason)
        self.standard = standard
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        return ": ".join(part for part in (self.standard, self.name, self.reason) if part)


class OutOfTable(AqiError):
    """Raised when a concentration lies outside the standard's table for its NAME.

    ``value`` is the concentration; ``use`` is the NAME the standard computes the index from
    instead in that range (for example ``so2_24h`` for HJ 633 1-hour SO2 above 800 ug/m3), or
    None when the standard defines no index there at all.
    """

    def __init__(
        self, standard: str, name: str, value: float, reason: str, use: str | None = None
    ) -> None:
        super().__init__(standard, name, reason)
        self.value = value
        self.use = use


@dataclass(frozen=True, slots=True)
class AqiResult:
    """The air quality index of a set of concentrations under one standard.

    ``iaqi`` holds every given NAME's sub-index, None where the standard takes another
    averaging period's index instead. ``primary`` lists the NAMEs whose sub-index is the AQI
    (empty under HJ 633 when the AQI is 50 or less).
    """

    standard: str
    aqi: int
    level: int
    category: str
    primary: tuple[str, ...]
    iaqi: dict[str, int | None]

    def as_dict(self) -> dict[str, object]:
        """The result as plain JSON-ready values (``primary`` as a list)."""
        return {
            "standard": self.standard, "aqi": self.aqi, "level": self.level,
            "category": self.category, "primary": list(self.primary), "iaqi": dict(self.iaqi),
        }


@dataclass(frozen=True, slots=True)
class _Segment:
    lo: int
    hi: int
    index_lo: int
    index_hi: int


@dataclass(frozen=True, slots=True)
class _Table:
    standard: str
    name: str
    unit: str
    places: int
    segments: tuple[_Segment, ...]

    def show(self, scaled: int) -> str:
        return f"{Decimal(scaled).scaleb(-self.places)} {self.unit}"


@dataclass(frozen=True, slots=True)
class _Defer:
    """The outcome for a value the standard indexes by another NAME (``use``).

    ``where`` completes "<value> <unit> ...", e.g. "is above the top of the so2_1h table (800
    ug/m3)".
    """

    use: str
    where: str


def _build(standard: str, name: str, rows: tuple[Row, ...], places: int) -> _Table:
    scale = 10**places
    segments = tuple(
        _Segment(int(Decimal(lo) * scale), int(Decimal(hi) * scale), i_lo, i_hi)
        for lo, hi, i_lo, i_hi in rows
    )
    return _Table(standard, name, UNITS[standard][name], places, segments)


_TABLES: dict[tuple[str, str], _Table] = {
    **{("hj633", n): _build("hj633", n, rows, 0) for n, rows in HJ633.items()},
    **{("epa", n): _build("epa", n, rows, EPA_PLACES[n]) for n, rows in EPA.items()},
}


def names_for(standard: str) -> tuple[str, ...]:
    """The NAMEs ``standard`` has a table for, in reporting order."""
    _check_standard(standard)
    return tuple(n for n in NAMES if (standard, n) in _TABLES)


def unit_of(standard: str, name: str) -> str:
    """The unit ``standard``'s table for ``name`` is written in (``ug/m3``, ``mg/m3``, ...)."""
    return _table(standard, name).unit


def spell_unit(unit: str) -> str:
    """``unit`` as the tables spell units: ``µg/m³`` -> ``ug/m3``, ``PPM`` -> ``ppm``."""
    return unit.strip().replace("µ", "u").replace("μ", "u").replace("³", "3").lower()


def check_unit(standard: str, name: str, unit: str) -> None:
    """Raise AqiError unless ``unit`` is ``standard``'s unit for ``name`` (``µg/m³`` = ug/m3)."""
    expected = unit_of(standard, name)
    if spell_unit(unit) != expected:
        msg = f"unit {unit!r} is wrong: {_TITLES[standard]}'s {name} table is in {expected!r}"
        raise AqiError(standard, name, msg)


def check_concentration(standard: str, name: str, value: object) -> None:
    """Raise AqiError unless ``value`` is a finite, non-negative number (in any unit)."""
    _exact(_table(standard, name), value)


def level_of(aqi: int) -> int:
    """The category number 1-6 of an AQI (the same bands in both standards)."""
    return 1 + sum(aqi > top for top in _LEVEL_TOPS)


def sub_index(standard: str, name: str, value: float) -> int:
    """The sub-index (IAQI) of one concentration; OutOfTable outside the table."""
    table = _table(standard, name)
    outcome = _evaluate(table, value)
    if isinstance(outcome, _Defer):
        reason = f"{_show(value)} {table.unit} {outcome.where}: the index comes from {outcome.use}"
        raise OutOfTable(standard, name, value, reason, outcome.use)
    return outcome


def compute_aqi(standard: str, concentrations: Mapping[str, float]) -> AqiResult:
    """The AQI, level, category, primary pollutants and sub-indices of ``concentrations``."""
    _check_standard(standard)
    if not concentrations:
        raise AqiError(standard, "", "no concentrations given")
    order = sorted(concentrations, key=lambda n: NAMES.index(n) if n in NAMES else len(NAMES))
    outcomes = {n: _evaluate(_table(standard, n), concentrations[n]) for n in order}
    iaqi: dict[str, int | None] = {}
    for name, outcome in outcomes.items():
        if isinstance(outcome, _Defer):
            _resolve(standard, name, concentrations, outcome, outcomes.get(outcome.use))
            iaqi[name] = None
        else:
            iaqi[name] = outcome
    aqi = max(v for v in iaqi.values() if v is not None)
    level = level_of(aqi)
    quiet = standard == "hj633" and aqi <= 50
    primary = () if quiet else tuple(n for n, v in iaqi.items() if v == aqi)
    return AqiResult(standard, aqi, level, CATEGORIES[standard][level - 1], primary, iaqi)


def _resolve(
    standard: str,
    name: str,
    concentrations: Mapping[str, float],
    outcome: _Defer,
    other: int | _Defer | None,
) -> None:
    """Check that the NAME a deferred value points at supplies the index."""
    value = concentrations[name]
    said = f"{_show(value)} {unit_of(standard, name)} {outcome.where}"
    if other is None:
        title, use = _TITLES[standard], outcome.use
        reason = f"{said}, where {title} takes the index from {use}: give {use} too"
        raise OutOfTable(standard, name, value, reason, outcome.use)
    if isinstance(other, _Defer):
        theirs = concentrations[outcome.use]
        reason = (
            f"{said}, and {outcome.use}={_show(theirs)} {unit_of(standard, outcome.use)} "
            f"{other.where}: {_TITLES[standard]} defines no index for this pair"
        )
        raise OutOfTable(standard, name, value, reason)


def _evaluate(table: _Table, value: float) -> int | _Defer:
    """The sub-index of ``value`` in ``table``, or where the standard looks instead."""
    num, den = _exact(table, value)
    scale: int = 10**table.places
    num *= scale
    if table.standard == "epa":  # truncate to the table's decimal places
        num, den = num // den, 1
    first, last = table.segments[0], table.segments[-1]
    if num < first.lo * den:
        use = _BELOW[(table.standard, table.name)]  # only tables not starting at 0
        where = f"the {table.name} table ({table.show(first.lo)})"
        return _Defer(use, f"is below the bottom of {where}")
    if num > last.hi * den:
        above = _ABOVE.get((table.standard, table.name))
        where = f"the {table.name} table ({table.show(last.hi)})"
        if above is not None:
            return _Defer(above, f"is above the top of {where}")
        if table.standard == "hj633":
            reason = (f"{_show(value)} {table.unit} is above the top of {where}, index "
                      f"{last.index_hi}; HJ 633-2012 defines no index above it")
            raise OutOfTable(table.standard, table.name, value, reason)
        segment = last  # EPA: "Beyond the AQI", extrapolated along the Hazardous segment
    else:
        segment = next(s for s in table.segments if num <= s.hi * den)
    n = (segment.index_hi - segment.index_lo) * (num - segment.lo * den)
    d = (segment.hi - segment.lo) * den
    if table.standard == "hj633":
        return segment.index_lo + -(-n // d)  # rounded up
    return segment.index_lo + (2 * n + d) // (2 * d)  # nearest, halves up


def _exact(table: _Table, value: object) -> tuple[int, int]:
    """``value`` as an exact fraction of the decimal it was written as, validated."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"concentration {value!r} is not a number"
        raise AqiError(table.standard, table.name, msg)
    ratio: tuple[int, int]
    if isinstance(value, numbers.Integral):
        ratio = (int(value), 1)
    else:
        number = float(value)
        if not math.isfinite(number):
            msg = f"concentration {number!r} is not a finite number"
            raise AqiError(table.standard, table.name, msg)
        ratio = Decimal(repr(number)).as_integer_ratio()
    if ratio[0] < 0:
        msg = f"concentration {_show(value)} {table.unit} is negative"
        raise AqiError(table.standard, table.name, msg)
    return ratio


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _check_standard(standard: str) -> None:
    if standard not in STANDARDS:
        msg = f"unknown air quality index standard {standard!r} (known: {', '.join(STANDARDS)})"
        raise AqiError("", "", msg)


def _table(standard: str, name: str) -> _Table:
    _check_standard(standard)
    table = _TABLES.get((standard, name))
    if table is None:
        if name not in NAMES:
            msg = f"unknown concentration NAME {name!r} (known: {', '.join(NAMES)})"
        else:
            known = ", ".join(n for n in NAMES if (standard, n) in _TABLES)
            msg = f"{_TITLES[standard]} has no table for {name} (it has: {known})"
        raise AqiError(standard, name, msg)
    return table
