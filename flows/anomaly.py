"""One district's anomaly detectors, kept in the ``district_vitals`` step's Bytewax state.

``district_vitals`` (:class:`flows.steps.DistrictLogic`) hands every closed window to
:meth:`Detectors.on_window`, which folds it into the series' open blocks
(:meth:`alerts.anomaly_rules.AnomalyRule.points`: one point per ``anomaly.interval_s`` for the
district and kind, and with ``anomaly.per_device`` for each device) and scores each complete
point with that series' own :class:`~models.anomaly.AnomalyDetector`::

    detectors = Detectors()                            # in the district's state
    outputs = detectors.on_window(rule, window, now)   # [("alerts", KafkaRecord), ...]

The detectors live in the district's state, so they share its key, its worker and its recovery
snapshot, and the flow keeps its step ids. Bytewax snapshots a touched key at every epoch
(with or without recovery), and ``copy.deepcopy`` of a detector costs about 270 µs; so the
snapshot here keeps each detector pickled (about 30-50 µs, 6-8 KB), re-pickles only the ones
that learnt a point since the last snapshot, and between points holds a detector pickled,
unpickling it (about 30 µs) when its series' next point comes.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

import orjson

from alerts.anomaly_rules import AnomalyRule, Block
from connectors.kafka import KafkaRecord
from models.anomaly import AnomalyDetector
from models.windows import Window

__all__ = ["Detectors"]

log = logging.getLogger(__name__)

Output = tuple[str, Any]


class Detectors:
    """The anomaly detectors of one district by series (``"<district>/<kind>[/<device>]"``)."""

    __slots__ = ("_live", "_pending", "_pickled")

    def __init__(self) -> None:
        self._live: dict[str, AnomalyDetector] = {}   # detectors in use
        self._pickled: dict[str, bytes] = {}          # detectors as of their last snapshot
        self._pending: dict[str, Block] = {}          # open blocks (see AnomalyRule.points)

    def __len__(self) -> int:
        return len(self._live.keys() | self._pickled.keys())

    def get(self, series: str) -> AnomalyDetector | None:
        """The detector of ``series``, if it has seen a point."""
        detector = self._live.get(series)
        if detector is None and series in self._pickled:
            detector = self._live[series] = pickle.loads(self._pickled[series])
        return detector

    def on_window(self, rule: AnomalyRule, window: Window, now: float) -> list[Output]:
        """Fold the closed ``window`` in; ``("alerts", record)`` for each alert it completes."""
        out: list[Output] = []
        for observation in rule.points(self._pending, window):
            series = observation.series
            detector = self.get(series)
            if detector is None:
                detector = self._live[series] = rule.new_detector()
            self._pickled.pop(series, None)  # it learns now: its pickle is stale
            alert = rule.on_observation(detector, observation)
            if alert is not None:
                log.info("anomaly alert %s: %s", alert.id, alert.message)
                record = orjson.dumps(alert.record(emitted_at=now))
                out.append(("alerts", KafkaRecord(alert.id.encode(), record)))
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> Detectors:
        snapshot = Detectors()
        snapshot._pickled = self._freeze()
        snapshot._pending = dict(self._pending)  # blocks are tuples: immutable
        return snapshot

    def __getstate__(self) -> tuple[dict[str, bytes], dict[str, Block]]:
        return self._freeze(), dict(self._pending)

    def __setstate__(self, state: tuple[dict[str, bytes], dict[str, Block]]) -> None:
        self._live = {}
        self._pickled, self._pending = state

    def _freeze(self) -> dict[str, bytes]:
        """Every detector pickled (bytes are immutable), pickling only the changed ones.

        Detectors that learnt nothing since the previous snapshot are dropped afterwards: a
        series learns one point per block (5 minutes) while snapshots come every epoch
        (seconds), so an idle detector is held pickled (~7 KB instead of ~23 KB) and
        unpickled when its next point comes.
        """
        pickled = self._pickled
        learning = {}
        for series, detector in self._live.items():
            if series not in pickled:
                pickled[series] = pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL)
                learning[series] = detector
        self._live = learning  # idle since the last snapshot: held pickled only
        return dict(pickled)
