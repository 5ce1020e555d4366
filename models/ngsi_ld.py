"""The city as NGSI-LD entities (ETSI GS CIM 009), in FIWARE Smart Data Models where one exists.

Pure translation: rows in (as the database and the settings give them), entities out::

    kinds = {"pm25": KindInfo("pm25", "ug/m3")}
    entities = vital_entities(latest_vitals, kinds, centroids)   # per district and type
    device_entity(device, centroids)     # a Device; lat/lon when known, else district centroid
    alert_entity(alert, centroids)         # an Alert
    simplified(entity)                     # options=keyValues
    temporal_entity(entity_id, type_, {"pm25": [(ts, value, unit)]})

Kinds map to a model and its attribute (:data:`MODELS`): air pollutants to
``AirQualityObserved``, ``noise`` to ``NoiseLevelObserved.LAeq``, ``traffic_speed`` to
``TrafficFlowObserved.averageVehicleSpeed``, ``water_level`` to ``WaterObserved.height``,
``rainfall`` to ``WeatherObserved.precipitation``; a kind no model has goes to cityheart's own
``CityVitalObserved``, its attribute named as the kind. A district's entity of a type is
``urn:ngsi-ld:<type>:<district>``, with ``location`` (the district's centroid), ``areaServed``,
``dateObserved`` (the newest window's end) and one Property per kind (the window's mean,
``observedAt`` its end, ``unitCode`` UN/CEFACT). The ``@context`` names every term used
(:func:`context_document`), served by the server itself so no client needs the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALERT_SEVERITY", "CORE_TERMS", "ENTITY_TYPES", "MODELS", "Centroids", "KindInfo",
    "alert_entity", "context_document", "device_entity", "entity_id", "parse_entity_id",
    "simplified", "temporal_entity", "vital_entities",
]

Centroids = Mapping[str, Sequence[float]]
"""district id -> (lon, lat)."""

_SDM = "https://smartdatamodels.org/"
_CITYHEART = "https://cityheart.example/ngsi-ld/"
_ENV = f"{_SDM}dataModel.Environment/"

MODELS: dict[str, tuple[str, str]] = {
    "pm25": ("AirQualityObserved", "pm25"), "pm10": ("AirQualityObserved", "pm10"),
    "no2": ("AirQualityObserved", "no2"), "o3": ("AirQualityObserved", "o3"),
    "co": ("AirQualityObserved", "co"), "so2": ("AirQualityObserved", "so2"),
    "noise": ("NoiseLevelObserved", "LAeq"),
    "traffic_speed": ("TrafficFlowObserved", "averageVehicleSpeed"),
    "water_level": ("WaterObserved", "height"),
    "rainfall": ("WeatherObserved", "precipitation"),
}
"""kind -> (Smart Data Model entity type, attribute)."""

GENERIC_TYPE = "CityVitalObserved"
ENTITY_TYPES: dict[str, str] = {
    "AirQualityObserved": f"{_ENV}AirQualityObserved",
    "NoiseLevelObserved": f"{_ENV}NoiseLevelObserved",
    "TrafficFlowObserved": f"{_SDM}dataModel.Transportation/TrafficFlowObserved",
    "WaterObserved": f"{_ENV}WaterObserved",
    "WeatherObserved": f"{_SDM}dataModel.Weather/WeatherObserved",
    "Device": f"{_SDM}dataModel.Device/Device",
    "Alert": f"{_SDM}dataModel.Alert/Alert",
    GENERIC_TYPE: f"{_CITYHEART}{GENERIC_TYPE}",
}
"""Each entity type served and its IRI."""

_DOMAINS = {"WeatherObserved": "dataModel.Weather",
            "TrafficFlowObserved": "dataModel.Transportation"}
_ATTRIBUTES: dict[str, str] = {
    **{attr: f"{_SDM}{_DOMAINS.get(t, 'dataModel.Environment')}/{attr}"
       for t, attr in MODELS.values()},
    "dateObserved": f"{_SDM}dateObserved", "areaServed": f"{_SDM}areaServed",
    "name": f"{_SDM}name", "controlledProperty": f"{_SDM}dataModel.Device/controlledProperty",
    "dateLastValueReported": f"{_SDM}dataModel.Device/dateLastValueReported",
    "category": f"{_SDM}dataModel.Alert/category",
    "subCategory": f"{_SDM}dataModel.Alert/subCategory",
    "severity": f"{_SDM}dataModel.Alert/severity",
    "description": f"{_SDM}description", "dateIssued": f"{_SDM}dataModel.Alert/dateIssued",
    "alertSource": f"{_SDM}dataModel.Alert/alertSource",
}

CORE_TERMS: dict[str, Any] = {
    "ngsi-ld": "https://uri.etsi.org/ngsi-ld/",
    "id": "@id", "type": "@type", "value": "https://uri.etsi.org/ngsi-ld/hasValue",
    "Property": "https://uri.etsi.org/ngsi-ld/Property",
    "GeoProperty": "https://uri.etsi.org/ngsi-ld/GeoProperty",
    "Relationship": "https://uri.etsi.org/ngsi-ld/Relationship",
    "object": {"@id": "https://uri.etsi.org/ngsi-ld/hasObject", "@type": "@id"},
    "observedAt": {"@id": "https://uri.etsi.org/ngsi-ld/observedAt", "@type": "DateTime"},
    "unitCode": "https://uri.etsi.org/ngsi-ld/unitCode",
    "location": "https://uri.etsi.org/ngsi-ld/location",
    "DateTime": "https://uri.etsi.org/ngsi-ld/DateTime",
    "Point": "https://purl.org/geojson/vocab#Point",
    "Polygon": "https://purl.org/geojson/vocab#Polygon",
    "coordinates": {"@id": "https://purl.org/geojson/vocab#coordinates",
                    "@container": "@list"},
}
"""The NGSI-LD core terms these entities use, with the IRIs the core context gives them."""

ALERT_SEVERITY = {"warning": "medium", "critical": "high", "emergency": "critical"}
"""cityheart's alert severity -> Smart Data Models' Alert severity."""

_ALERT_CATEGORY = {"AirQualityObserved": "environment", "NoiseLevelObserved": "environment",
                   "WaterObserved": "environment", "TrafficFlowObserved": "traffic",
                   "WeatherObserved": "weather"}
_UNIT_CODES = {"ug/m3": "GQ", "mg/m3": "GP", "dB": "2N", "dBA": "2N", "km/h": "KMH",
               "m": "MTR", "cm": "CMT", "mm": "MMT", "mm/h": "H67", "kW": "KWT", "MW": "MAW",
               "%": "P1"}


@dataclass(frozen=True, slots=True)
class KindInfo:
    """What the entities need to know about a kind: its id and canonical unit."""

    id: str
    unit: str


def model_of(kind: str) -> tuple[str, str]:
    """(entity type, attribute) of ``kind``."""
    return MODELS.get(kind, (GENERIC_TYPE, kind))


def context_document(kinds: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON-LD ``@context`` of every term these entities use (kinds without a model too)."""
    terms: dict[str, Any] = dict(CORE_TERMS)
    terms.update(ENTITY_TYPES)
    terms.update(_ATTRIBUTES)
    for kind in kinds:
        entity_type, attribute = model_of(kind)
        terms.setdefault(attribute, f"{_CITYHEART}{attribute}")
    return {"@context": terms}


def entity_id(entity_type: str, key: str) -> str:
    """``urn:ngsi-ld:<type>:<key>``."""
    return f"urn:ngsi-ld:{entity_type}:{key}"


def parse_entity_id(text: str) -> tuple[str, str] | None:
    """(type, key) of an id :func:`entity_id` made, or None."""
    parts = text.split(":", 3)
    if len(parts) != 4 or parts[:2] != ["urn", "ngsi-ld"] or parts[2] not in ENTITY_TYPES:
        return None
    return parts[2], parts[3]


def vital_entities(
    vitals: Iterable[Mapping[str, Any]], kinds: Mapping[str, KindInfo], centroids: Centroids,
) -> list[dict[str, Any]]:
    """One entity per district and model type from the newest vitals (one row per district and
    kind: ``district, kind, mean, unit, window_end``), in a stable order."""
    entities: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(vitals, key=lambda r: (r["district"], r["kind"])):
        entity_type, attribute = model_of(row["kind"])
        district = row["district"]
        entity = entities.get((entity_type, district))
        if entity is None:
            entity = {"id": entity_id(entity_type, district), "type": entity_type,
                      "areaServed": _property(district)}
            if district in centroids:
                entity["location"] = _point(centroids[district])
            entities[(entity_type, district)] = entity
        observed = row["window_end"]
        unit = row.get("unit") or (kinds[row["kind"]].unit if row["kind"] in kinds else "")
        entity[attribute] = _property(row["mean"], observed, unit)
        newest = entity.get("dateObserved", {}).get("value", "")
        entity["dateObserved"] = _property(max(newest, observed))
    return sorted(entities.values(), key=lambda e: e["id"])


def device_entity(device: Mapping[str, Any], centroids: Centroids) -> dict[str, Any]:
    """A Device of a device row (``device_id, district, kind, last_seen, value, unit``, and
    ``lat``/``lon`` when known); its newest reading is the attribute of its kind (``pm25``)."""
    entity: dict[str, Any] = {
        "id": entity_id("Device", device["device_id"]), "type": "Device",
        "name": _property(device["device_id"]),
        "controlledProperty": _property([model_of(device["kind"])[1]]),
        "areaServed": _property(device["district"]),
        model_of(device["kind"])[1]: _property(device.get("value"), device.get("last_seen"),
                                               device.get("unit")),
        "dateLastValueReported": _property(device.get("last_seen")),
    }
    where = _position(device, centroids)
    if where is not None:
        entity["location"] = _point(where)
    return entity


def alert_entity(alert: Mapping[str, Any], centroids: Centroids) -> dict[str, Any]:
    """An Alert of a stored alert row."""
    entity_type = model_of(str(alert.get("kind")))[0]
    entity: dict[str, Any] = {
        "id": entity_id("Alert", alert["id"]), "type": "Alert",
        "category": _property(_ALERT_CATEGORY.get(entity_type, "environment")),
        "subCategory": _property(alert.get("kind")),
        "severity": _property(ALERT_SEVERITY.get(str(alert.get("severity")), "medium")),
        "description": _property(alert.get("message") or ""),
        "dateIssued": _property(alert.get("ts")),
        "alertSource": _property(alert.get("rule") or ""),
        "areaServed": _property(alert.get("district")),
    }
    where = _position(alert, centroids)
    if where is not None:
        entity["location"] = _point(where)
    return entity


def simplified(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The entity in the simplified (``keyValues``) representation."""
    out: dict[str, Any] = {}
    for name, attribute in entity.items():
        if isinstance(attribute, Mapping) and "type" in attribute and (
                "value" in attribute or "object" in attribute):
            out[name] = attribute.get("value", attribute.get("object"))
        else:
            out[name] = attribute
    return out


def temporal_entity(
    entity_id_: str, entity_type: str,
    series: Mapping[str, Sequence[tuple[str, float, str | None]]], *, values_only: bool = False,
) -> dict[str, Any]:
    """A temporal entity: each attribute's instances ``(observedAt, value, unit)`` oldest first;
    ``values_only`` gives the temporalValues form ``{"type", "values": [[value, time]]}``."""
    entity: dict[str, Any] = {"id": entity_id_, "type": entity_type}
    for attribute, points in series.items():
        if values_only:
            entity[attribute] = {"type": "Property",
                                 "values": [[value, at] for at, value, _ in points]}
        else:
            entity[attribute] = [_property(value, at, unit) for at, value, unit in points]
    return entity


def _property(
    value: Any, observed_at: str | None = None, unit: str | None = None,
) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": "Property", "value": value}
    if observed_at:
        prop["observedAt"] = observed_at
    if unit and unit in _UNIT_CODES:
        prop["unitCode"] = _UNIT_CODES[unit]
    return prop


def _point(lon_lat: Sequence[float]) -> dict[str, Any]:
    return {"type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [float(lon_lat[0]), float(lon_lat[1])]}}


def _position(row: Mapping[str, Any], centroids: Centroids) -> Sequence[float] | None:
    if row.get("lat") is not None and row.get("lon") is not None:
        return (float(row["lon"]), float(row["lat"]))
    return centroids.get(str(row.get("district")))
