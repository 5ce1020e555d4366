"""The dashboard's ``/open-data/`` routes: the DCAT catalogue and the dataset downloads.

    register(app, open_data, answer_json)      # in connectors.web_app.build_app

    GET /open-data/catalog.jsonld                          DCAT catalogue (public)
    GET /open-data/datasets/{id}.{csv|json|geojson}        a download (API key; ?from=&to=)
    GET /open-data/datasets/{id}                           the dataset's catalogue entry

The key comes as the ``X-API-Key`` header or the ``api_key`` query parameter. A download is
streamed (chunked) as :class:`connectors.open_data.OpenData` encodes it.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from connectors.open_data import OpenData
from connectors.web_signin import content_security_policy

__all__ = ["register"]

JsonAnswer = Callable[[int, Any, Request], Response]


def _base_url(request: Request) -> str:
    return str(request.base_url) + "open-data/"


def register(app: FastAPI, open_data: OpenData, answer_json: JsonAnswer) -> None:
    """Add the open-data routes to ``app`` (before its catch-all routes)."""

    @app.get("/open-data/catalog.jsonld", tags=["open data"])
    def catalog(request: Request) -> Response:
        """The DCAT catalogue of the open datasets (JSON-LD), public."""
        response = answer_json(HTTPStatus.OK, open_data.catalogue(_base_url(request)), request)
        response.headers["Content-Type"] = "application/ld+json; charset=utf-8"
        return response

    @app.get("/open-data/datasets/{dataset_id}.{fmt}", tags=["open data"])
    def download(
        request: Request,
        dataset_id: Annotated[str, Path(description="aqi-hourly, incidents-daily, ...")],
        fmt: Annotated[str, Path(description="csv, json or geojson")],
        start: Annotated[str | None, Query(alias="from", description="ISO 8601 time")] = None,
        end: Annotated[str | None, Query(alias="to", description="ISO 8601 time")] = None,
        api_key: Annotated[str | None, Query(description="or the X-API-Key header")] = None,
    ) -> Response:
        """A dataset's whole periods in [from, to), streamed; 401/403 key, 429 rate/quota."""
        answer = open_data.download(dataset_id, fmt, api_key=request.headers.get("X-API-Key")
                                    or api_key, start=start, end=end)
        if answer.body is None:
            response = answer_json(answer.status, answer.error, request)
            response.headers.update(answer.headers)
            return response
        headers = {**answer.headers, "Cache-Control": "no-cache",
                   "Content-Security-Policy": content_security_policy(None),
                   "X-Content-Type-Options": "nosniff"}
        return StreamingResponse(answer.body, status_code=int(answer.status), headers=headers,
                                 media_type=answer.headers["Content-Type"])

    @app.get("/open-data/datasets/{dataset_id}", tags=["open data"])
    def entry(request: Request, dataset_id: Annotated[str, Path()]) -> Response:
        """One dataset's catalogue entry (404 naming the datasets if unknown)."""
        document = open_data.catalogue(_base_url(request))
        for item in document["dcat:dataset"]:
            if item["dct:identifier"] == dataset_id:
                return answer_json(HTTPStatus.OK, {"@context": document["@context"], **item},
                                   request)
        valid = ", ".join(d["dct:identifier"] for d in document["dcat:dataset"])
        return answer_json(HTTPStatus.NOT_FOUND, {
            "error": "unknown_dataset",
            "detail": f"no dataset {dataset_id!r}; the datasets are: {valid}"}, request)
