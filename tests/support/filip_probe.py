"""Reads cityheart's NGSI-LD API with FIWARE's own client library, filip, and prints what it got.

Run with the python of the separate environment that has filip (its pins clash with cityheart's;
``scripts/setup.sh test`` makes ``.venv-filip``), never imported by the tests themselves::

    .venv-filip/bin/python tests/support/filip_probe.py http://127.0.0.1:8766 <token>

Prints one JSON document: each query's entity ids (and a few values), as filip parsed them into
its own entity models (``ContextLDEntity``, ``ContextLDEntityKeyValues``).
"""

from __future__ import annotations

import json
import sys

from filip.clients.ngsi_ld.cb import ContextBrokerLDClient
from filip.models.base import FiwareLDHeader

OLD_TOWN = "[[[11.55,48.13],[11.58,48.13],[11.58,48.15],[11.55,48.15],[11.55,48.13]]]"


def main(base: str, token: str) -> dict:
    """Every query the test checks, through filip."""
    client = ContextBrokerLDClient(url=base, fiware_header=FiwareLDHeader())
    client.headers.update({"Authorization": f"Bearer {token}"})

    def ids(**query: object) -> list[str]:
        return [entity.id for entity in client.get_entity_list(**query)]

    one = client.get_entity("urn:ngsi-ld:AirQualityObserved:harbour")
    devices = client.get_entity_list(entity_type="Device", options="keyValues")
    temporal = client.get(
        url=f"{base}/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:harbour",
        params={"lastN": "3", "attrs": "pm25"}, headers=client.headers)
    temporal.raise_for_status()
    return {
        "entity": {"id": one.id, "type": one.type,
                   "pm25": one.model_dump()["pm25"]["value"],
                   "location": one.model_dump()["location"]["value"]["coordinates"]},
        "by_type": ids(entity_type="AirQualityObserved"),
        "q": ids(entity_type="AirQualityObserved", q="pm25>30;areaServed==\"harbour\""),
        "near": ids(entity_type="NoiseLevelObserved", georel="near;maxDistance==1000",
                    geometry="Point", coordinates="[11.655,48.14]"),
        "within": ids(entity_type="AirQualityObserved", georel="within", geometry="Polygon",
                      coordinates=OLD_TOWN),
        "devices": sorted((d.id, d.model_dump().get("areaServed")) for d in devices),
        "temporal": [i["value"] for i in temporal.json()["pm25"]],
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
