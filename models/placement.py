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

from collections.abc import Mapping
from dataclasses import dataclass
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
