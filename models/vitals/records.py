"""What the vital signs publish: indicator records, and the facts that flow between steps.

An :class:`IndicatorRecord` is one indicator of one district (or of the whole city, district
``"city"``) for one window. On the ``vitals`` Kafka topic it sits next to the per-kind window
records and is told apart by ``"record": "indicator"``; its key is
``b"<district>/indicator:<indicator>"``::

    {"record": "indicator", "district": "industrial-east", "indicator": "aqi", "kind": "aqi",
     "value": 301, "unit": "AQI", "level": "Severely polluted", "score": 16.6,
     "window_start": "2026-11-26T05:00:10.000Z", "window_end": "2026-11-26T05:00:20.000Z",
     "inputs": 12, "coverage": 1.0, "confident": true,
     "components": [{"name": "pm25_24h", "concentration": 251.3, "iaqi": 301, ...}, ...],
     "details": {"standard": "hj633", "averaging": "standard", "level_number": 6, ...},
     "emitted_at": "2026-11-26T05:00:21.204Z"}

``value`` is always a number (an indicator that cannot be computed is not published);
``kind`` repeats ``indicator`` so that feed filters and consumers keyed by (district, kind) work
unchanged; ``score`` is the 0-100 sub-score (100 = healthy); ``inputs`` counts the readings of
the window that went in (for ``device_health``: the devices that reported); ``coverage`` is the
share of the source devices that are usable (None where no devices stand behind the number, as
for the health score); ``confident`` is False when coverage is below
``indicators.device_health.min_coverage`` (or, for the AQI, an averaging period holds too
little data), so a screen shows the number as unconfirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.timefmt import iso

__all__ = ["CITY", "IndicatorRecord", "Rejection", "indicator_key"]

CITY = "city"
"""The ``district`` of whole-city records."""


def indicator_key(district: str, indicator: str) -> bytes:
    """The Kafka key of an indicator record."""
    return f"{district}/indicator:{indicator}".encode()


@dataclass(frozen=True, slots=True)
class IndicatorRecord:
    """One indicator of a district (or the city) for one window; see the module docstring."""

    district: str
    indicator: str
    value: float
    unit: str
    level: str
    score: float | None
    window_start: float
    window_end: float
    inputs: int
    coverage: float | None
    confident: bool
    components: tuple[dict[str, Any], ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> bytes:
        """``b"<district>/indicator:<indicator>"``."""
        return indicator_key(self.district, self.indicator)

    def record(self, *, emitted_at: float) -> dict[str, Any]:
        """The ``vitals`` wire record (JSON-ready); times as ISO 8601 UTC."""
        return {
            "record": "indicator",
            "district": self.district,
            "indicator": self.indicator,
            "kind": self.indicator,
            "value": self.value,
            "unit": self.unit,
            "level": self.level,
            "score": None if self.score is None else round(self.score, 1),
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "inputs": self.inputs,
            "coverage": None if self.coverage is None else round(self.coverage, 4),
            "confident": self.confident,
            "components": list(self.components),
            "details": self.details,
            "emitted_at": iso(emitted_at),
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """A device's reading that was refused as out of range: the device spoke, but wrongly."""

    district: str
    kind: str
    device_id: str
    ts: float
