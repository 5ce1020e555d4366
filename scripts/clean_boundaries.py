"""Make a district boundaries file pass cityheart's checks: the recipe of the shipped demo city.

    python scripts/clean_boundaries.py raw.geojson cityheart/data/geo/san-francisco.geojson

It reads a GeoJSON FeatureCollection whose districts are named in ``--name-property`` and writes
one that :func:`models.geography.parse_geography` accepts without a problem:

1. each invalid geometry is repaired (``shapely.make_valid``, polygonal part kept);
2. an area two districts both claim goes to the smaller id (the locator's border rule);
3. a gap between neighbours goes to the bordering district with the smallest id;
4. each feature gets ``id`` (a slug of its name, usable in MQTT topics) and keeps ``name``;
   coordinates are rounded to 1e-6 degrees (about 0.1 m).

It refuses to write a result that still has problems.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping

from models.geography import District, check_coverage, parse_geography


def slug(name: str) -> str:
    """A lower-case id of ``name``: letters and digits, runs of anything else as one dash."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def _polygonal(geometry: shapely.Geometry) -> Polygon | MultiPolygon:
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    merged = shapely.union_all(parts)
    return merged if isinstance(merged, Polygon | MultiPolygon) else MultiPolygon()


def clean(collection: dict, name_property: str) -> list[District]:
    """The districts of ``collection``, repaired, without overlaps and gaps, ordered by id."""
    names = {f["properties"][name_property] for f in collection["features"]}
    parsed = parse_geography(collection, id_property=name_property, name_property=name_property)
    if len(parsed.districts) != len(names):
        sys.exit("every feature needs a distinct name")
    districts = sorted(
        (District(slug(d.name), d.name, d.geometry, d.index) for d in parsed.districts),
        key=lambda d: d.id,
    )
    claimed: shapely.Geometry = Polygon()
    trimmed = []
    for district in districts:  # smallest id first keeps what it shares with later ones
        geometry = _polygonal(shapely.difference(district.geometry, claimed))
        claimed = shapely.union(claimed, geometry)
        trimmed.append(District(district.id, district.name, geometry, district.index))
    for problem in check_coverage(trimmed, tolerance_m2=0.0):
        if "gap" not in problem.reason:
            continue
        lon, lat = (float(v) for v in re.findall(r"(?:lon|lat) (-?[\d.]+)", problem.reason))
        union = shapely.union_all([d.geometry for d in trimmed])
        for part in getattr(union, "geoms", [union]):
            for ring in part.interiors:
                hole = Polygon(ring)
                if hole.contains(shapely.Point(lon, lat)):
                    owner = next(i for i, d in enumerate(trimmed) if d.index == problem.index)
                    d = trimmed[owner]
                    filled = _polygonal(shapely.union(d.geometry, hole))
                    trimmed[owner] = District(d.id, d.name, filled, d.index)
    return [
        District(d.id, d.name, _polygonal(shapely.set_precision(d.geometry, 1e-6)), d.index)
        for d in trimmed
    ]


def main() -> None:
    """Read, clean, check and write (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--name-property", default="name")
    args = parser.parse_args()
    districts = clean(json.loads(args.source.read_text(encoding="utf-8")), args.name_property)
    features = [
        {
            "type": "Feature",
            "properties": {"id": d.id, "name": d.name},
            "geometry": mapping(d.geometry if isinstance(d.geometry, MultiPolygon)
                                else MultiPolygon([d.geometry])),
        }
        for d in districts
    ]
    result = {"type": "FeatureCollection", "features": features}
    check = parse_geography(result, id_property="id", name_property="name")
    if check.problems:
        sys.exit("\n".join(str(p) for p in check.problems))
    args.target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, separators=(",", ":"))
    args.target.write_text(text + "\n", encoding="utf-8")
    print(f"{args.target}: {len(features)} districts, {len(text)} bytes")


if __name__ == "__main__":
    main()
