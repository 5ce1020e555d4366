"""``cityheart aqi``: the air quality index the flow computes, for hands and scripts.

    cityheart aqi pm25_24h=80 pm10_24h=120           (the standard of config.yaml)
    {"standard": "hj633", "aqi": 107, "level": 3, "category": "Lightly polluted",
     "primary": ["pm25_24h"], "iaqi": {"pm25_24h": 107, "pm10_24h": 85}, "beyond_table": [],
     "skipped": {}, "concentrations": {"pm25_24h": 80.0, "pm10_24h": 120.0}}      (one line)
    cityheart aqi --standard epa co_8h=9.5:ppm no2_1h=100:ug/m3
    printf '{"pm25_24h": 80}\\n{"pm25_24h": -1}\\n' | cityheart aqi --batch

The standard is ``indicators.aqi.standard`` of ``--config`` unless ``--standard`` names one.
Each argument is ``NAME=VALUE`` or ``NAME=VALUE:UNIT`` with NAME one of
:data:`models.aqi.NAMES`; without a UNIT the VALUE is in the standard's unit for NAME, and
ug/m3, mg/m3, ppb and ppm (gases) are converted as the flow converts its kinds (25 degC).
The numbers come from :meth:`models.vitals.air.AirParams.given`, the flow's own code, so the
command and the flow agree: under HJ 633 a concentration above the table's top is AQI 500, a
lower bound, with its NAME in ``beyond_table``; a NAME that yields no index (EPA 1-hour SO2
above 304 ppb without 24-hour SO2, say) is listed in ``skipped`` with the reason. The command
prints one JSON object (:meth:`~models.vitals.air.AirResult.as_dict`). A bad argument, or
input no NAME of which gives an index, prints ``error: ...`` on stderr and exits 2.

With ``--batch`` it reads one JSON object of NAME: VALUE pairs a line from stdin (VALUE a
number, or a string ``"VALUE:UNIT"``) and prints one result a line; a line that fails prints
``{"error": "..."}`` in its place, so output lines match input lines, and the command exits 1
at the end.
"""

from __future__ import annotations

import json
import numbers
import sys
from typing import TextIO

from models.aqi import AqiError, names_for, unit_of
from models.vitals.air import AirParams

__all__ = ["EXAMPLE", "parse_line", "parse_pair", "run_aqi"]

EXAMPLE = "pm25_24h=80 pm10_24h=120 no2_1h=100:ug/m3"
"""The arguments ``cityheart aqi --help`` shows: valid under every standard."""

Value = tuple[float, str | None]
"""A concentration and its unit (None: the standard's unit for the NAME)."""


def run_aqi(
    params: AirParams,
    pairs: list[str],
    *,
    batch: bool = False,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Compute under ``params`` and print; the exit code (0 fine, 1 a batch line failed, 2 bad)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    standard = params.standard
    try:
        names_for(standard)  # an unknown standard fails here, before any input is read
        if batch and pairs:
            msg = "--batch reads JSON lines from stdin: give no NAME=VALUE arguments"
            raise AqiError(standard, "", msg)
        if not batch and not pairs:
            raise AqiError(standard, "", "give at least one NAME=VALUE[:UNIT] argument")
    except AqiError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if batch:
        return _run_batch(params, stdin or sys.stdin, out, err)
    try:
        result = params.given(_parse_pairs(standard, pairs))
    except AqiError as exc:
        err.write(f"error: {exc}\n")
        return 2
    out.write(json.dumps(result.as_dict()) + "\n")
    return 0


def parse_pair(standard: str, text: str) -> tuple[str, Value]:
    """``NAME=VALUE`` or ``NAME=VALUE:UNIT`` as (NAME, (VALUE, UNIT or None)); else AqiError."""
    name, equals, rest = text.partition("=")
    name = name.strip()
    if not equals or not name:
        msg = f"argument {text!r} is not NAME=VALUE[:UNIT]"
        raise AqiError(standard, "", msg)
    number, colon, unit = rest.partition(":")
    unit_of(standard, name)  # the NAME and its table exist
    try:
        value = float(number)
    except ValueError:
        msg = f"value {number.strip()!r} is not a number"
        raise AqiError(standard, name, msg) from None
    return name, (value, unit.strip() if colon else None)


def parse_line(standard: str, line: str) -> dict[str, Value]:
    """One batch line, a JSON object of NAME: VALUE pairs, as concentrations with units."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        msg = f"line {line.strip()[:80]!r} is not valid JSON: {exc.msg}"
        raise AqiError(standard, "", msg) from None
    if not isinstance(record, dict):
        msg = f"line is a JSON {type(record).__name__}, not an object of NAME: VALUE pairs"
        raise AqiError(standard, "", msg)
    concentrations: dict[str, Value] = {}
    for name, raw in record.items():
        if isinstance(raw, str):
            concentrations[name] = parse_pair(standard, f"{name}={raw}")[1]
        elif isinstance(raw, numbers.Real) and not isinstance(raw, bool):
            unit_of(standard, name)
            concentrations[name] = (float(raw), None)
        else:
            msg = f"value {raw!r} is not a number"
            raise AqiError(standard, name, msg)
    return concentrations


def _parse_pairs(standard: str, pairs: list[str]) -> dict[str, Value]:
    concentrations: dict[str, Value] = {}
    for text in pairs:
        name, value = parse_pair(standard, text)
        if name in concentrations:
            msg = f"given twice ({text.partition('=')[2]!r} after {concentrations[name][0]!r})"
            raise AqiError(standard, name, msg)
        concentrations[name] = value
    return concentrations


def _run_batch(params: AirParams, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    lines = failed = 0
    for line in stdin:
        lines += 1
        try:
            result = params.given(parse_line(params.standard, line)).as_dict()
        except AqiError as exc:
            failed += 1
            result = {"error": str(exc)}
        out.write(json.dumps(result) + "\n")
        out.flush()
    if failed:
        err.write(f"error: {failed} of {lines} lines failed\n")
        return 1
    return 0
