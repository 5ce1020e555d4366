"""The dead-letter topic's record layout, one for every writer (the bridge, HTTP ingest, the flow).

A dead letter is a refused payload (its original bytes, maybe cut to the payload limit) with
why and where in its headers::

    headers = dead_letter_headers("out_of_range", detail, mqtt_topic=b"city/harbour/pm25/pm-1",
                                  received_at=now, source="bridge")

``reason`` (a :data:`models.readings.REASONS` code), ``detail`` (what exactly was wrong),
``mqtt_topic`` (where the device published it; empty when unknown), ``received_at`` (ISO 8601
UTC) and ``source`` (``bridge``, ``flow`` or ``ingest``: who refused it; the HTTP ingest's
dead letters are keyed ``ingest/<source>``, with an empty ``mqtt_topic``). A record refused out
of a SenML pack (a gateway's, or one posted to the ingest) also has ``pack_index`` (its index in
the pack, from 0; the payload is then the record, resolved) and its ``reason`` may be one of
:data:`models.senml.SENML_REASONS`; a pack refused whole has none.
"""

from __future__ import annotations

from models.timefmt import iso

__all__ = ["dead_letter_headers"]


def dead_letter_headers(
    reason: str, detail: str, *, mqtt_topic: bytes, received_at: float, source: str,
    pack_index: int | None = None,
) -> list[tuple[str, bytes]]:
    """The headers of a dead letter (see the module doc), in their order on the wire."""
    headers = [
        ("reason", reason.encode()),
        ("detail", detail.encode()),
        ("mqtt_topic", mqtt_topic),
        ("received_at", iso(received_at).encode()),
        ("source", source.encode()),
    ]
    if pack_index is not None:
        headers.append(("pack_index", str(pack_index).encode()))
    return headers
