"""The detector as a River anomaly detector: River's own estimator checks, and River's usage.

River's ``check_estimator`` draws its anomaly data from a downloaded credit-card set with no
time in it, so the checks run one by one here on a series of ``{"ts": t, "value": v}``
readings (what the detector reads), with a few spikes for the ranking check.
"""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime

import pytest
from river import base, compose, metrics
from river.checks import common

from models.anomaly import AnomalyDetector, DetectorParams

STEP = 300.0
T0 = 1_795_651_200.0
SPIKES = frozenset(range(320, 600, 37))


def stream(n: int = 600, seed: int = 3) -> list[tuple[dict[str, float], bool]]:
    """A daily cycle with noise, as River datasets give it: (x, is it a spike)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = T0 + i * STEP
        value = 20.0 + 5.0 * math.sin(2 * math.pi * (ts % 86400) / 86400) + rnd.gauss(0.0, 0.5)
        if i in SPIKES:
            value += 8.0
        out.append(({"ts": ts, "value": value}, i in SPIKES))
    return out


GENERAL = [
    common.check_repr,
    common.check_str,
    common.check_tags,
    common.check_clone_same_class,
    common.check_clone_is_idempotent,
    common.check_init_has_default_params_for_tests,
    common.check_init_default_params_are_not_mutable,
    common.check_doc,
    common.check_clone_changes_memory_addresses,
    common.check_mutate_can_be_idempotent,
    common.check_pickling_supports_roundtrip,
    common.check_repr_roundtrips_clone,
    common.check_clone_with_new_params_applies,
    common.check_get_params_matches_signature,
]
ON_DATA = [
    common.check_learn_one,
    common.check_pickling,
    common.check_shuffle_features_no_impact,
    common.check_emerging_features,
    common.check_disappearing_features,
    common.check_radically_disappearing_features,
    common.check_predict_one_pure,
    common.check_predict_one_before_any_learn,
    common.check_no_state_aliasing_with_input,
    common.check_clone_is_independent,
    common.check_bounded_memory_growth,
    common.check_seeding_is_idempotent,
]


def test_it_is_a_river_anomaly_detector() -> None:
    assert isinstance(AnomalyDetector(), base.AnomalyDetector)


@pytest.mark.parametrize("check", GENERAL, ids=lambda check: check.__name__)
def test_river_estimator_checks(check) -> None:
    check(AnomalyDetector().clone())


@pytest.mark.parametrize("check", ON_DATA, ids=lambda check: check.__name__)
def test_river_estimator_checks_on_a_series(check) -> None:
    check(AnomalyDetector().clone(), dataset=stream())


def test_score_one_then_learn_one_gives_the_scores_of_update() -> None:
    river_way, flow_way = AnomalyDetector(), AnomalyDetector()
    for x, _ in stream():
        assert river_way.score_one(x) == river_way.score_one(x)   # asking twice changes nothing
        score = river_way.score_one(x)
        river_way.learn_one(x)
        assert score == flow_way.update(x["ts"], x["value"]).score
    assert pickle.dumps(river_way) == pickle.dumps(flow_way)


def test_score_one_learns_nothing() -> None:
    detector = AnomalyDetector()
    for x, _ in stream()[:300]:
        detector.learn_one(x)
    before = pickle.dumps(detector)
    for x, _ in stream()[300:]:
        detector.score_one(x)
    assert pickle.dumps(detector) == before


def test_learn_one_alone_learns_like_update() -> None:
    learnt, updated = AnomalyDetector(), AnomalyDetector()
    for x, _ in stream():
        learnt.learn_one(x)
        updated.update(x["ts"], x["value"])
    assert pickle.dumps(learnt) == pickle.dumps(updated)


def test_spikes_rank_above_normal_points_prequentially() -> None:
    # River's check_roc_auc, on a series: score first, then learn
    detector = AnomalyDetector(DetectorParams(warmup=100))
    auc = metrics.ROCAUC()
    for x, spike in stream():
        auc.update(spike, detector.score_one(x))
        detector.learn_one(x)
    assert auc.get() > 0.8    # River asks for 0.5


def test_times_may_be_datetimes_and_other_features_are_ignored() -> None:
    as_seconds, as_datetimes = AnomalyDetector(), AnomalyDetector()
    for x, _ in stream():
        moment = datetime.fromtimestamp(x["ts"], tz=UTC).replace(tzinfo=None)   # naive: UTC
        y = {"ts": moment, "value": x["value"], "sensor": "wl-1"}
        assert as_datetimes.score_one(y) == as_seconds.score_one(x)
        as_datetimes.learn_one(y)
        as_seconds.learn_one(x)


def test_it_runs_in_a_river_pipeline() -> None:
    # a stream whose fields have other names is renamed in front of the detector
    model = compose.Renamer({"time": "ts", "level": "value"}) | AnomalyDetector()
    direct = AnomalyDetector()
    for x, _ in stream():
        renamed = {"time": x["ts"], "level": x["value"]}
        assert model.score_one(renamed) == direct.score_one(x)
        model.learn_one(renamed)
        direct.learn_one(x)
