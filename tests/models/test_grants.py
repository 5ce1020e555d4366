"""Grants (issue 23): a consumer sees what its grant allows, down to one field or one yes/no."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from models.grants import Grant, Question

VITAL = {"type": "vital", "seq": 7, "time": "t", "district": "harbour", "kind": "water_level",
         "mean": 2.1, "min": 1.9, "max": 2.4, "devices": ["wl-1", "wl-2"], "window_end": "w"}
INDICATOR = {"type": "indicator", "seq": 8, "time": "t", "district": "harbour",
             "indicator": "aqi", "kind": "aqi", "value": 152.0, "level": "unhealthy",
             "window_end": "2026-12-07T17:00:10Z", "components": [{"name": "pm25",
                                                                    "value": 60.1}]}
ALERT = {"type": "alert", "seq": 9, "district": "harbour", "kind": "water_level",
         "device": "wl-1", "value": 3.0}
INCIDENT = {"type": "incident", "seq": 10, "district": "riverside", "kind": "water_level",
            "districts": ["riverside", "harbour"], "title": "Burst main at 12 Elm St",
            "severity": "critical", "comment": "caller: Jane"}
AIR = Question("air-above-warning", "aqi", 101.0)


def test_a_raw_grant_cuts_to_its_districts_kinds_and_fields() -> None:
    grant = Grant("water-partner", channels=frozenset({"vitals", "alerts"}), detail="raw",
                  districts=frozenset({"harbour"}), kinds=frozenset({"water_level"}),
                  fields=frozenset({"district", "kind", "mean", "window_end"}))
    assert grant.view(VITAL) == {"type": "vital", "seq": 7, "time": "t", "district": "harbour",
                                 "kind": "water_level", "mean": 2.1, "window_end": "w"}
    assert grant.view({**VITAL, "district": "old-town"}) is None
    assert grant.view({**VITAL, "kind": "pm25"}) is None
    assert grant.view(ALERT) == {"type": "alert", "seq": 9, "district": "harbour",
                                 "kind": "water_level"}  # device and value are not granted
    assert grant.view(INCIDENT) is None  # the incidents channel is not granted
    assert grant.view({"type": "heartbeat", "time": "t"}) == {"type": "heartbeat", "time": "t"}


def test_an_aggregated_grant_names_no_device_place_or_person_and_gets_no_raw_alerts() -> None:
    grant = Grant("press", channels=frozenset({"vitals", "alerts", "incidents"}),
                  detail="aggregated")
    assert "devices" not in grant.view(VITAL)
    assert grant.view(ALERT) is None and not grant.may_subscribe("alerts")
    shown = grant.view(INCIDENT)
    assert shown is not None and shown["severity"] == "critical"
    assert "comment" not in shown and "title" not in shown
    # an incident touching a granted district is shown to a grant of that district
    harbour = Grant("harbour", channels=frozenset({"incidents"}), detail="aggregated",
                    districts=frozenset({"harbour"}))
    assert harbour.view(INCIDENT) is not None


def test_a_derived_only_grant_answers_yes_or_no_and_never_gives_the_value() -> None:
    grant = Grant("resident-app", channels=frozenset({"vitals"}), detail="derived",
                  questions=(AIR,))
    assert grant.view(INDICATOR) == {"type": "answer", "seq": 8, "time": "t",
                                     "district": "harbour", "question": "air-above-warning",
                                     "answer": True, "as_of": "2026-12-07T17:00:10Z"}
    assert grant.view({**INDICATOR, "value": 40.0})["answer"] is False
    assert grant.view(VITAL) is None and grant.view(ALERT) is None
    assert grant.view({**INDICATOR, "indicator": "noise", "kind": "noise"}) is None
    assert grant.may_subscribe("vitals") and not grant.may_subscribe("incidents")


@given(st.dictionaries(st.sampled_from(["value", "level", "mean", "components", "score",
                                         "inputs", "district", "window_end", "coverage"]),
                       st.one_of(st.floats(allow_nan=False), st.text(max_size=5),
                                 st.integers())),
       st.sampled_from(["indicator", "vital", "alert", "incident", "kpi", "answer"]))
def test_no_message_a_derived_grant_lets_through_holds_a_value(extra: dict[str, Any],
                                                               kind: str) -> None:
    grant = Grant("resident-app", channels=frozenset({"vitals", "alerts", "incidents",
                                                      "kpis"}), detail="derived",
                  questions=(AIR,))
    shown = grant.view({**extra, "type": kind, "indicator": "aqi", "seq": 1})
    if shown is not None:
        assert set(shown) == {"type", "seq", "time", "district", "question", "answer", "as_of"}
        assert isinstance(shown["answer"], bool)
