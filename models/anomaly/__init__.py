"""Streaming anomaly detection for single series: one small, picklable detector per sensor.

Each detector takes one stream of (time, value), scores every point as it arrives (score, then
learn; no look-ahead) and says what it expected::

    from models.anomaly import AnomalyDetector

    detector = AnomalyDetector()
    for ts, value in readings:                     # epoch seconds, floats, in time order
        result = detector.update(ts, value)
        result.score          # [0, 1): one threshold means the same for every sensor kind
        result.low, result.high, result.kind       # "expected 42-55, got 91 (spike)"

    detector.mark_false_alarm(at=ts, value=value)  # operator feedback, undoable

It is also a River anomaly detector (``river.base.AnomalyDetector``): ``score_one(x)`` and
``learn_one(x)`` with ``x = {"ts": epoch_seconds_or_datetime, "value": v}`` give the same scores.

- :mod:`models.anomaly.detector` - :class:`AnomalyDetector`, :class:`DetectorParams`,
  :class:`Scored`
- :mod:`models.anomaly.baselines` - robust level, daily/weekly slot profiles, predictor hedge
- :mod:`models.anomaly.density` - decaying mixture densities of values and (value, time of day)
- :mod:`models.anomaly.calibration` - extreme-value calibration of evidence into nats
- :mod:`models.anomaly.feedback` - false alarms that mute similar deviations, reversibly
- :mod:`models.anomaly.alarms` - quiet spells and daily habits: which alerts are news
- :mod:`models.anomaly.river_detectors` - River's own detectors, selectable by config

``python -m lab.score_csv IN.csv OUT.csv`` runs the same detector over a CSV file.
"""

from __future__ import annotations

from models.anomaly.detector import (
    KINDS,
    AnomalyDetector,
    DetectorParams,
    InvalidDetectorInput,
    Scored,
)
from models.anomaly.feedback import FalseAlarm, UnknownFalseAlarm
from models.anomaly.river_detectors import RIVER_DETECTORS, RiverDetector

__all__ = [
    "KINDS",
    "RIVER_DETECTORS",
    "AnomalyDetector",
    "DetectorParams",
    "FalseAlarm",
    "InvalidDetectorInput",
    "RiverDetector",
    "Scored",
    "UnknownFalseAlarm",
]
