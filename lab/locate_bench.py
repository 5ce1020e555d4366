"""How fast points find their district: the locator alone and ``cityheart locate --batch``.

    python -m lab.locate_bench                          # 100,000 points, the shipped San Francisco
    python -m lab.locate_bench --points 1000000 --boundaries city.geojson --id-property code

Points are drawn uniformly (seeded) over the boundaries' bounding box, so some fall outside every
district, as stray GPS fixes do. It prints one JSON object: the time to build the STRtree, the
time of one ``Locator.locate_many`` over all points (wall and this process's CPU), and the time
of the command end to end (process start, JSON lines in and out; wall and the child's CPU), which
must print a district or null for every point.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from models.geography import Geography, Locator
from settings.geography import read_boundaries

SHIPPED = Path(__file__).resolve().parents[1] / "cityheart/data/geo/san-francisco.geojson"


def main() -> None:
    """Parse the arguments, run both measurements, print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--boundaries", type=Path, default=SHIPPED)
    parser.add_argument("--id-property", default="id")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    geography = read_boundaries(args.boundaries, id_property=args.id_property, name_property=None)
    started = time.perf_counter()
    locator = Locator(geography.districts)
    build_s = time.perf_counter() - started
    xmin, ymin, xmax, ymax = _bounds(geography)
    draw = random.Random(args.seed)
    lats = [draw.uniform(ymin, ymax) for _ in range(args.points)]
    lons = [draw.uniform(xmin, xmax) for _ in range(args.points)]
    wall, cpu = time.perf_counter(), time.process_time()
    found = locator.locate_many(lats, lons)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lines = "".join(
        json.dumps({"lat": lat, "lon": lon}) + "\n" for lat, lon in zip(lats, lons, strict=True)
    )
    command = [sys.executable, "-m", "cityheart", "locate", "--boundaries", str(args.boundaries),
               "--id-property", args.id_property, "--batch"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run = subprocess.run(command, input=lines, capture_output=True, text=True, check=False)
    command_wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    printed = run.stdout.count("\n")
    if run.returncode != 0 or printed != args.points:
        sys.exit(f"cityheart locate failed ({run.returncode}, {printed} lines): {run.stderr}")
    print(json.dumps({
        "points": args.points,
        "districts": len(geography.districts),
        "inside": sum(f is not None for f in found),
        "build_tree_s": round(build_s, 4),
        "locate_many_wall_s": round(wall, 3),
        "locate_many_cpu_s": round(cpu, 3),
        "command_wall_s": round(command_wall, 3),
        "command_cpu_s": round(after.ru_utime + after.ru_stime
                               - before.ru_utime - before.ru_stime, 3),
    }))


def _bounds(geography: Geography) -> tuple[float, float, float, float]:
    boxes = [d.geometry.bounds for d in geography.districts]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


if __name__ == "__main__":
    main()
