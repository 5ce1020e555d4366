"""``cityheart bench --api-requests N``: how fast the read API answers while the city runs.

With the city running (``cityheart up``), it asks the dashboard's server, over one kept-alive
connection (loopback only), N times each of the three questions issue 23 names, and prints the
latency of each (p50 / p99 / max, ms, from sending the request to the last byte)::

    entity query   GET /ngsi-ld/v1/entities?type=AirQualityObserved&limit=100
    geo-query      the same, near a point (georel=near;maxDistance==2000)
    day of hourly  GET /api/v1/history/indicators?indicator=aqi&district=D&resolution=hour&from=24h

``token`` (or ``$CITYHEART_TOKEN``) for a server with ``auth.required``.
"""

from __future__ import annotations

import http.client
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TextIO
from urllib.parse import quote, urlsplit

import orjson

__all__ = ["ApiLatency", "queries", "run_api_bench"]


@dataclass
class ApiLatency:
    """One question's latencies over its requests."""

    query: str
    path: str
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    status: int
    bytes: int


def queries(district: str, lon: float, lat: float) -> list[tuple[str, str]]:
    """The three questions, about ``district`` and the point (``lon``, ``lat``)."""
    near = (f"/ngsi-ld/v1/entities?type=AirQualityObserved&limit=100"
            f"&georel={quote('near;maxDistance==2000')}&geometry=Point"
            f"&coordinates={quote(f'[{lon},{lat}]')}")
    return [
        ("entity query", "/ngsi-ld/v1/entities?type=AirQualityObserved&limit=100"),
        ("geo-query", near),
        ("day of hourly history", f"/api/v1/history/indicators?indicator=aqi&district="
                                  f"{quote(district)}&resolution=hour&from=24h"),
    ]


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def run_api_bench(url: str, *, district: str, point: tuple[float, float], requests: int = 200,
                  token: str | None = None, as_json: bool = False,
                  out: TextIO = sys.stdout) -> list[ApiLatency]:
    """Ask each question ``requests`` times; print and return the latencies."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        msg = f"the API bench only runs on loopback; {url!r} is not"
        raise ValueError(msg)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    results = []
    try:
        for name, path in queries(district, *point):
            times: list[float] = []
            status, size = 0, 0
            for _ in range(requests):
                start = time.perf_counter()
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                times.append((time.perf_counter() - start) * 1000)
                status, size = response.status, len(body)
            result = ApiLatency(name, path, requests, round(_percentile(times, 0.5), 1),
                                round(_percentile(times, 0.99), 1), round(max(times), 1),
                                status, size)
            results.append(result)
            if as_json:
                out.write(orjson.dumps(asdict(result)).decode() + "\n")
            else:
                out.write(f"{name}: p50 {result.p50_ms} ms, p99 {result.p99_ms} ms, max "
                          f"{result.max_ms} ms over {requests} requests (HTTP {status}, "
                          f"{size} bytes)\n")
    finally:
        connection.close()
    return results
