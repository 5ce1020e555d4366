"""River's own anomaly detectors for one series, behind the interface the flow drives.

config.yaml's ``anomaly.detector`` picks the detector of every series: ``cityheart`` (the
default, :class:`~models.anomaly.AnomalyDetector`) or one of :data:`RIVER_DETECTORS`, which
:class:`RiverDetector` wraps so the flow can use it the same way::

    detector = RiverDetector("river.HalfSpaceTrees", warmup=200)
    scored = detector.update(ts, value)     # a Scored, as AnomalyDetector.update gives
    scored.score, scored.low, scored.high   # River's score; a running mean +/- band_z sigmas

- ``river.HalfSpaceTrees``: ``preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)``
  (the trees expect features in [0, 1], so the scaler maps the value there); seeded, so a
  replay gives the same scores. Its state is about 1.3 MB in memory and 170 KB pickled per
  series once its window has filled (the default detector: 8 KB; the flow snapshots every
  series that learnt a point), and it scores low on NAB (about 11).
- ``river.GaussianScorer``: how far the value lies in the tails of a Gaussian fitted to the
  series so far (``2 |cdf(v) - 0.5|``). It saturates at 1.0 on a flat series (any change from a
  constant is "infinitely" unusual), so one flat sensor can alert at every small change.

Both see the value only (no time of day) and score 0 for the first ``warmup`` points. Their
scores mean what River says (not the calibrated surprise of the default detector), so the flow's
``threshold`` needs choosing again. They take no false-alarm feedback. The expected value and
band of an alert come from ``river.stats.EWMean`` and ``river.stats.EWVar`` of the series.
"""

from __future__ import annotations

import math
from typing import Any

from river import anomaly, preprocessing, stats

from models.anomaly.detector import InvalidDetectorInput, Scored
from models.anomaly.feedback import FalseAlarm, UnknownFalseAlarm

__all__ = ["RIVER_DETECTORS", "RiverDetector"]

#: The River detectors ``anomaly.detector`` may name.
RIVER_DETECTORS = ("river.HalfSpaceTrees", "river.GaussianScorer")
_BAND_FADING = 0.02   # the expected value and band follow about the last 50 points


def _model(name: str) -> Any:
    if name == "river.HalfSpaceTrees":
        return preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
    if name == "river.GaussianScorer":
        return anomaly.GaussianScorer()
    raise InvalidDetectorInput("detector", name, f"must be one of {list(RIVER_DETECTORS)}")


class RiverDetector:
    """One River anomaly detector scoring one series, with a running expected band."""

    __slots__ = ("_mean", "_model", "_n", "_var", "band_z", "name", "warmup")

    def __init__(self, name: str, warmup: int = 200, band_z: float = 3.0) -> None:
        self._model = _model(name)
        self.name = name
        self.warmup = warmup
        self.band_z = band_z
        self._n = 0
        self._mean = stats.EWMean(_BAND_FADING)
        self._var = stats.EWVar(_BAND_FADING)

    @property
    def seen(self) -> int:
        """How many points the detector has learnt from."""
        return self._n

    @property
    def ready(self) -> bool:
        """Whether the warm-up is over (before it, every score is 0)."""
        return self._n >= self.warmup

    @property
    def false_alarms(self) -> tuple[FalseAlarm, ...]:
        """None: River detectors take no feedback."""
        return ()

    def update(self, ts: float, value: float) -> Scored:
        """Score ``value`` with the River detector, then let it learn the value."""
        value = float(value)
        if not math.isfinite(value):
            raise InvalidDetectorInput("value", value, "must be a finite number")
        model = self._model
        if isinstance(model, anomaly.GaussianScorer):   # supervised: the value is the target
            score = model.score_one({}, value)
            model.learn_one({}, value)
        else:
            x = {"value": value}
            score = model.score_one(x)
            model.learn_one(x)
        expected = self._mean.get() if self._n else value
        half = self.band_z * math.sqrt(max(self._var.get(), 0.0)) if self._n else 0.0
        self._n += 1
        self._mean.update(value)
        self._var.update(value)
        ready = self._n >= self.warmup
        score = min(max(float(score), 0.0), 1.0) if ready else 0.0
        kind = self.name.removeprefix("river.") if score > 0.0 else None
        # surprise 0: River's scores are not nats
        return Scored(float(ts), value, score, 0.0, expected, expected - half, expected + half,
                      kind, ready)

    def mark_false_alarm(
        self, at: float, value: float, within_s: float | None = None
    ) -> FalseAlarm:
        """Refused: River detectors learn no false alarms (the flow logs and skips it)."""
        raise InvalidDetectorInput("detector", self.name, "takes no false-alarm feedback")

    def undo_false_alarm(self, alarm_id: int) -> FalseAlarm:
        """Refused: there is never a false alarm to undo."""
        raise UnknownFalseAlarm(alarm_id, ())
