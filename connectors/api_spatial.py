"""The spatial parameters of ``/api/v1``: ``near=LAT,LON&radius=500m``, ``within=DISTRICT``,
``bbox=S,W,N,E``, as :mod:`connectors.api_v1` declares and reads them.

    spatial = spatial_of(site, query)          # a models.spatial filter, or None
    NearQuery, RadiusQuery, WithinQuery, BboxQuery   # the routes' documented parameters

A bad value is a 400 naming the parameter and the valid forms (a ParameterError); the filter
is answered by :class:`connectors.storage.pages.Pages` (PostGIS, or plain SQL with the same
answers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

from fastapi import Query

from connectors.api_format import ParameterError
from models.spatial import (
    BBOX_FORM,
    POINT_FORM,
    RADIUS_FORMS,
    InvalidSpatialFilter,
    SpatialFilter,
    parse_filter,
)

if TYPE_CHECKING:
    from connectors.web_server import WebServer

__all__ = ["BboxQuery", "NearQuery", "RadiusQuery", "WithinQuery", "spatial_of"]

NearQuery = Annotated[str | None, Query(
    description=f"Only positions within `radius` of this point: {POINT_FORM} (WGS 84).")]
RadiusQuery = Annotated[str | None, Query(
    description=f"With `near`: the distance on the earth's sphere, {RADIUS_FORMS}.")]
WithinQuery = Annotated[str | None, Query(
    description="Only positions inside this district's polygon (its border included).")]
BboxQuery = Annotated[str | None, Query(
    description=f"Only positions in this box: {BBOX_FORM} (west > east crosses 180°).")]


def spatial_of(
    site: WebServer, query: Mapping[str, str], *, default_radius: str | None = None,
) -> SpatialFilter | None:
    """The spatial filter of ``query`` (None: none), checked against ``site``'s districts."""
    districts = {d.id: [tuple(p) for p in d.polygon] for d in site.settings.districts}
    try:
        return parse_filter(near=query.get("near"), radius=query.get("radius"),
                            within=query.get("within"), bbox=query.get("bbox"),
                            districts=districts, default_radius=default_radius, prefix="")
    except InvalidSpatialFilter as exc:
        valid = sorted(districts) if exc.option == "within" else None
        raise ParameterError(exc.option, str(exc), valid) from None
