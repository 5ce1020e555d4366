"""``cityheart bench --api-requests``: it asks the three questions issue 23 times, on loopback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from lab.bench_api import queries, run_api_bench


def test_the_questions_are_an_entity_query_a_geo_query_and_a_day_of_hourly_history() -> None:
    asked = dict(queries("mission", -122.4194, 37.7599))
    near = parse_qs(urlsplit(asked["geo-query"]).query)
    assert near["georel"] == ["near;maxDistance==2000"]
    assert near["coordinates"] == ["[-122.4194,37.7599]"]
    day = parse_qs(urlsplit(asked["day of hourly history"]).query)
    assert (day["district"], day["resolution"], day["from"]) == (["mission"], ["hour"], ["24h"])
    assert urlsplit(asked["entity query"]).path == "/ngsi-ld/v1/entities"


def test_the_api_bench_refuses_a_server_off_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run_api_bench("http://192.0.2.1:8766/", district="mission", point=(0.0, 0.0))
