"""Health scores: weighted sub-scores, renormalised over what is there, with their components."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.indicators.health import Coverage
from models.indicators.levels import Indicator, InvalidIndicatorInput
from models.indicators.noise import NoiseParams, noise_indicator
from models.indicators.score import city_score, district_score, score_level
from models.indicators.traffic import TrafficParams, travel_time_index

WEIGHTS = {"traffic": 0.4, "noise": 0.3, "water_level": 0.3}


def indicator(name: str, score: float) -> Indicator:
    return Indicator.of(name, 1.0, "u", "some", score)


def cover(share: float) -> Coverage:
    return Coverage(expected=10, reporting=10, usable=round(share * 10), share=share,
                    min_share=0.6)


def test_a_missing_sub_index_renormalises_the_weights() -> None:
    result = district_score("old-town", [indicator("traffic", 80.0), indicator("noise", 50.0)],
                            WEIGHTS)
    # (0.4 * 80 + 0.3 * 50) / 0.7 = 47 / 0.7
    assert result.score == pytest.approx(67.142857)
    assert result.level == "fair"
    assert result.confident is True
    parts = {c.name: c for c in result.components}
    assert parts["traffic"].weight == pytest.approx(4 / 7)
    assert parts["noise"].weight == pytest.approx(3 / 7)
    assert (parts["water_level"].status, parts["water_level"].weight) == ("missing", 0.0)
    assert [c.name for c in result.components] == ["traffic", "noise", "water_level"]


def test_a_sub_index_with_low_coverage_is_shown_but_does_not_count() -> None:
    result = district_score(
        "riverside",
        [indicator("traffic", 80.0), indicator("noise", 20.0), indicator("water_level", 90.0)],
        WEIGHTS,
        coverage={"noise": cover(0.3), "traffic": cover(0.9)},
    )
    # (0.4 * 80 + 0.3 * 90) / 0.7 = 59 / 0.7
    assert result.score == pytest.approx(84.285714)
    assert result.confident is False
    noise = next(c for c in result.components if c.name == "noise")
    assert (noise.status, noise.weight, noise.sub_score, noise.coverage) == (
        "low_coverage", 0.0, 20.0, 0.3)
    assert result.as_dict()["components"][1]["status"] == "low_coverage"


def test_no_usable_sub_index_means_no_score() -> None:
    result = district_score("harbour", [indicator("noise", 40.0)], WEIGHTS,
                            coverage={"noise": cover(0.1)})
    assert (result.score, result.level, result.confident) == (None, None, False)


def test_an_indicator_without_weight_is_shown_as_unweighted() -> None:
    result = district_score("harbour", [indicator("traffic", 60.0), indicator("crowd", 0.0)],
                            WEIGHTS)
    assert result.score == pytest.approx(60.0)
    crowd = next(c for c in result.components if c.name == "crowd")
    assert (crowd.status, crowd.weight, crowd.configured_weight) == ("unweighted", 0.0, 0.0)


def test_a_district_score_from_real_indicators_explains_itself() -> None:
    traffic = travel_time_index(40.0, TrafficParams(free_flow_kmh=60.0))       # 1.5: 50
    noise = noise_indicator(50.0, 14, NoiseParams.for_zone("1"))              # -5 dB: 87.5
    result = district_score("old-town", [traffic, noise], {"traffic": 0.5, "noise": 0.5})
    assert result.score == pytest.approx(68.75)
    first = result.as_dict()["components"][0]
    assert first == {"name": "traffic", "status": "used", "value": 1.5, "unit": "tti",
                     "level": "congested", "sub_score": 50.0, "weight": 0.5,
                     "configured_weight": 0.5, "coverage": None}


def test_bad_weights_and_duplicates_are_refused() -> None:
    with pytest.raises(InvalidIndicatorInput, match="weights.noise"):
        district_score("x", [], {"noise": -1.0})
    with pytest.raises(InvalidIndicatorInput, match="appears twice"):
        district_score("x", [indicator("noise", 1.0), indicator("noise", 2.0)], WEIGHTS)


@pytest.mark.parametrize(("score", "level"), [(100.0, "good"), (75.0, "good"), (74.9, "fair"),
                                              (50.0, "fair"), (25.0, "poor"),
                                              (24.9, "critical"), (0.0, "critical")])
def test_score_levels(score: float, level: str) -> None:
    assert score_level(score) == level


def scored(district: str, score: float | None, confident: bool = True):
    found = [indicator("traffic", score)] if score is not None else []
    result = district_score(district, found, {"traffic": 1.0})
    if not confident:
        result = district_score(district, found, {"traffic": 1.0, "noise": 1.0},
                                coverage={"noise": cover(0.0)})
    return result


def test_city_score_is_equal_weighted_by_default() -> None:
    city = city_score([scored("a", 80.0), scored("b", 40.0), scored("c", None)])
    assert city.score == pytest.approx(60.0)
    assert (city.weighting, city.level) == ("equal", "fair")
    assert [s.weight for s in city.components] == [0.5, 0.5, 0.0]
    assert city.confident is False          # district c has no score


def test_city_score_by_population() -> None:
    city = city_score([scored("a", 80.0), scored("b", 40.0)], population={"a": 1000, "b": 3000})
    assert city.score == pytest.approx(50.0)   # (80 * 1000 + 40 * 3000) / 4000
    assert city.weighting == "population"
    assert city.confident is True
    assert city.as_dict()["components"][1] == {"district": "b", "score": 40.0, "level": "poor",
                                               "confident": True, "weight": 0.75,
                                               "population": 3000.0}
    with pytest.raises(InvalidIndicatorInput, match="'b'"):
        city_score([scored("a", 80.0), scored("b", 40.0)], population={"a": 1000})


def test_a_low_confidence_district_makes_the_city_low_confidence() -> None:
    city = city_score([scored("a", 80.0), scored("b", 40.0, confident=False)])
    assert city.score == pytest.approx(60.0)
    assert city.confident is False


names = st.sampled_from(["traffic", "noise", "water_level", "power", "crowd"])


@given(
    st.dictionaries(names, st.floats(0.0, 100.0), max_size=5),
    st.dictionaries(names, st.floats(0.0, 10.0), max_size=5),
    st.dictionaries(names, st.floats(0.0, 1.0), max_size=5),
)
def test_the_score_is_none_or_within_0_and_100_and_used_weights_sum_to_1(
    sub_scores, weights, shares
) -> None:
    result = district_score(
        "d", [indicator(n, s) for n, s in sub_scores.items()], weights,
        coverage={n: cover(s) for n, s in shares.items()},
    )
    used = [c.weight for c in result.components if c.status == "used"]
    if result.score is None:
        assert not used
    else:
        assert 0.0 <= result.score <= 100.0
        assert sum(used) == pytest.approx(1.0)
    city = city_score([result])
    assert city.score is None or 0.0 <= city.score <= 100.0
