"""The air quality index from the live stream: averaging periods, unit conversion, fallbacks.

Each district keeps one :class:`~models.indicators.rolling.RollingMean` per pollutant; every
closed window adds its mean once (weight 1: a window is a span of time, however many readings
it holds), so the 1 h, 8 h and 24 h means are time averages kept incrementally. From them::

    params = air_params(settings)  # settings.params
    rolling = params.new_rolling()                         # per district, picklable
    rolling["pm25"].add(window_mid, 35.0)
    averaged = params.averaged(rolling, at=window_mid)     # AirResult or None
    instant = params.instant({"pm25": 35.0, "no2": 40.0})  # this window's means only
    given = params.given({"no2_1h": (100.0, "ug/m3")})     # exactly these NAMEs (cityheart aqi)

``averaged`` is the index the standard defines for real-time reporting: HJ 633-2012 takes PM2.5
and PM10 as 24-hour moving averages, O3 as 1-hour and 8-hour, CO, SO2 and NO2 as 1-hour
averages; the US EPA AQI takes PM2.5, PM10 as 24-hour, O3 as 8-hour (and 1-hour where that is
higher, from 0.125 ppm), CO as 8-hour, SO2 and NO2 as 1-hour averages. ``instant`` is labelled
as such: the current window's means put into the shortest table each standard has for the
pollutant (PM 24-hour, gases 1-hour; EPA O3 and CO 8-hour). It reacts at once but is not the
standard's number.

Where a standard sends a NAME to another averaging period (HJ 633 SO2 1-hour above 800 ug/m3:
the 24-hour value; O3 8-hour above 800: the 1-hour value; EPA likewise), that period's mean is
supplied. HJ 633 defines nothing above its top breakpoint (index 500): such a concentration is
reported as AQI 500, level 6, with the NAME listed in ``beyond``: a lower bound, not a number the
standard gives.

Units: kinds are in ug/m3 (or mg/m3, ppb, ppm); each table's unit comes from
:func:`models.aqi.unit_of`. Mass and volume concentrations convert at 25 degC and 101.325 kPa
(molar volume 24.45 L/mol, the EPA convention): 1 ppb = M / 24.45 ug/m3, i.e. O3 1.963, NO2 1.882,
SO2 2.620 and CO 1.146 ug/m3 per ppb (CO: 1.146 mg/m3 per ppm).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.aqi import (
    CATEGORIES,
    NAMES,
    AqiError,
    AqiResult,
    OutOfTable,
    check_concentration,
    compute_aqi,
    names_for,
    spell_unit,
    sub_index,
    unit_of,
)
from models.indicators.levels import Scale
from models.indicators.rolling import RollingMean

__all__ = [
    "AVERAGED",
    "INSTANT",
    "MOLAR_MASS_G_PER_MOL",
    "MOLAR_VOLUME_L",
    "UG_PER_PPB",
    "AirParams",
    "AirResult",
    "aqi_scale",
    "convert",
]

MOLAR_VOLUME_L = 24.45
"""Litres per mole of an ideal gas at 25 degC and 101.325 kPa."""

MOLAR_MASS_G_PER_MOL = {"o3": 48.00, "no2": 46.01, "so2": 64.07, "co": 28.01}
"""Molar masses of the gaseous pollutants."""

UG_PER_PPB = {gas: mass / MOLAR_VOLUME_L for gas, mass in MOLAR_MASS_G_PER_MOL.items()}
"""ug/m3 of one ppb at 25 degC: O3 1.963, NO2 1.882, SO2 2.620, CO 1.146."""

AVERAGED = {
    "hj633": ("pm25_24h", "pm10_24h", "o3_1h", "o3_8h", "co_1h", "so2_1h", "no2_1h"),
    "epa": ("pm25_24h", "pm10_24h", "o3_8h", "o3_1h", "co_8h", "so2_1h", "no2_1h"),
}
"""The NAMEs of each standard's real-time index."""

INSTANT = {
    "hj633": ("pm25_24h", "pm10_24h", "o3_1h", "co_1h", "so2_1h", "no2_1h"),
    "epa": ("pm25_24h", "pm10_24h", "o3_8h", "co_8h", "so2_1h", "no2_1h"),
}
"""The tables the instant value uses, one per pollutant."""

_MASS = {"ug/m3": 1.0, "mg/m3": 1000.0}
_VOLUME = {"ppb": 1.0, "ppm": 1000.0}


def convert(pollutant: str, value: float, unit: str, to: str) -> float:
    """``value`` of ``pollutant`` from ``unit`` to ``to`` (ug/m3, mg/m3, ppb or ppm), at 25 degC."""
    if unit == to:
        return value
    if unit in _MASS:
        ug = value * _MASS[unit]
    elif unit in _VOLUME and pollutant in UG_PER_PPB:
        ug = value * _VOLUME[unit] * UG_PER_PPB[pollutant]
    else:
        msg = f"cannot convert {pollutant} from {unit!r}"
        raise ValueError(msg)
    if to in _MASS:
        return ug / _MASS[to]
    if to in _VOLUME and pollutant in UG_PER_PPB:
        return ug / UG_PER_PPB[pollutant] / _VOLUME[to]
    msg = f"cannot convert {pollutant} to {to!r}"
    raise ValueError(msg)


def aqi_scale(standard: str) -> Scale:
    """The standard's six categories over the index; sub-score 100 at 0, 0 at 500."""
    return Scale(
        CATEGORIES[standard], (50.0, 100.0, 150.0, 200.0, 300.0), best=0.0, worst=500.0,
        worse_on_bound=False,
    )


def _pollutant(name: str) -> str:
    return name.rpartition("_")[0]


def _period(name: str) -> str:
    return name.rpartition("_")[2]


@dataclass(frozen=True, slots=True)
class AirResult:
    """An AQI with what explains it; ``available`` holds every NAME's concentration (table unit)."""

    standard: str
    averaging: str
    aqi: int
    level: int
    category: str
    primary: tuple[str, ...]
    iaqi: dict[str, int | None]
    concentrations: dict[str, float]
    available: dict[str, float]
    filled: dict[str, float] = field(default_factory=dict)
    beyond: tuple[str, ...] = ()
    confident: bool = True
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """What ``cityheart aqi`` prints: the index, what set it, and what could not count.

        ``beyond_table`` lists NAMEs above the standard's table (the AQI is then a lower bound);
        ``skipped`` maps a NAME that gave no index to the reason; ``concentrations`` are in
        each table's unit (after any conversion).
        """
        return {
            "standard": self.standard, "aqi": self.aqi, "level": self.level,
            "category": self.category, "primary": list(self.primary), "iaqi": dict(self.iaqi),
            "beyond_table": list(self.beyond), "skipped": dict(self.skipped),
            "concentrations": {n: round(v, 4) for n, v in self.concentrations.items()},
        }

    def components(self) -> tuple[dict[str, Any], ...]:
        """One explaining entry per NAME that went in."""
        return tuple(
            {
                "name": name, "pollutant": _pollutant(name), "period": _period(name),
                "concentration": round(value, 4), "unit": unit_of(self.standard, name),
                "iaqi": self.iaqi.get(name), "filled": self.filled.get(name),
            }
            for name, value in self.concentrations.items()
        )


@dataclass(frozen=True, slots=True)
class AirParams:
    """The AQI as configured: standard, pollutant kinds and units, periods, rolling buckets."""

    standard: str
    kinds: Mapping[str, tuple[str, str]]  # pollutant -> (kind id, kind unit)
    periods_s: Mapping[str, float]
    bucket_s: float
    min_filled: float

    @property
    def pollutant_of_kind(self) -> dict[str, str]:
        """Kind id -> pollutant."""
        return {kind: pollutant for pollutant, (kind, _) in self.kinds.items()}

    def new_rolling(self) -> dict[str, RollingMean]:
        """Fresh rolling means, one per pollutant."""
        windows = tuple(sorted(set(self.periods_s.values())))
        return {p: RollingMean(self.bucket_s, windows) for p in self.kinds}

    def _names(self, pollutants: Mapping[str, Any]) -> list[str]:
        return [n for n in names_for(self.standard) if _pollutant(n) in pollutants]

    def _in_table_unit(self, name: str, value: float) -> float:
        pollutant = _pollutant(name)
        return convert(pollutant, value, self.kinds[pollutant][1], unit_of(self.standard, name))

    def given(self, values: Mapping[str, tuple[float, str | None]]) -> AirResult:
        """The index of exactly the NAMEs in ``values``, each ``(value, unit or None)``.

        None means the table's own unit. This is ``cityheart aqi``: the conversion, the
        standard's fallbacks and the beyond-the-table rule are the flow's own. AqiError names a
        bad NAME, unit or value, or says why no NAME gave an index.
        """
        available: dict[str, float] = {}
        for name, (value, unit) in values.items():
            to = unit_of(self.standard, name)
            check_concentration(self.standard, name, value)
            available[name] = _to_table_unit(self.standard, name, value, unit or to, to)
        names = tuple(n for n in NAMES if n in available)
        result, skipped = self._outcome("given", names, available, {})
        if result is None:
            msg = "no index: " + "; ".join(f"{n}: {why}" for n, why in skipped.items())
            raise AqiError(self.standard, "", msg)
        return result

    def averaged(self, rolling: Mapping[str, RollingMean], at: float) -> AirResult | None:
        """The standard's index from the rolling means, moved on to event time ``at``."""
        available: dict[str, float] = {}
        filled: dict[str, float] = {}
        for means in rolling.values():
            means.advance(at)
        for name in self._names(rolling):
            mean = rolling[_pollutant(name)].mean(self.periods_s[_period(name)])
            if mean.mean is not None:
                available[name] = self._in_table_unit(name, mean.mean)
                filled[name] = round(mean.filled_share, 4)
        return self._index("standard", AVERAGED[self.standard], available, filled)

    def instant(self, means: Mapping[str, float]) -> AirResult | None:
        """The labelled instant index from one window's mean per pollutant (kind units)."""
        available = {n: self._in_table_unit(n, means[_pollutant(n)]) for n in self._names(means)}
        return self._index("instant", INSTANT[self.standard], available, {})

    def from_concentrations(
        self, averaging: str, available: Mapping[str, float], filled: Mapping[str, float]
    ) -> AirResult | None:
        """The index of concentrations already in table units (e.g. means over districts)."""
        names = AVERAGED[self.standard] if averaging == "standard" else INSTANT[self.standard]
        return self._index(averaging, names, dict(available), dict(filled))

    def _index(
        self, averaging: str, names: tuple[str, ...], available: dict[str, float],
        filled: dict[str, float],
    ) -> AirResult | None:
        return self._outcome(averaging, names, available, filled)[0]

    def _outcome(
        self, averaging: str, names: tuple[str, ...], available: dict[str, float],
        filled: dict[str, float],
    ) -> tuple[AirResult | None, dict[str, str]]:
        """(the index or None, NAME -> why it gave none) of the ``names`` in ``available``."""
        given = {n: available[n] for n in names if n in available}
        if not given:
            return None, {}
        values = dict(given)
        result, beyond, skipped = _compute(self.standard, given, available.get)
        if result is None and not beyond:
            return None, skipped
        primary: tuple[str, ...]
        iaqi: dict[str, int | None]
        if result is None:
            aqi, level, category, primary, iaqi = 500, 6, "", (), {}
        else:
            aqi, level, category = result.aqi, result.level, result.category
            primary, iaqi = result.primary, dict(result.iaqi)
        if beyond:  # HJ 633 above its top breakpoint: at least 500, the most polluting
            primary = (*beyond, *(primary if aqi >= 500 else ()))
            aqi, level, category = max(aqi, 500), 6, CATEGORIES[self.standard][5]
            iaqi.update({name: None for name in beyond})
        used = {n: values.get(n, available.get(n, 0.0)) for n in iaqi}
        confident = all(filled.get(n, 1.0) >= self.min_filled for n in used)
        air = AirResult(
            self.standard, averaging, aqi, level, category, primary, iaqi, used, available,
            {n: filled[n] for n in used if n in filled}, tuple(beyond), confident, skipped,
        )
        return air, skipped


def _to_table_unit(standard: str, name: str, value: float, unit: str, to: str) -> float:
    """``value`` in ``unit`` as ``to`` (the table's unit); AqiError naming what converts."""
    pollutant, spelled = _pollutant(name), spell_unit(unit)
    try:
        return convert(pollutant, value, spelled, to)
    except ValueError:
        known = [*_MASS, *(_VOLUME if pollutant in UG_PER_PPB else ())]
        msg = f"unit {unit!r} cannot be converted to {to!r} (give one of {', '.join(known)})"
        raise AqiError(standard, name, msg) from None


def _compute(
    standard: str, given: dict[str, float], fallback: Callable[[str], float | None]
) -> tuple[AqiResult | None, list[str], dict[str, str]]:
    """compute_aqi with the standard's fallbacks supplied.

    Returns (result or None, NAMEs above the top of their table, NAME -> why it gave no index).
    """
    beyond: list[str] = []
    skipped: dict[str, str] = {}
    for _ in range(2 * len(given) + 4):
        if not given:
            break
        try:
            return compute_aqi(standard, given), beyond, skipped
        except OutOfTable as exc:
            use = exc.use
            if use is not None and use not in skipped and use not in beyond:
                supply = fallback(use)
                if supply is not None and use not in given:
                    given[use] = supply
                    continue
            given.pop(exc.name, None)
            if _above_top(standard, exc.name, exc.value):
                beyond.append(exc.name)
            else:
                skipped[exc.name] = exc.reason
        except AqiError as exc:
            given.pop(exc.name, None)
            skipped[exc.name] = exc.reason
    return None, beyond, skipped


def _above_top(standard: str, name: str, value: float) -> bool:
    try:
        sub_index(standard, name, value)
    except OutOfTable as exc:
        return exc.use is None
    except AqiError:
        return False
    return False
