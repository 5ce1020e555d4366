"""``cityheart locate``: which district a point is in, with the locator the city's flow uses.

    cityheart locate --boundaries sf.geojson 37.8024,-122.4058
    {"lat": 37.8024, "lon": -122.4058, "district": "north-beach"}
    printf '{"lat": 37.8024, "lon": -122.4058}\\n' | cityheart locate --boundaries sf.geojson \\
        --batch

Arguments are ``LAT,LON`` pairs (WGS84 degrees); each prints one JSON line with ``district`` (the
id from ``--id-property``, default ``id``; null outside every district). A point on a border that
several districts share belongs to the smallest id.

With ``--batch`` it reads JSON objects with ``lat`` and ``lon``, one a line, from stdin and prints
each object back with ``district`` added, in input order, looked up in blocks of 10,000 through an
STRtree. A line that is not such an object is reported on stderr with its line number and left
out; the others go on, and the command exits 1 at the end. A missing or unreadable boundaries
file exits 2. Problems found in the file (invalid rings, overlaps, gaps) are printed on stderr as
warnings: the lookup goes on, with invalid rings repaired.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from models.errors import ConfigError
from models.geography import Locator
from settings.geography import read_boundaries

__all__ = ["parse_point", "run_locate"]

BLOCK = 10_000


class BadPoint(ValueError):
    """Raised when a point argument or batch line is not a (lat, lon) in WGS84."""


def run_locate(
    boundaries: Path,
    points: list[str],
    *,
    id_property: str = "id",
    batch: bool = False,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Locate and print; return the exit code (0 fine, 1 a point failed, 2 bad usage or file)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    if batch == bool(points):
        usage = "give LAT,LON arguments or --batch (JSON lines on stdin), not both"
        err.write(f"error: {usage if points else 'give LAT,LON arguments or --batch'}\n")
        return 2
    try:
        geography = read_boundaries(boundaries, id_property=id_property, name_property=None)
    except ConfigError as exc:
        err.write(f"error: {exc}\n")
        return 2
    for problem in geography.problems:
        err.write(f"warning: {boundaries}: {problem}\n")
    if not geography.districts:
        err.write(f"error: {boundaries}: no district to locate points in\n")
        return 2
    locator = Locator(geography.districts)
    if batch:
        return _run_batch(locator, stdin or sys.stdin, out, err)
    failed = 0
    for text in points:
        try:
            lat, lon = parse_point(text)
        except BadPoint as exc:
            err.write(f"error: {exc}\n")
            failed += 1
            continue
        record = {"lat": lat, "lon": lon, "district": locator.locate(lat, lon)}
        out.write(json.dumps(record) + "\n")
    return 2 if failed else 0


def parse_point(text: str) -> tuple[float, float]:
    """``LAT,LON`` as two floats; BadPoint naming the text when it is not a WGS84 point."""
    lat_text, comma, lon_text = text.partition(",")
    try:
        if not comma:
            raise ValueError
        return _checked(float(lat_text), float(lon_text))
    except ValueError:
        msg = f"point {text!r} is not LAT,LON in degrees (for example 37.8024,-122.4058)"
        raise BadPoint(msg) from None


def _checked(lat: float, lon: float) -> tuple[float, float]:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        raise ValueError
    return lat, lon


def _parse_line(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        msg = f"not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})"
        raise BadPoint(msg) from None
    if not isinstance(record, dict):
        msg = f"a JSON {type(record).__name__}, not an object with lat and lon"
        raise BadPoint(msg)
    lat, lon = record.get("lat"), record.get("lon")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon))
    try:
        if not numbers:
            raise ValueError
        _checked(float(lat), float(lon))  # type: ignore[arg-type]
    except (ValueError, OverflowError):
        msg = f"lat {lat!r} and lon {lon!r} are not WGS84 degrees (numbers)"
        raise BadPoint(msg) from None
    return record


def _run_batch(locator: Locator, stdin: Iterable[str], out: TextIO, err: TextIO) -> int:
    failed = lines = 0
    block: list[dict[str, Any]] = []
    for number, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        lines += 1
        try:
            block.append(_parse_line(line))
        except BadPoint as exc:
            failed += 1
            err.write(f"error: line {number}: {exc}\n")
            continue
        if len(block) >= BLOCK:
            _write_block(locator, block, out)
            block = []
    _write_block(locator, block, out)
    if failed:
        err.write(f"error: {failed} of {lines} lines were not points\n")
        return 1
    return 0


def _write_block(locator: Locator, block: list[dict[str, Any]], out: TextIO) -> None:
    if not block:
        return
    found = locator.locate_many([r["lat"] for r in block], [r["lon"] for r in block])
    out.write("".join(
        json.dumps({**record, "district": district}) + "\n"
        for record, district in zip(block, found, strict=True)
    ))
    out.flush()
