"""The city's open data: which datasets it publishes, their DCAT description, their file formats.

    catalogue = dcat_catalogue(site, DATASETS, coverage={"aqi-hourly": (first, last)})
    published_range(now, "PT1H", delay_s=3600, start=..., end=...)  # what may be shown now
    for chunk in encode("csv", AQI_HOURLY, rows, centroid):        # bytes, row by row
        ...

Each :class:`Dataset` is an aggregate over a period (an hour, a day) per district: it never
holds a device id, a comment, a name or anything else about a person, only counts, means and
levels. A period is published once it has ended and a configured delay has passed
(:func:`published_range`), so a dataset cannot be used to watch the city live.

The catalogue is DCAT (W3C Data Catalog Vocabulary, version 3) in JSON-LD, with the DCAT-AP
properties data portals harvest: title, description, publisher, licence, update frequency
(``dct:accrualPeriodicity``, an EU frequency), spatial coverage (the city's bounding box as
``locn:geometry`` WKT) and temporal coverage, and one ``dcat:Distribution`` per format with its
media type and download URL.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

__all__ = [
    "AQI_HOURLY",
    "DATASETS",
    "DEVICE_COVERAGE_DAILY",
    "FORMATS",
    "INCIDENTS_DAILY",
    "Column",
    "Dataset",
    "Site",
    "dataset",
    "dcat_catalogue",
    "encode",
    "published_range",
]

FORMATS: Mapping[str, str] = {
    "csv": "text/csv",
    "json": "application/json",
    "geojson": "application/geo+json",
}
"""The download formats, by file extension, with their media types."""

_PERIODS = {"PT1H": timedelta(hours=1), "P1D": timedelta(days=1)}
_EU_FREQUENCY = {"PT1H": "HOURLY", "P1D": "DAILY"}
_EU_FREQ_BASE = "http://publications.europa.eu/resource/authority/frequency/"


@dataclass(frozen=True)
class Column:
    """One column of a dataset: its name, JSON type and what it means."""

    name: str
    type: str  # "string", "integer", "number", "datetime"
    description: str


@dataclass(frozen=True)
class Dataset:
    """One published dataset: an aggregate per district and period (never per device)."""

    id: str
    title: str
    description: str
    period: str  # an ISO 8601 duration of _PERIODS: the rows' granularity and update rhythm
    columns: tuple[Column, ...]
    keywords: tuple[str, ...]

    @property
    def period_length(self) -> timedelta:
        """The length of one period (an hour, a day)."""
        return _PERIODS[self.period]


_DISTRICT = (Column("district", "string", "the district's id"),
             Column("district_name", "string", "the district's name"))

AQI_HOURLY = Dataset(
    id="aqi-hourly",
    title="Air quality index per district, hourly",
    description="The mean and the highest air quality index (US EPA scale, 0-500) of each "
                "district in each hour, from the city's air sensors, with the level of the "
                "highest value and how many 10-second indicator windows the hour held.",
    period="PT1H",
    columns=(Column("period_start", "datetime", "the hour's start (UTC)"), *_DISTRICT,
             Column("aqi_mean", "number", "the mean AQI over the hour"),
             Column("aqi_max", "number", "the highest AQI in the hour"),
             Column("level", "string", "the AQI level of aqi_max (good ... hazardous)"),
             Column("windows", "integer", "indicator windows the hour held")),
    keywords=("air quality", "AQI", "environment"),
)
INCIDENTS_DAILY = Dataset(
    id="incidents-daily",
    title="Incidents per district and kind, daily",
    description="How many incidents the operations centre opened each day in each district, "
                "by kind of problem, and how many of them were critical. No incident ids, "
                "comments or names.",
    period="P1D",
    columns=(Column("period_start", "datetime", "the day's start (UTC)"), *_DISTRICT,
             Column("kind", "string", "what was measured or reported (pm25, noise, ...)"),
             Column("incidents", "integer", "incidents opened that day"),
             Column("critical", "integer", "of them, opened or raised to critical")),
    keywords=("incidents", "public safety", "operations"),
)
DEVICE_COVERAGE_DAILY = Dataset(
    id="device-coverage-daily",
    title="Sensor coverage per district, daily",
    description="How many distinct sensors reported each day in each district and how many "
                "readings they sent. Counts only: no device ids.",
    period="P1D",
    columns=(Column("period_start", "datetime", "the day's start (UTC)"), *_DISTRICT,
             Column("devices", "integer", "distinct sensors that reported that day"),
             Column("readings", "integer", "readings accepted that day")),
    keywords=("sensors", "coverage", "internet of things"),
)
DATASETS: tuple[Dataset, ...] = (AQI_HOURLY, INCIDENTS_DAILY, DEVICE_COVERAGE_DAILY)


def dataset(dataset_id: str) -> Dataset:
    """The dataset with this id; KeyError naming the valid ids otherwise."""
    for candidate in DATASETS:
        if candidate.id == dataset_id:
            return candidate
    valid = ", ".join(d.id for d in DATASETS)
    msg = f"no dataset {dataset_id!r}; the datasets are: {valid}"
    raise KeyError(msg)


@dataclass(frozen=True)
class Site:
    """What the catalogue says about the publisher: its name, the city, its licence, where."""

    base_url: str  # where the open-data routes are, e.g. http://127.0.0.1:8766/open-data/
    city: str
    publisher: str
    licence_url: str
    bbox: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat (WGS84)
    delay_s: float


def published_range(
    now: datetime, period: str, *, delay_s: float, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """The [start, end) a download may cover: whole periods, each ended ``delay_s`` ago.

    ``end`` defaults to (and is capped at) the last period boundary at least ``delay_s`` before
    ``now``; ``start`` defaults to one period before ``end``; both are aligned down to period
    boundaries (UTC). ValueError when ``start`` is not before ``end``.
    """
    length = _PERIODS[period]
    newest = _floor(now - timedelta(seconds=delay_s), length)
    last = newest if end is None else min(_floor(end, length), newest)
    first = last - length if start is None else _floor(start, length)
    if first >= last:
        msg = (f"nothing to publish between {first.isoformat()} and {last.isoformat()}: periods "
               f"of {period} are published {delay_s:g} s after they end")
        raise ValueError(msg)
    return first, last


def _floor(moment: datetime, length: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + length * math.floor((moment - epoch) / length)


def dcat_catalogue(
    site: Site, datasets: Sequence[Dataset],
    coverage: Mapping[str, tuple[datetime, datetime] | None],
) -> dict[str, Any]:
    """The DCAT catalogue (JSON-LD) of ``datasets``; ``coverage`` is each one's time span."""
    west, south, east, north = site.bbox
    wkt = (f"POLYGON(({west} {south}, {east} {south}, {east} {north}, {west} {north}, "
           f"{west} {south}))")
    publisher = {"@type": "foaf:Organization", "foaf:name": site.publisher}
    entries = []
    for ds in datasets:
        span = coverage.get(ds.id)
        entry: dict[str, Any] = {
            "@id": f"{site.base_url}datasets/{ds.id}",
            "@type": "dcat:Dataset",
            "dct:identifier": ds.id,
            "dct:title": f"{ds.title} ({site.city})",
            "dct:description": ds.description,
            "dcat:keyword": list(ds.keywords),
            "dct:publisher": publisher,
            "dct:license": {"@id": site.licence_url},
            "dct:accrualPeriodicity": {"@id": _EU_FREQ_BASE + _EU_FREQUENCY[ds.period]},
            "dcat:temporalResolution": {"@value": ds.period, "@type": "xsd:duration"},
            "dct:spatial": {"@type": "dct:Location",
                            "locn:geometry": {"@value": wkt, "@type": "gsp:wktLiteral"}},
            "cityheart:publicationDelay": {"@value": f"PT{int(site.delay_s)}S",
                                           "@type": "xsd:duration"},
            "cityheart:columns": [{"name": c.name, "type": c.type, "description": c.description}
                                  for c in ds.columns],
            "dcat:distribution": [
                {"@type": "dcat:Distribution",
                 "dct:title": f"{ds.title} as {fmt.upper()}",
                 "dcat:downloadURL": {"@id": f"{site.base_url}datasets/{ds.id}.{fmt}"},
                 "dcat:accessURL": {"@id": f"{site.base_url}datasets/{ds.id}.{fmt}"},
                 "dcat:mediaType": {"@id": "https://www.iana.org/assignments/media-types/"
                                           + media},
                 "dct:format": fmt.upper(),
                 "dct:license": {"@id": site.licence_url}}
                for fmt, media in FORMATS.items()
            ],
        }
        if span is not None:
            entry["dct:temporal"] = {"@type": "dct:PeriodOfTime",
                                     "dcat:startDate": _xsd_datetime(span[0]),
                                     "dcat:endDate": _xsd_datetime(span[1])}
        entries.append(entry)
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "locn": "http://www.w3.org/ns/locn#",
            "gsp": "http://www.opengis.net/ont/geosparql#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
            "cityheart": f"{site.base_url}terms#",
        },
        "@id": f"{site.base_url}catalog.jsonld",
        "@type": "dcat:Catalog",
        "dct:title": f"{site.city} open data",
        "dct:description": f"Aggregated, delayed data of the {site.city} operations centre: "
                           "per district and period, never about one device or person.",
        "dct:publisher": publisher,
        "dct:license": {"@id": site.licence_url},
        "dcat:dataset": entries,
    }


def _xsd_datetime(moment: datetime) -> dict[str, str]:
    return {"@value": moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "@type": "xsd:dateTime"}


Row = Sequence[Any]
"""One dataset row: its columns' values, in :attr:`Dataset.columns` order."""
Centroid = Mapping[str, tuple[float, float]]
"""Each district's centroid, (lon, lat)."""


def encode(fmt: str, ds: Dataset, rows: Iterable[Row], centroid: Centroid) -> Iterator[bytes]:
    """``rows`` as a ``fmt`` file, one chunk at a time (never the whole file in memory).

    GeoJSON gives each row its district's centroid as a Point. ValueError naming the formats.
    """
    if fmt == "csv":
        return _csv(ds, rows)
    if fmt == "json":
        return _json(ds, rows)
    if fmt == "geojson":
        return _geojson(ds, rows, centroid)
    msg = f"unknown format {fmt!r}; the formats are: {', '.join(FORMATS)}"
    raise ValueError(msg)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, float):
        return round(value, 2)
    return value


def _csv(ds: Dataset, rows: Iterable[Row]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in ds.columns])
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])
        if buffer.tell() >= 65_536:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _json(ds: Dataset, rows: Iterable[Row]) -> Iterator[bytes]:
    names = [c.name for c in ds.columns]
    yield b'{"dataset":' + orjson.dumps(ds.id) + b',"rows":['
    first = True
    for row in rows:
        record = orjson.dumps(dict(zip(names, map(_cell, row), strict=True)))
        yield record if first else b"," + record
        first = False
    yield b"]}"


def _geojson(ds: Dataset, rows: Iterable[Row], centroid: Centroid) -> Iterator[bytes]:
    names = [c.name for c in ds.columns]
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for row in rows:
        properties = dict(zip(names, map(_cell, row), strict=True))
        point = centroid.get(str(properties.get("district")))
        geometry = None if point is None else {"type": "Point", "coordinates": list(point)}
        feature = orjson.dumps({"type": "Feature", "geometry": geometry,
                                "properties": properties})
        yield feature if first else b"," + feature
        first = False
    yield b"]}"
