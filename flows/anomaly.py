"""One district's anomaly detectors, kept in the ``district_vitals`` step's Bytewax state.

``district_vitals`` (:class:`flows.steps.DistrictLogic`) hands every closed window to
:meth:`Detectors.on_window`, which folds it into the series' open blocks
(:meth:`alerts.anomaly_rules.AnomalyRule.points`: one point per ``anomaly.interval_s`` for the
district and kind, and with ``anomaly.per_device`` for each device) and scores each complete
point with that series' own :class:`~models.anomaly.AnomalyDetector`::

    detectors = Detectors()                            # in the district's state
    alerts = detectors.on_window(rule, window)         # [Alert, ...]

The detectors live in the district's state, so they share its key, its worker and its recovery
snapshot, and the flow keeps its step ids.

People teach them (:meth:`Detectors.on_feedback`, fed from the incidents topic by
:mod:`alerts.feedback`): when an anomaly incident is resolved as a false alarm, each of its
series marks the alerts it fired in the incident's span as normal
(:meth:`~models.anomaly.AnomalyDetector.mark_false_alarm`: similar deviations stop alerting,
bigger ones still do); reopening the incident undoes exactly those marks. The last
:data:`FIRED_MEMORY` alerts of each series are remembered for this.

Bytewax snapshots a touched key at every epoch (with or without recovery), and
``copy.deepcopy`` of a detector costs about 270 µs; so the snapshot here keeps each detector
pickled (about 30-50 µs, 6-8 KB), re-pickles only the ones that learnt a point since the last
snapshot, and between points holds a detector pickled,
unpickling it (about 30 µs) when its series' next point comes.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from alerts.anomaly_rules import AnomalyRule, Block
from alerts.feedback import DetectorFeedback
from alerts.rules import Alert
from models.anomaly import AnomalyDetector, RiverDetector, UnknownFalseAlarm
from models.errors import CityheartError
from models.windows import Window

__all__ = ["FIRED_MEMORY", "MARK_MEMORY", "Detectors"]

log = logging.getLogger(__name__)

FIRED_MEMORY = 16
"""Alerts remembered per series (alert time, detector time, value) for people's feedback."""

MARK_MEMORY = 1000
"""False-alarm incidents whose marks a district remembers (to undo them on a reopen)."""

Fired = tuple[float, float, float]


class Detectors:
    """The anomaly detectors of one district by series (``"<district>/<kind>[/<device>]"``)."""

    __slots__ = ("_fired", "_live", "_marks", "_pending", "_pickled")

    def __init__(self) -> None:
        self._live: dict[str, AnomalyDetector | RiverDetector] = {}   # detectors in use
        self._pickled: dict[str, bytes] = {}          # detectors as of their last snapshot
        self._pending: dict[str, Block] = {}          # open blocks (see AnomalyRule.points)
        self._fired: dict[str, tuple[Fired, ...]] = {}           # recent alerts per series
        self._marks: dict[str, tuple[tuple[str, int], ...]] = {}  # incident -> (series, mark)

    def __len__(self) -> int:
        return len(self._live.keys() | self._pickled.keys())

    def get(self, series: str) -> AnomalyDetector | RiverDetector | None:
        """The detector of ``series``, if it has seen a point."""
        detector = self._live.get(series)
        if detector is None and series in self._pickled:
            detector = self._live[series] = pickle.loads(self._pickled[series])
        return detector

    def on_window(self, rule: AnomalyRule, window: Window) -> list[Alert]:
        """Fold the closed ``window`` in; the alerts of the points it completes."""
        out: list[Alert] = []
        for observation in rule.points(self._pending, window):
            series = observation.series
            detector = self.get(series)
            if detector is None:
                detector = self._live[series] = rule.new_detector()
            self._pickled.pop(series, None)  # it learns now: its pickle is stale
            alert = rule.on_observation(detector, observation)
            if alert is not None:
                log.info("anomaly alert %s: %s", alert.id, alert.message)
                middle = 0.5 * (alert.window_start + alert.window_end)
                fired = (*self._fired.get(series, ()), (alert.ts, middle, alert.value))
                self._fired[series] = fired[-FIRED_MEMORY:]
                out.append(alert)
        return out

    def on_feedback(self, feedback: DetectorFeedback) -> list[str]:
        """Mark (or unmark) the false alarms ``feedback`` names; what was done, for the log."""
        done: list[str] = []
        if not feedback.false_alarm:
            for series, mark in self._marks.pop(feedback.incident_id, ()):
                detector = self.get(series)
                if detector is None:
                    continue
                self._pickled.pop(series, None)
                try:
                    detector.undo_false_alarm(mark)
                except UnknownFalseAlarm:
                    continue  # forgotten already (the detector keeps a bounded list)
                done.append(f"{series}: false alarm {mark} of {feedback.incident_id} undone")
            return done
        if feedback.incident_id in self._marks:
            return done  # marked already (the record was read again)
        marks: list[tuple[str, int]] = []
        for series in feedback.detectors:
            detector = self.get(series)
            fired = [f for f in self._fired.get(series, ())
                     if feedback.since <= f[0] <= feedback.until]
            if detector is None or not fired:
                continue
            self._pickled.pop(series, None)
            for _alert_ts, at, value in fired:
                try:
                    alarm = detector.mark_false_alarm(at=at, value=value)
                except CityheartError as exc:
                    log.warning("anomaly feedback on %s skipped: %s", series, exc)
                    continue
                marks.append((series, alarm.id))
                done.append(f"{series}: {value:g} at {at:.0f} marked a false alarm "
                            f"({feedback.incident_id}; tolerance {alarm.tolerance:.2f} scales)")
        if marks:
            self._marks[feedback.incident_id] = tuple(marks)
            while len(self._marks) > MARK_MEMORY:  # the oldest can no longer be undone
                del self._marks[next(iter(self._marks))]
        return done

    def __deepcopy__(self, memo: dict[int, Any]) -> Detectors:
        snapshot = Detectors()
        snapshot._pickled = self._freeze()
        snapshot._pending = dict(self._pending)  # blocks are tuples: immutable
        snapshot._fired = dict(self._fired)
        snapshot._marks = dict(self._marks)
        return snapshot

    def __getstate__(self) -> tuple[Any, ...]:
        return self._freeze(), dict(self._pending), dict(self._fired), dict(self._marks)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self._live = {}
        self._pickled, self._pending = state[0], state[1]
        # (snapshots from before people's feedback have two parts)
        self._fired = state[2] if len(state) > 2 else {}
        self._marks = state[3] if len(state) > 3 else {}

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
