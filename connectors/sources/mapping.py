"""A pulled source's answer turned into reading payloads, by its mapping. Pure, no I/O.

    mapper = Mapper(spec.mapping, units={"pm25": "ug/m3"}, locate=locator.locate)
    for record in mapper.records(document):     # one per item and value
        reading = parser.parse(record.payload, None, now)    # as any other way in

A field of the mapping that starts with ``$`` is a JSONPath selector (RFC 9535, with
python-jsonpath), evaluated on each item the ``items`` selector found; its first match is the
field's value. Anything else is a constant. The records are the same JSON objects a device or
``POST /ingest`` sends (``device_id``, ``district``, ``kind``, ``value``, ``unit``, ``ts``), so
the reading parser validates them exactly as it validates the others; a place given as ``lat``
and ``lon`` is located in the city's districts first. A number written as a string ("17.2") is
read as the number. What cannot become a reading at all (a position outside every district, a
value the item lacks or holds as null: ``missing_value``) is a :class:`MappedRecord` with its
``error`` set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpath
import orjson

from models.errors import ConfigError, InvalidReading
from settings.sources import ValueMapping

__all__ = ["MappedRecord", "Mapper"]

_MISSING = object()


@dataclass(frozen=True)
class MappedRecord:
    """One reading's payload taken from item ``index`` (or why there is none)."""

    index: int
    payload: bytes
    error: InvalidReading | None = None


class _Field:
    """A mapping field: a compiled selector, or a constant."""

    def __init__(self, name: str, spec: str | float | None) -> None:
        self.name = name
        self.constant: object = spec
        self.path: Any = None
        if isinstance(spec, str) and spec.startswith("$"):
            try:
                self.path = jsonpath.compile(spec)
            except jsonpath.JSONPathError as exc:
                raise ConfigError("mapping", name, f"{spec!r} is not a JSONPath: {exc}") from None

    def of(self, item: object) -> object:
        """The field's value in ``item`` (``_MISSING`` when the selector finds nothing)."""
        if self.path is None:
            return self.constant
        if not isinstance(item, (dict, list)):
            return _MISSING
        found = self.path.findall(item)
        return found[0] if found else _MISSING


def _number(value: object) -> object:
    """``value``, with a number written as a string read as the number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class Mapper:
    """Apply a :class:`~settings.sources.ValueMapping` to a service's JSON answers."""

    def __init__(
        self, mapping: ValueMapping, *, units: Mapping[str, str],
        locate: Callable[[float, float], str | None],
    ) -> None:
        self.mapping = mapping
        self._units = dict(units)
        self._locate = locate
        self._items = _Field("items", mapping.items)
        self._device = _Field("device_id", mapping.device_id)
        self._time = _Field("time", mapping.time)
        self._district = _Field("district", mapping.district)
        self._lat = _Field("lat", mapping.lat)
        self._lon = _Field("lon", mapping.lon)
        self._values = [(_Field(f"values[{n}].kind", value.kind),
                         _Field(f"values[{n}].value", value.value),
                         _Field(f"values[{n}].unit", value.unit))
                        for n, value in enumerate(mapping.values)]

    def items(self, document: object) -> list[object]:
        """The items of ``document`` (the whole document when ``items`` is ``$``)."""
        if self.mapping.items == "$":
            return [document]
        if not isinstance(document, (dict, list)):
            return []
        return list(self._items.path.findall(document)) if self._items.path else []

    def records(self, document: object) -> Iterator[MappedRecord]:
        """One record per item and mapped value, in the document's order."""
        for index, item in enumerate(self.items(document)):
            yield from self._of_item(index, item)

    def _of_item(self, index: int, item: object) -> Iterator[MappedRecord]:
        common: dict[str, object] = {}
        device = self._device.of(item)
        if device is not _MISSING and device is not None:
            common["device_id"] = f"{self.mapping.device_prefix}{device}"
        moment = self._time.of(item)
        if moment is not _MISSING:
            common["ts"] = moment
        place_error: str | None = None
        if self.mapping.district is not None:
            district = self._district.of(item)
            if district is not _MISSING:
                common["district"] = district
        else:
            lat, lon = _number(self._lat.of(item)), _number(self._lon.of(item))
            if isinstance(lat, float | int) and isinstance(lon, float | int):
                found = self._locate(float(lat), float(lon))
                if found is None:
                    place_error = f"position {lat},{lon} is in no district of the city"
                common["district"] = found
            else:
                place_error = f"no position: lat {lat!r}, lon {lon!r}"
                place_error = place_error.replace(repr(_MISSING), "missing")
        for kind_field, value_field, unit_field in self._values:
            record = dict(common)
            kind = kind_field.of(item)
            if kind is not _MISSING:
                record["kind"] = kind
            value = value_field.of(item)
            if value is not _MISSING and value is not None:
                record["value"] = _number(value)
            unit = unit_field.of(item)
            if unit_field.constant is None:
                unit = self._units.get(str(kind), _MISSING)
            if unit is not _MISSING:
                record["unit"] = unit
            payload = orjson.dumps(record, default=str)
            error = None
            if place_error:
                error = InvalidReading(payload, "unknown_district", place_error)
            elif "value" not in record:
                detail = (f"{value_field.name} {value_field.constant!r} found no value in "
                          f"item {index}")
                error = InvalidReading(payload, "missing_value", detail)
            yield MappedRecord(index, payload, error)
