"""Anomaly alerts: a series' detector score crossing the configured threshold. Pure.

The flow folds every closed window into blocks of ``interval_s`` (five minutes by default,
the cadence the detector was measured at on NAB) and turns each complete block into an
:class:`Observation` (:meth:`AnomalyRule.points`: the mean of the block's readings for the
district and kind, and with ``per_device`` for each device). It keeps one
:class:`~models.anomaly.AnomalyDetector` per series (:meth:`AnomalyRule.new_detector`,
picklable: it lives in Bytewax state) and scores each observation with
:meth:`AnomalyRule.on_observation`, which returns the alert that fires, if any::

    rule = AnomalyRule.from_settings(settings.anomaly, settings.kinds)
    pending = {}                                       # open blocks, kept with the detectors
    for observation in rule.points(pending, window):   # window: a closed Window
        detector = detectors[observation.series]       # one per series: rule.new_detector()
        alert = rule.on_observation(detector, observation)
        if alert is not None:
            send(alert.record(emitted_at=now))

An alert fires when a ready detector (past its warm-up) scores at or above ``threshold``
(``critical`` at or above the second threshold). It keeps the ``alerts`` wire format: rule
``"anomaly.<kind>"``, ``value`` the observed mean, ``threshold`` the score level reached,
``direction`` whether the value is above or below what was expected, ``stat`` ``"mean"``; and
adds ``expected``, ``low``/``high`` (the expected band), ``score``, ``detector`` (the series
whose detector fired, :attr:`Observation.series`: what incidents and KPIs count false alarms
by), ``evidence`` (what made the score: ``spike``, ``rare_values``, ``daily_pattern``, ...),
``scope`` (``"district"`` or ``"device"``) and ``device_id`` (or null). The id hashes (rule,
district, kind, device, block start: :meth:`~alerts.rules.Alert.new`), so a replay yields the
same ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerts.rules import Alert, AnomalyFacts, Severity, anomaly_alert_id
from models.anomaly import AnomalyDetector, DetectorParams, RiverDetector, Scored
from models.windows import Window
from settings.anomaly import AnomalySettings
from settings.config import Kind

__all__ = ["AnomalyRule", "Block", "Observation", "anomaly_alert_id"]


@dataclass(frozen=True, slots=True)
class Observation:
    """One point of one series: the mean of a block of windows, for the district or a device."""

    district: str
    kind: str
    device: str | None
    window_start: float
    window_end: float
    ts: float          # event time of the newest reading in it
    value: float

    @property
    def series(self) -> str:
        """``"<district>/<kind>"``, or ``"<district>/<kind>/<device>"``: the detector's key."""
        return _series(self.district, self.kind, self.device)


#: An open block of a series: (start, end, sum of values, count, newest reading's time).
Block = tuple[float, float, float, int, float]


@dataclass(frozen=True, slots=True)
class AnomalyRule:
    """Scores observations with per-series detectors and fires above the thresholds."""

    threshold: float
    critical: float
    warmup: int
    per_device: bool
    interval_s: float
    labels: Mapping[str, str]
    units: Mapping[str, str]
    detector: str = "cityheart"   # anomaly.detector: cityheart or a River detector's name

    @classmethod
    def from_settings(cls, settings: AnomalySettings, kinds: Mapping[str, Kind]) -> AnomalyRule:
        """The rule of config.yaml's ``anomaly`` section, for the kinds of ``kinds``."""
        return cls(
            threshold=settings.threshold,
            critical=settings.critical,
            warmup=settings.warmup,
            per_device=settings.per_device,
            interval_s=settings.interval_s,
            labels={kind_id: kind.name for kind_id, kind in kinds.items()},
            units={kind_id: kind.unit for kind_id, kind in kinds.items()},
            detector=settings.detector,
        )

    def new_detector(self) -> AnomalyDetector | RiverDetector:
        """A fresh detector for one series, of the kind ``anomaly.detector`` names."""
        if self.detector != "cityheart":
            return RiverDetector(self.detector, warmup=self.warmup)
        return AnomalyDetector(DetectorParams(warmup=self.warmup))

    def points(self, pending: dict[str, Block], window: Window) -> list[Observation]:
        """Fold the closed ``window`` into its series' open blocks; the points now complete.

        A block is ``interval_s`` of event time (aligned to the epoch; 0: each window alone) and
        its point is the mean of every reading in it: of the district and kind, and with
        per_device of each device. ``pending`` (series -> open :data:`Block`, picklable) is the
        caller's state. A block completes when its last window closes, or when a later window
        of its series does (a device that missed the last one).
        """
        interval = self.interval_s
        start = (window.start // interval) * interval if interval > 0 else window.start
        end = max(start + interval, window.end)
        parts: list[tuple[str | None, float, int, float]] = [
            (None, window.total, window.count, window.last_ts)
        ]
        if self.per_device:
            parts += [(device, run.total, run.count, run.last_ts)
                      for device, run in window.runs.items()]
        out: list[Observation] = []
        for device, total, count, last_ts in parts:
            series = _series(window.district, window.kind, device)
            block = pending.pop(series, None)
            if block is not None and block[0] != start:
                out.append(_point(window, device, block))
                block = None
            if block is not None:
                total += block[2]
                count += block[3]
                last_ts = max(last_ts, block[4])
            block = (start, end, total, count, last_ts)
            if window.end >= end:
                out.append(_point(window, device, block))
            else:
                pending[series] = block
        return out

    def on_observation(
        self, detector: AnomalyDetector | RiverDetector, observation: Observation
    ) -> Alert | None:
        """Score ``observation`` with its series' ``detector`` (which learns it); the alert, if any.

        The detector sees the block's midpoint as the time, so daily profiles line up with
        the blocks whatever their length.
        """
        middle = 0.5 * (observation.window_start + observation.window_end)
        scored = detector.update(middle, observation.value)
        if not scored.ready or scored.score < self.threshold:
            return None
        return self._alert(observation, scored)

    def _alert(self, observation: Observation, scored: Scored) -> Alert:
        severity: Severity = "critical" if scored.score >= self.critical else "warning"
        level = self.critical if severity == "critical" else self.threshold
        kind = observation.kind
        rule_id = f"anomaly.{kind}"
        unit = self.units.get(kind, "")
        where = f"in {observation.district}"
        if observation.device is not None:
            where = f"at {observation.device} {where}"
        message = (
            f"{self.labels.get(kind, kind)} {_number(scored.value)} {unit} {where} is "
            f"unusual: expected {_number(scored.low)}-{_number(scored.high)} {unit} "
            f"(score {scored.score:.2f}, {(scored.kind or 'none').replace('_', ' ')})"
        )
        return Alert.new(
            rule=rule_id,
            district=observation.district,
            kind=kind,
            severity=severity,
            value=scored.value,
            threshold=level,
            direction="above" if scored.value >= scored.expected else "below",
            stat="mean",
            unit=unit,
            window_start=observation.window_start,
            window_end=observation.window_end,
            ts=observation.ts,
            message=message,
            anomaly=AnomalyFacts(
                expected=scored.expected, low=scored.low, high=scored.high, score=scored.score,
                detector=observation.series, evidence=scored.kind or "none",
                device=observation.device,
            ),
        )


def _series(district: str, kind: str, device: str | None) -> str:
    return f"{district}/{kind}" if device is None else f"{district}/{kind}/{device}"


def _point(window: Window, device: str | None, block: Block) -> Observation:
    start, end, total, count, last_ts = block
    return Observation(window.district, window.kind, device, start, end, last_ts, total / count)


def _number(value: float) -> str:
    """A value for people: one decimal from 10 up, else three significant digits."""
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"
