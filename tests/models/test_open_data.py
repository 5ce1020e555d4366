"""Open data (issue 23): what is published when, and files a portal can read back."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from models.open_data import (
    AQI_HOURLY,
    DATASETS,
    INCIDENTS_DAILY,
    Site,
    dataset,
    dcat_catalogue,
    encode,
    published_range,
)

NOW = datetime(2026, 12, 7, 17, 42, 10, tzinfo=UTC)
SITE = Site(base_url="http://127.0.0.1:8766/open-data/", city="Riverton",
            publisher="Riverton operations centre",
            licence_url="https://creativecommons.org/licenses/by/4.0/",
            bbox=(11.55, 48.13, 11.67, 48.17), delay_s=3600)


def test_a_download_covers_whole_periods_that_ended_the_delay_ago() -> None:
    start, end = published_range(NOW, "PT1H", delay_s=3600, start=None, end=None)
    assert (start, end) == (datetime(2026, 12, 7, 15, tzinfo=UTC),
                            datetime(2026, 12, 7, 16, tzinfo=UTC))
    # asking for the future, or for the delayed hour, gives no more than the delay allows
    _, capped = published_range(NOW, "PT1H", delay_s=3600, start=NOW - timedelta(days=1),
                                end=NOW + timedelta(days=1))
    assert capped == datetime(2026, 12, 7, 16, tzinfo=UTC)
    start, end = published_range(NOW, "P1D", delay_s=0, start=datetime(2026, 12, 1, 13,
                                                                      tzinfo=UTC), end=None)
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC))
    with pytest.raises(ValueError, match="published 3600 s after they end"):
        published_range(NOW, "PT1H", delay_s=3600, start=NOW - timedelta(minutes=30), end=None)


def test_unknown_datasets_and_formats_name_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="aqi-hourly, incidents-daily, device-coverage-daily"):
        dataset("readings")
    with pytest.raises(ValueError, match="csv, json, geojson"):
        encode("xlsx", AQI_HOURLY, [], {})


def test_no_dataset_has_a_column_about_one_device_or_person() -> None:
    for ds in DATASETS:
        names = {c.name for c in ds.columns}
        assert not names & {"device_id", "device", "comment", "actor", "reporter", "id", "name"}


def test_the_catalogue_is_dcat_with_what_portals_harvest() -> None:
    first = datetime(2026, 11, 1, tzinfo=UTC)
    doc = dcat_catalogue(SITE, DATASETS, {AQI_HOURLY.id: (first, NOW), INCIDENTS_DAILY.id: None})
    assert doc["@type"] == "dcat:Catalog"
    assert doc["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    by_id = {d["dct:identifier"]: d for d in doc["dcat:dataset"]}
    assert set(by_id) == {d.id for d in DATASETS}
    aqi = by_id["aqi-hourly"]
    for prop in ("dct:title", "dct:description", "dct:publisher", "dct:license",
                 "dct:accrualPeriodicity", "dct:spatial", "dct:temporal"):
        assert prop in aqi, prop
    assert aqi["dct:accrualPeriodicity"]["@id"].endswith("/frequency/HOURLY")
    assert aqi["dct:temporal"]["dcat:startDate"]["@value"] == "2026-11-01T00:00:00Z"
    assert "POLYGON((11.55 48.13" in aqi["dct:spatial"]["locn:geometry"]["@value"]
    assert "dct:temporal" not in by_id["incidents-daily"]  # no history: no coverage claimed
    downloads = {d["dct:format"]: d["dcat:downloadURL"]["@id"] for d in aqi["dcat:distribution"]}
    assert downloads == {f: f"http://127.0.0.1:8766/open-data/datasets/aqi-hourly.{f.lower()}"
                         for f in ("CSV", "JSON", "GEOJSON")}


ROWS = [(datetime(2026, 12, 7, 15, tzinfo=UTC), "harbour", "Harbour", 42.123, 55.0, "good", 360),
        (datetime(2026, 12, 7, 15, tzinfo=UTC), "old-town", "Old Town, \"centre\"", 101.0,
         160.5, "unhealthy", 12)]


def test_each_format_reads_back_to_the_rows_streamed_in_chunks() -> None:
    centroid = {"harbour": (11.655, 48.14)}
    chunks = list(encode("csv", AQI_HOURLY, ROWS, centroid))
    table = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert [r["district_name"] for r in table] == ["Harbour", 'Old Town, "centre"']
    assert table[0]["period_start"] == "2026-12-07T15:00:00Z"
    assert table[0]["aqi_mean"] == "42.12"
    body = orjson.loads(b"".join(encode("json", AQI_HOURLY, ROWS, centroid)))
    assert body["rows"][1]["level"] == "unhealthy" and body["rows"][1]["windows"] == 12
    geo = orjson.loads(b"".join(encode("geojson", AQI_HOURLY, iter(ROWS), centroid)))
    assert geo["features"][0]["geometry"] == {"type": "Point", "coordinates": [11.655, 48.14]}
    assert geo["features"][1]["geometry"] is None  # no centroid known: no made-up place
    assert orjson.loads(b"".join(encode("json", AQI_HOURLY, [], centroid)))["rows"] == []


def test_a_large_csv_is_sent_in_several_chunks_not_built_whole() -> None:
    many = (ROWS[0] for _ in range(20_000))
    chunks = encode("csv", AQI_HOURLY, many, {})
    first = next(chunks)
    assert 60_000 < len(first) < 70_000  # the first chunk leaves before the rest is made
    assert sum(1 for _ in chunks) > 5
