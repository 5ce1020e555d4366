"""What each registered device is doing: the rows of ``cityheart devices list``, no I/O.

    rows = inventory(registry, last_seen={"pm25-mission-001": 1796660000.0},
                     health=[record["components"] for record in latest_device_health])
    missing_by_district(rows)          # {"mission": 2, ...}: registered, never heard from

A device's ``state`` is the newest device-health verdict of the flow (:mod:`models.indicators.
health`: ``silent``, ``stuck``, ``out_of_range``, its readings mostly rejected), ``ok`` when it
reported and is none of these, ``missing`` when it never reported (not in any health record and
no stored reading) and ``revoked`` when the registry revoked it. Without history
(``last_seen`` and ``health`` None) an active device is just ``active``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from models.devices import Device, DeviceRegistry

__all__ = ["DEVICE_LIST_STATES", "DeviceRow", "inventory", "missing_by_district"]

DEVICE_LIST_STATES = ("ok", "silent", "stuck", "out_of_range", "missing", "revoked", "active")
_VERDICTS = ("silent", "stuck", "out_of_range")  # listed in device-health components


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One registered device, with what history says about it."""

    device: Device
    state: str
    last_seen: float | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready row (``installed`` as an ISO date)."""
        d = self.device
        return {
            "id": d.id, "district": d.district, "kind": d.kind, "state": self.state,
            "last_seen": self.last_seen, "lat": d.lat, "lon": d.lon, "owner": d.owner,
            "model": d.model, "installed": d.installed.isoformat() if d.installed else None,
            "added_at": d.added_at, "revoked_at": d.revoked_at,
        }


def inventory(
    registry: DeviceRegistry,
    *,
    last_seen: Mapping[str, float] | None,
    health: Iterable[Iterable[Mapping[str, Any]]] | None,
) -> list[DeviceRow]:
    """Each registered device's row; ``health`` holds the components of the newest
    device-health record of each district (one list per district)."""
    if last_seen is None or health is None:
        return [DeviceRow(d, "active" if d.active else "revoked", None)
                for d in registry.devices]
    verdicts: dict[str, str] = {}
    reported: set[str] = set()
    for components in health:
        for component in components:
            for state in _VERDICTS:
                for device_id in component.get(state) or ():
                    verdicts.setdefault(str(device_id), state)
            reported.update(str(d) for d in component.get("devices") or ())
    rows = []
    for device in registry.devices:
        seen = last_seen.get(device.id)
        if not device.active:
            state = "revoked"
        elif device.id in verdicts:
            state = verdicts[device.id]
        elif seen is None and device.id not in reported:
            state = "missing"
        else:
            state = "ok"
        rows.append(DeviceRow(device, state, seen))
    return rows


def missing_by_district(rows: Iterable[DeviceRow]) -> dict[str, int]:
    """How many devices of each district are missing (districts with none left out)."""
    counts: dict[str, int] = {}
    for row in rows:
        if row.state == "missing":
            counts[row.device.district] = counts.get(row.device.district, 0) + 1
    return counts
