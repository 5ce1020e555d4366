"""``cityheart aqi``: the air quality index maths of :mod:`models.aqi`, for hands and scripts.

    cityheart aqi --standard hj633 pm25_24h=80 pm10_24h=120
    {"standard": "hj633", "aqi": 107, "level": 3, "category": "Lightly polluted",
     "primary": ["pm25_24h"], "iaqi": {"pm25_24h": 107, "pm10_24h": 85}}      (one line)
    cityheart aqi --standard epa co_8h=9.5:ppm o3_8h=0.071
    printf '{"pm25_24h": 80}\\n{"pm25_24h": -1}\\n' | cityheart aqi --standard hj633 --batch

Each argument is ``NAME=VALUE`` or ``NAME=VALUE:UNIT`` with NAME one of
:data:`models.aqi.NAMES` and VALUE in the standard's unit for it; a UNIT that is not that unit
is an error naming both. The command prints one JSON object: ``aqi``, ``level`` (1-6),
``category``, ``primary`` (NAMEs), ``iaqi`` (per NAME; null where the standard takes another
averaging period's index instead) and ``standard``. A bad argument or a value outside the
standard's table prints ``error: ...`` on stderr and exits 2.

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

from models.aqi import AqiError, check_unit, compute_aqi, names_for, unit_of

__all__ = ["parse_line", "parse_pair", "run_aqi"]


def run_aqi(
    standard: str,
    pairs: list[str],
    *,
    batch: bool = False,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Compute and print; return the exit code (0 fine, 1 a batch line failed, 2 bad input)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
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
        return _run_batch(standard, stdin or sys.stdin, out, err)
    try:
        result = compute_aqi(standard, _parse_pairs(standard, pairs))
    except AqiError as exc:
        err.write(f"error: {exc}\n")
        return 2
    out.write(json.dumps(result.as_dict()) + "\n")
    return 0


def parse_pair(standard: str, text: str) -> tuple[str, float]:
    """``NAME=VALUE`` or ``NAME=VALUE:UNIT`` as (NAME, VALUE); AqiError when it is not right."""
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
    if colon:
        check_unit(standard, name, unit)
    return name, value


def parse_line(standard: str, line: str) -> dict[str, float]:
    """One batch line, a JSON object of NAME: VALUE pairs, as concentrations."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        msg = f"line {line.strip()[:80]!r} is not valid JSON: {exc.msg}"
        raise AqiError(standard, "", msg) from None
    if not isinstance(record, dict):
        msg = f"line is a JSON {type(record).__name__}, not an object of NAME: VALUE pairs"
        raise AqiError(standard, "", msg)
    concentrations: dict[str, float] = {}
    for name, raw in record.items():
        if isinstance(raw, str):
            concentrations[name] = parse_pair(standard, f"{name}={raw}")[1]
        elif isinstance(raw, numbers.Real) and not isinstance(raw, bool):
            unit_of(standard, name)
            concentrations[name] = float(raw)
        else:
            msg = f"value {raw!r} is not a number"
            raise AqiError(standard, name, msg)
    return concentrations


def _parse_pairs(standard: str, pairs: list[str]) -> dict[str, float]:
    concentrations: dict[str, float] = {}
    for text in pairs:
        name, value = parse_pair(standard, text)
        if name in concentrations:
            msg = f"given twice ({concentrations[name]!r} and {value!r})"
            raise AqiError(standard, name, msg)
        concentrations[name] = value
    return concentrations


def _run_batch(standard: str, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    lines = failed = 0
    for line in stdin:
        lines += 1
        try:
            result: dict[str, object] = compute_aqi(standard, parse_line(standard, line)).as_dict()
        except AqiError as exc:
            failed += 1
            result = {"error": str(exc)}
        out.write(json.dumps(result) + "\n")
        out.flush()
    if failed:
        err.write(f"error: {failed} of {lines} lines failed\n")
        return 1
    return 0
