"""``cityheart locate``: points to districts from the command line, one by one or in a batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SF = ROOT / "cityheart" / "data" / "geo" / "san-francisco.geojson"


def locate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cityheart", "locate", *args], input=stdin, capture_output=True,
        text=True, cwd=ROOT, timeout=120, check=False,
    )


@pytest.mark.timeout(180)
def test_points_as_arguments_print_their_district() -> None:
    run = locate("--boundaries", str(SF), "37.80239,-122.40583", "37.75,-122.55")
    assert run.returncode == 0, run.stderr
    assert [json.loads(line) for line in run.stdout.splitlines()] == [
        {"lat": 37.80239, "lon": -122.40583, "district": "north-beach"},
        {"lat": 37.75, "lon": -122.55, "district": None},
    ]


@pytest.mark.timeout(180)
def test_batch_adds_the_district_and_reports_bad_lines_by_number() -> None:
    lines = [
        '{"lat": 37.79554, "lon": -122.3937, "device": "t-1"}',
        "not json",
        '{"lat": "north", "lon": 1}',
        "",
        '{"lat": 37.75, "lon": -122.55}',
    ]
    run = locate("--boundaries", str(SF), "--batch", stdin="\n".join(lines) + "\n")
    assert run.returncode == 1
    assert [json.loads(line) for line in run.stdout.splitlines()] == [
        {"lat": 37.79554, "lon": -122.3937, "device": "t-1", "district": "financial-district"},
        {"lat": 37.75, "lon": -122.55, "district": None},
    ]
    errors = run.stderr.splitlines()
    assert errors[0].startswith("error: line 2: not valid JSON")
    assert errors[1].startswith("error: line 3: lat 'north' and lon 1 are not WGS84 degrees")
    assert errors[2] == "error: 2 of 4 lines were not points"


@pytest.mark.timeout(180)
def test_id_property_picks_the_id_and_a_file_with_problems_is_reported(tmp_path: Path) -> None:
    cells = [
        {"type": "Feature", "properties": {"code": code},
         "geometry": {"type": "Polygon", "coordinates": [
             [[x, 0], [x + 1, 0], [x + 1, 1], [x, 1], [x, 0]]]}}
        for code, x in (("z", 0), ("y", 0.5))
    ]
    path = tmp_path / "overlap.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": cells}), "utf-8")
    run = locate("--boundaries", str(path), "--id-property", "code", "0.5,0.75", "0.5,0.25")
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["district"] for line in run.stdout.splitlines()] == ["y", "z"]
    assert "warning: " in run.stderr
    assert "feature 0 (id 'z'): overlaps feature 1 (id 'y')" in run.stderr


@pytest.mark.timeout(180)
def test_a_missing_file_or_bad_argument_is_an_error_naming_it(tmp_path: Path) -> None:
    run = locate("--boundaries", str(tmp_path / "none.geojson"), "1,2")
    assert run.returncode == 2
    assert "none.geojson: cannot read the boundaries" in run.stderr
    run = locate("--boundaries", str(SF), "37.8;-122.4")
    assert run.returncode == 2
    assert "point '37.8;-122.4' is not LAT,LON" in run.stderr
    run = locate("--boundaries", str(SF))
    assert run.returncode == 2
    assert "give LAT,LON arguments or --batch" in run.stderr
