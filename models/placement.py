"""Which district a reading belongs to, from where it was taken: no I/O.

    placement = Placement(Locator(settings.geography().districts),
                          positions={"pm25-mission-001": (37.7599, -122.4148)})
    placement.place("pm25-mission-001", None, None, given="mission")
    # Placed(district='mission', given='mission', position=(37.7599, -122.4148))

A reading's position is its own (``lat``/``lon`` in the payload: buses, drones, handhelds),
else its device's registered one (:class:`models.devices.Device`); the district is the one
holding that position (:class:`models.geography.Locator`, the same lookup as
``cityheart locate``). A position outside every district places the reading nowhere
(``district`` None: the parser refuses it as ``outside_city``). Without a position the district
is the ``given`` one (the MQTT topic's, or the payload's), as before geography.
:attr:`Placed.mismatch` says the given district disagrees with the located one; the caller
counts it per device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.geography import Locator

__all__ = ["Placed", "Placement"]


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a reading was placed: its district (None: outside the city), the district it was
    given (None: none) and the position it was located by (None: it had none)."""

    district: str | None
    given: str | None
    position: tuple[float, float] | None

    @property
    def mismatch(self) -> bool:
        """Whether a given district disagrees with the district of the position."""
        return (
            self.position is not None and self.given is not None
            and self.district is not None and self.given != self.district
        )


class Placement:
    """Places readings by position: the reading's own, else its registered device's.

    The district of each device's last position is remembered (one entry per device), so a
    device that stays put costs a dictionary look-up, not a spatial query.
    """

    def __init__(
        self, locator: Locator, positions: Mapping[str, tuple[float, float]] | None = None
    ) -> None:
        self._locator = locator
        self._positions = dict(positions or {})
        ids = list(self._positions)
        found = locator.locate_many([self._positions[i][0] for i in ids],
                                    [self._positions[i][1] for i in ids])
        self._last: dict[str, tuple[tuple[float, float], str | None]] = {
            device_id: (self._positions[device_id], district)
            for device_id, district in zip(ids, found, strict=True)
        }

    def position_of(self, device_id: str) -> tuple[float, float] | None:
        """The registered (lat, lon) of ``device_id``, or None."""
        return self._positions.get(device_id)

    _MAX_REMEMBERED = 100_000  # devices whose last position is kept (then forgotten, refilled)

    def place(
        self, device_id: str, lat: float | None, lon: float | None, *, given: str | None
    ) -> Placed:
        """Place one reading of ``device_id`` taken at (``lat``, ``lon``) (None: unknown)."""
        position = (lat, lon) if lat is not None and lon is not None else None
        position = position or self._positions.get(device_id)
        if position is None:
            return Placed(given, given, None)
        last = self._last.get(device_id)
        if last is not None and last[0] == position:
            return Placed(last[1], given, position)
        district = self._locator.locate(*position)
        if len(self._last) >= self._MAX_REMEMBERED:
            self._last.clear()
        self._last[device_id] = (position, district)
        return Placed(district, given, position)

    def place_many(
        self, device_ids: Sequence[str], lats: Sequence[float | None] | None,
        lons: Sequence[float | None] | None,
    ) -> tuple[list[tuple[float, float] | None], list[str | None]]:
        """Place many readings at once (``lats``/``lons`` None: none has a position of its
        own): each one's position, as :meth:`place` finds it (None: none), and the district
        holding that position (None: outside the city, or no position). Positions a device was
        last seen at cost a look-up; the others are located in one vectorised query."""
        registered, last = self._positions, self._last
        positions: list[tuple[float, float] | None] = []
        districts: list[str | None] = []
        misses: list[tuple[int, tuple[float, float]]] = []
        own = zip(lats, lons, strict=True) if lats is not None and lons is not None else (
            repeat((None, None)))
        for i, (device_id, (lat, lon)) in enumerate(zip(device_ids, own, strict=False)):
            position = (lat, lon) if lat is not None and lon is not None else (
                registered.get(device_id))
            positions.append(position)
            districts.append(None)
            if position is None:
                continue
            seen = last.get(device_id)
            if seen is not None and seen[0] == position:
                districts[i] = seen[1]
            else:
                misses.append((i, position))
        if misses:
            found = self._locator.locate_many([p[0] for _, p in misses], [p[1] for _, p in misses])
            for (i, position), district in zip(misses, found, strict=True):
                districts[i] = district
                if len(last) >= self._MAX_REMEMBERED:
                    last.clear()
                last[device_ids[i]] = (position, district)
        return positions, districts
