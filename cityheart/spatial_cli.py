"""The spatial options of the commands that list readings, alerts, incidents and devices.

    cityheart history alerts --near 48.14,11.565 --radius 500m --since 1d
    cityheart history readings --kind pm25 --within old-town --since 1h
    cityheart incidents --bbox 48.13,11.55,48.15,11.61
    cityheart devices list --near 48.14,11.565 --radius 2km

One of ``--near LAT,LON`` (with ``--radius``: ``500m``, ``2km`` or metres), ``--within
DISTRICT`` or ``--bbox S,W,N,E`` (:mod:`models.spatial`); a bad value exits 2 naming the
option, the value and the valid forms.
"""

from __future__ import annotations

from typing import Annotated

import typer

from models.spatial import BBOX_FORM, POINT_FORM, RADIUS_FORMS, SpatialFilter, parse_filter
from settings.config import Settings

__all__ = ["BboxOption", "NearOption", "RadiusOption", "SpatialOptions", "WithinOption",
           "spatial_filter"]

NearOption = Annotated[
    str | None, typer.Option(metavar="LAT,LON", help=f"Only within --radius of {POINT_FORM}.")
]
RadiusOption = Annotated[
    str | None, typer.Option(help=f"With --near: how far, {RADIUS_FORMS}.")
]
WithinOption = Annotated[
    str | None, typer.Option(metavar="DISTRICT", help="Only inside this district's polygon.")
]
BboxOption = Annotated[
    str | None, typer.Option(metavar="S,W,N,E", help=f"Only in this box: {BBOX_FORM}.")
]

SpatialOptions = tuple[str | None, str | None, str | None, str | None]
"""(near, radius, within, bbox) as given."""


def spatial_filter(settings: Settings, options: SpatialOptions) -> SpatialFilter | None:
    """The filter the options give (None: none); InvalidSpatialFilter (a ValueError) if bad."""
    near, radius, within, bbox = options
    districts = {d.id: [tuple(p) for p in d.polygon] for d in settings.districts}
    return parse_filter(near=near, radius=radius, within=within, bbox=bbox, districts=districts)
