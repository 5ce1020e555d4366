"""District geography: parsing, the checks that stop a bad city file, the locator and its rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, shape

from models.errors import ConfigError
from models.geography import Locator, parse_geography
from settings.loader import load_mapping

SF = Path(__file__).resolve().parents[2] / "cityheart" / "data" / "geo" / "san-francisco.geojson"
D = 0.001  # a cell of about 100 m near the equator, so areas are well above the tolerance


def square(x: float, y: float, size: float = D) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def feature(fid: object, geometry: dict, **props: object) -> dict:
    return {"type": "Feature", "properties": {"id": fid, "name": f"N {fid}", **props},
            "geometry": geometry}


def polygon(*rings: list[list[float]]) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


def collection(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def parse(data: dict) -> tuple[Locator, list[str]]:
    geography = parse_geography(data, id_property="id", name_property="name")
    return Locator(geography.districts), [str(p) for p in geography.problems]


# --- lookups ----------------------------------------------------------------------------------


def test_multipolygon_parts_all_belong_to_their_district() -> None:
    islands = {"type": "MultiPolygon",
               "coordinates": [[square(0, 0)], [square(3 * D, 0)]]}
    locator, problems = parse(collection(feature("isles", islands)))
    assert problems == []
    assert locator.locate(D / 2, D / 2) == "isles"
    assert locator.locate(D / 2, 3.5 * D) == "isles"
    assert locator.locate(D / 2, 2 * D) is None  # the water between the parts
    atoll = {"type": "MultiPolygon", "coordinates": [
        [square(0, 0)], [square(3 * D, 0, 3 * D), square(4 * D, D, D)[::-1]]]}
    locator, problems = parse(collection(feature("atoll", atoll)))
    assert problems == []
    assert locator.locate(1.5 * D, 4.5 * D) is None  # the lagoon: a hole in the second part
    assert locator.locate(0.5 * D, 3.5 * D) == "atoll"


def test_a_point_in_a_hole_belongs_to_nobody_or_to_the_district_filling_it() -> None:
    lake = square(D, D, D)
    ring = polygon(square(0, 0, 3 * D), lake[::-1])
    locator, problems = parse(collection(feature("shore", ring)))
    assert problems == []  # a hole that only its own district borders is not a gap
    assert locator.locate(1.5 * D, 1.5 * D) is None
    assert locator.locate(0.5 * D, 0.5 * D) == "shore"
    locator, problems = parse(collection(feature("shore", ring), feature("lake", polygon(lake))))
    assert problems == []
    assert locator.locate(1.5 * D, 1.5 * D) == "lake"


@pytest.mark.parametrize("order", [["b", "a", "c", "d"], ["d", "c", "b", "a"]])
def test_a_shared_border_belongs_to_the_smallest_id_whatever_the_file_order(
    order: list[str],
) -> None:
    cells = {"a": square(0, 0), "b": square(D, 0), "c": square(0, D), "d": square(D, D)}
    locator, problems = parse(collection(*(feature(i, polygon(cells[i])) for i in order)))
    assert problems == []
    assert locator.locate(D / 2, D) == "a"        # the a|b edge (lat, lon)
    assert locator.locate(D * 1.5, D) == "c"      # the c|d edge
    assert locator.locate(D, D * 1.5) == "b"      # the b|d edge
    assert locator.locate(D, D) == "a"            # the corner of all four
    assert locator.locate(D / 2, 2 * D) == "b"    # the city's outer edge: still inside


def test_points_outside_every_district_get_none() -> None:
    locator, _ = parse(collection(feature("a", polygon(square(0, 0)))))
    assert locator.locate_many([-D, D / 2, 2 * D, 45.0], [D / 2, -D, D / 2, 90.0]) == [None] * 4
    assert locator.locate_many([], []) == []


@settings(max_examples=60, deadline=None)
@given(
    columns=st.integers(1, 4), rows=st.integers(1, 4),
    fractions=st.lists(st.tuples(st.sampled_from([0, 0.25, 0.5, 1]), st.floats(0, 1)),
                       min_size=1, max_size=30),
    data=st.data(),
)
def test_every_point_of_a_tiling_gets_exactly_the_smallest_covering_id(
    columns: int, rows: int, fractions: list[tuple[float, float]], data: st.DataObject
) -> None:
    ids = data.draw(st.permutations([f"d{n:02d}" for n in range(columns * rows)]))
    features = [feature(ids[r * columns + c], polygon(square(c * D, r * D)))
                for r in range(rows) for c in range(columns)]
    geography = parse_geography(collection(*features), id_property="id")
    assert geography.problems == ()
    locator = Locator(geography.districts)
    # points on grid lines (snapped fractions) and anywhere inside the union
    lons = [a * columns * D for a, _ in fractions]
    lats = [b * rows * D for _, b in fractions]
    for lat, lon, found in zip(lats, lons, locator.locate_many(lats, lons), strict=True):
        covering = sorted(d.id for d in geography.districts
                          if d.geometry.covers(Point(lon, lat)))
        assert covering, (lat, lon)
        assert found == covering[0]


# --- a city file with errors ------------------------------------------------------------------


def test_a_file_with_errors_names_each_feature_and_what_is_wrong() -> None:
    bowtie = [[0, 0], [D, D], [D, 0], [0, D], [0, 0]]
    data = collection(
        feature("bow", polygon([[x + 10 * D, y] for x, y in bowtie])),     # 0: invalid ring
        feature("west", polygon(square(0, 0))),                             # 1
        feature("east", polygon(square(0.5 * D, 0))),                       # 2: overlaps west
        feature("west", polygon(square(0, 5 * D))),                         # 3: duplicate id
        {"type": "Feature", "properties": {"name": "nameless"},
         "geometry": polygon(square(20 * D, 0))},                           # 4: no id
        feature("spot", {"type": "Point", "coordinates": [0, 0]}),          # 5: not polygonal
        feature("far", polygon(square(179.9995, 0))),                       # 6: lon > 180
    )
    _, problems = parse(data)
    assert problems[0].startswith("feature 0 (id 'bow'): invalid Polygon: Self-intersection")
    assert any(p.startswith("feature 4: property 'id' (the district id) is missing")
               for p in problems)
    assert "feature 5 (id 'spot'): geometry is 'Point', not a Polygon or MultiPolygon" in problems
    assert "feature 3 (id 'west'): id 'west' is also the id of feature 1" in problems
    assert any(p.startswith("feature 1 (id 'west'): overlaps feature 2 (id 'east') by ")
               for p in problems)
    assert ("feature 6 (id 'far'): bounding box [179.9995, 0.0, 180.0005, 0.001] is not in WGS84"
            " [lon, lat] degrees") in problems
    assert len(problems) == 6


def test_a_sliver_between_neighbours_is_a_gap_but_the_outer_boundary_is_not() -> None:
    # three cells around a missing corner cell: the corner is outside the city, not a gap
    corner = collection(*(feature(i, polygon(square(x, y)))
                          for i, (x, y) in zip("abc", [(0, 0), (D, 0), (0, D)], strict=True)))
    assert parse(corner)[1] == []
    # a 1 m slit between two blocks, closed by a third one on each side: a gap
    slit = D / 100
    blocks = collection(
        feature("a", polygon([[0, 0], [D, 0], [D, D], [0, D], [0, 0]])),
        feature("b", polygon([[D + slit, 0], [2 * D, 0], [2 * D, D], [D + slit, D],
                              [D + slit, 0]])),
        feature("c", polygon([[0, D], [2 * D, D], [2 * D, 2 * D], [0, 2 * D], [0, D]])),
        feature("d", polygon([[0, -D], [2 * D, -D], [2 * D, 0], [0, 0], [0, -D]])),
    )
    _, problems = parse(blocks)
    assert len(problems) == 1
    assert problems[0].startswith("feature 0 (id 'a'): a gap of ")
    assert "feature 1 (id 'b'), feature 2 (id 'c'), feature 3 (id 'd')" in problems[0]
    relaxed = parse_geography(blocks, id_property="id", tolerance_m2=10_000)
    assert relaxed.problems == ()


def test_something_that_is_not_a_feature_collection_is_one_problem() -> None:
    geography = parse_geography({"type": "Feature"}, id_property="id")
    assert [str(p) for p in geography.problems] == [
        'not a GeoJSON FeatureCollection (needs "type": "FeatureCollection" and a "features" list)'
    ]


# --- the shipped city ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def san_francisco() -> dict:
    return json.loads(SF.read_text(encoding="utf-8"))


def test_san_francisco_passes_the_checks_and_places_its_landmarks(san_francisco: dict) -> None:
    geography = parse_geography(san_francisco, id_property="id", name_property="name",
                                tolerance_m2=0.0)
    assert geography.problems == ()
    assert len(geography.districts) == 37
    landmarks = {  # (lat, lon) -> planning neighbourhood
        (37.80239, -122.40583): "north-beach",          # Coit Tower
        (37.79554, -122.39370): "financial-district",   # Ferry Building
        (37.75443, -122.44770): "twin-peaks",           # Twin Peaks summit
        (37.76940, -122.48620): "golden-gate-park",     # the park's bison paddock road
        (37.80269, -122.44846): "marina",               # Palace of Fine Arts
        (37.75000, -122.55000): None,                   # the Pacific
    }
    locator = Locator(geography.districts)
    assert locator.locate_many([p[0] for p in landmarks], [p[1] for p in landmarks]) == list(
        landmarks.values()
    )
    for (lat, lon), district_id in landmarks.items():
        if district_id is not None:  # checked with the geometry itself, not only the index
            district = next(d for d in geography.districts if d.id == district_id)
            assert district.geometry.contains(Point(lon, lat))


# --- settings -----------------------------------------------------------------------------------


def city(boundaries: object, **extra: object) -> dict:
    return {
        "city": {"name": "Test", "boundaries": boundaries},
        "kinds": {"pm25": {"name": "PM2.5", "unit": "ug/m3", "range": [0, 1000],
                           "interval_s": 10,
                           "thresholds": {"direction": "above", "warning": 35, "critical": 75},
                           "simulation": {"base": 10}}},
        **extra,
    }


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_city_boundaries_load_relative_to_the_config_and_become_the_districts(
    tmp_path: Path,
) -> None:
    (tmp_path / "geo").mkdir()
    write(tmp_path / "geo" / "town.geojson", collection(
        feature("east", polygon(square(D, 0))), feature("west", polygon(square(0, 0)))))
    settings = load_mapping(city({"file": "geo/town.geojson"}), env={}, base_dir=tmp_path)
    assert settings.district_ids() == ["east", "west"]
    assert settings.districts[1].name == "N west"
    assert Locator(settings.geography.districts).locate(D / 2, D / 2) == "west"
    assert Path(settings.city.boundaries.file).is_absolute()


def test_without_boundaries_the_hand_drawn_districts_are_the_geography() -> None:
    from settings.loader import load

    settings = load(Path(__file__).resolve().parents[2] / "config.yaml", env={})
    locator = Locator(settings.geography.districts)
    assert [locator.locate(d.centroid[1], d.centroid[0]) for d in settings.districts] == (
        settings.district_ids()
    )


@pytest.mark.parametrize(("boundaries", "key", "reason"), [
    ({"file": "missing.geojson"}, "city.boundaries.file", "cannot read the boundaries"),
    ({"file": "town.geojson", "id_prop": "x"}, "city.boundaries.id_prop", "unknown key"),
    ({"file": "town.geojson", "id_property": "code"}, "city.boundaries.file",
     "feature 0: property 'code' (the district id) is missing"),
    ({"file": "overlap.geojson"}, "city.boundaries.file",
     "feature 0 (id 'a'): overlaps feature 1 (id 'b')"),
    ({"file": "broken.json"}, "city.boundaries.file", "not valid JSON"),
    ({"file": "town.geojson", "id_property": "name"}, "city.boundaries.id_property",
     "feature 0 has id 'N a', which cannot name a district"),
])
def test_a_bad_boundaries_setting_stops_the_start_naming_key_and_feature(
    tmp_path: Path, boundaries: dict, key: str, reason: str
) -> None:
    write(tmp_path / "town.geojson", collection(feature("a", polygon(square(0, 0)))))
    write(tmp_path / "overlap.geojson", collection(
        feature("a", polygon(square(0, 0))), feature("b", polygon(square(D / 2, 0)))))
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(city(boundaries), env={}, base_dir=tmp_path)
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_boundaries_and_a_districts_list_together_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "town.geojson", collection(feature("a", polygon(square(0, 0)))))
    hand_drawn = [{"id": "a", "name": "A", "centroid": [0, 0], "polygon": square(0, 0)}]
    with pytest.raises(ConfigError, match="give either districts or city.boundaries"):
        load_mapping(city({"file": "town.geojson"}, districts=hand_drawn), env={},
                     base_dir=tmp_path)


def test_every_shipped_district_polygon_is_the_geometry_of_its_feature(san_francisco: dict) -> None:
    ids = [f["properties"]["id"] for f in san_francisco["features"]]
    assert ids == sorted(ids)
    assert all(shape(f["geometry"]).is_valid for f in san_francisco["features"])
