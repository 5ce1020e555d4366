"""Alert rules on per-district window statistics: pure, evaluated early, deduplicated per window.

A :class:`Rule` watches one sensor kind. The flow keeps one picklable state per rule and district
(``rule.new_state()``) and calls :meth:`Rule.on_update` every time a window's running aggregate
changes, and :meth:`Rule.on_close` when the window closes; both return the :class:`Alert` s that
fire. Rules needing memory across windows (durations, hysteresis) keep it in that state.

:class:`ThresholdRule` is the ``kinds.<kind>.thresholds`` rule of config.yaml: it fires as soon as
the running statistic (mean, min, max or last) is at or beyond a level (``above`` or ``below``),
at most once per severity and window. A window that escalates from warning to critical fires
the critical alert too; one that breaches critical straight away fires only the critical one::

    rules = rules_for_kinds(settings.kinds)           # {"pm25": (ThresholdRule(...),), ...}
    state = rule.new_state()
    for alert in rule.on_update(state, window, ts=reading_ts):
        send(alert.record(emitted_at=now))

Every rule kind (these thresholds, :mod:`alerts.indicator_rules`, :mod:`alerts.anomaly_rules`)
makes its alerts with :meth:`Alert.new`, which derives the id: deterministic (:func:`alert_id`,
:func:`anomaly_alert_id`), so replaying the same readings yields the same ids and consumers can
deduplicate. An anomaly alert carries its detector's view in :attr:`Alert.anomaly`; the flow
sets :attr:`Alert.departments` (routing) before it publishes the alert, and gives an alert
without a position (:attr:`Alert.lat`, :attr:`Alert.lon`: the reading's or device's, when the rule
knows it) its district's centroid.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from models.timefmt import iso
from models.windows import Window
from settings.config import Kind

__all__ = [
    "Alert", "AnomalyFacts", "Rule", "ThresholdRule", "alert_id", "anomaly_alert_id",
    "rules_for_kinds",
]

Severity = Literal["warning", "critical"]


def alert_id(rule: str, district: str, kind: str, severity: str, window_start: float) -> str:
    """The deterministic id of an alert: a hash of what makes it unique."""
    text = f"{rule}|{district}|{kind}|{severity}|{iso(window_start)}"
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def anomaly_alert_id(
    rule: str, district: str, kind: str, window_start: float, device: str | None = None
) -> str:
    """The deterministic id of an anomaly alert: one per series and window."""
    text = f"{rule}|{district}|{kind}|{device or ''}|{iso(window_start)}"
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class AnomalyFacts:
    """What an anomaly alert adds: the detector's expected value and band, its score, the
    series whose detector fired (``detector``), what made the score (``evidence``) and the
    device of a per-device series (None: the district's)."""

    expected: float
    low: float
    high: float
    score: float
    detector: str
    evidence: str
    device: str | None

    def record(self) -> dict[str, Any]:
        """The anomaly fields of the ``alerts`` wire record."""
        return {
            "expected": self.expected, "low": self.low, "high": self.high, "score": self.score,
            "detector": self.detector, "evidence": self.evidence,
            "scope": "district" if self.device is None else "device", "device_id": self.device,
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, as the flow publishes it on the ``alerts`` topic (see :meth:`record`).

    ``anomaly``: the detector's facts of an anomaly alert (None for threshold and indicator
    alerts). ``departments``: where routing sends it (the flow sets them before publishing).
    ``lat``/``lon``: where what raised it is (WGS84): the reading's or device's position, or
    for a district-wide value its district's centroid; None when not known.
    """

    id: str
    rule: str
    district: str
    kind: str
    severity: Severity
    value: float
    threshold: float
    direction: Literal["above", "below"]
    stat: str
    unit: str
    window_start: float
    window_end: float
    ts: float
    message: str
    anomaly: AnomalyFacts | None = field(default=None, kw_only=True)
    departments: tuple[str, ...] = field(default=(), kw_only=True)
    lat: float | None = field(default=None, kw_only=True)
    lon: float | None = field(default=None, kw_only=True)

    @classmethod
    def new(
        cls, *, rule: str, district: str, kind: str, severity: Severity, value: float,
        threshold: float, direction: Literal["above", "below"], stat: str, unit: str,
        window_start: float, window_end: float, ts: float, message: str,
        since: float | None = None, anomaly: AnomalyFacts | None = None,
        lat: float | None = None, lon: float | None = None,
    ) -> Alert:
        """The alert a rule fires, with its deterministic id: :func:`alert_id` of the rule,
        district, kind, severity and ``since`` (when the breach began; default
        ``window_start``), or for an anomaly :func:`anomaly_alert_id` of its series' window.
        ``lat`` and ``lon`` (both or neither) place it; they do not change the id."""
        if (lat is None) != (lon is None):
            msg = f"an alert's position needs both lat and lon, not lat={lat!r} lon={lon!r}"
            raise ValueError(msg)
        if anomaly is None:
            start = window_start if since is None else since
            alert = alert_id(rule, district, kind, severity, start)
        else:
            alert = anomaly_alert_id(rule, district, kind, window_start, anomaly.device)
        return cls(alert, rule, district, kind, severity, value, threshold, direction, stat,
                   unit, window_start, window_end, ts, message, anomaly=anomaly, lat=lat,
                   lon=lon)

    def record(self, *, emitted_at: float) -> dict[str, Any]:
        """The ``alerts`` wire record (JSON-ready dict); times as ISO 8601 UTC. An anomaly
        alert's record adds its :class:`AnomalyFacts`, a located one ``lat`` and ``lon``."""
        record = {
            "id": self.id,
            "rule": self.rule,
            "district": self.district,
            "kind": self.kind,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold,
            "direction": self.direction,
            "stat": self.stat,
            "unit": self.unit,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "ts": iso(self.ts),
            "emitted_at": iso(emitted_at),
            "message": self.message,
        }
        if self.anomaly is not None:
            record.update(self.anomaly.record())
        if self.lat is not None and self.lon is not None:
            record["lat"], record["lon"] = self.lat, self.lon
        return record


class Rule(ABC):
    """A rule on one kind's windows; its per-district memory lives in ``new_state()``."""

    rule_id: str
    kind: str

    @abstractmethod
    def new_state(self) -> Any:
        """Fresh, picklable state for one district."""

    @abstractmethod
    def on_update(self, state: Any, window: Window, *, ts: float) -> list[Alert]:
        """The alerts that fire now that ``window`` changed (``ts``: the newest reading's time)."""

    def on_close(self, state: Any, window: Window) -> list[Alert]:
        """The alerts that fire when ``window`` closes; the default fires none."""
        return []


@dataclass(frozen=True, slots=True)
class ThresholdRule(Rule):
    """Fire when a window statistic is at or beyond the warning or critical level.

    State: the set of ``(severity, window_start)`` already fired in open windows.
    """

    kind: str
    label: str
    unit: str
    direction: Literal["above", "below"]
    stat: Literal["mean", "min", "max", "last"]
    warning: float
    critical: float

    @classmethod
    def from_kind(cls, kind_id: str, kind: Kind) -> ThresholdRule:
        """The threshold rule of config.yaml's ``kinds.<kind_id>``."""
        limits = kind.thresholds
        return cls(
            kind=kind_id,
            label=_short_label(kind.name),
            unit=kind.unit,
            direction=limits.direction,
            stat=limits.stat,
            warning=limits.warning,
            critical=limits.critical,
        )

    @property
    def rule_id(self) -> str:  # type: ignore[override]
        """``"<kind>.threshold"``."""
        return f"{self.kind}.threshold"

    def new_state(self) -> set[tuple[str, float]]:
        """The (severity, window_start) pairs fired so far."""
        return set()

    def breached(self, value: float) -> Severity | None:
        """The worst severity whose level ``value`` is at or beyond, if any."""
        if self.direction == "above":
            if value >= self.critical:
                return "critical"
            return "warning" if value >= self.warning else None
        if value <= self.critical:
            return "critical"
        return "warning" if value <= self.warning else None

    def on_update(
        self, state: set[tuple[str, float]], window: Window, *, ts: float
    ) -> list[Alert]:
        """Fire the worst newly breached severity of ``window``, once per window."""
        value = float(getattr(window, self.stat))
        severity = self.breached(value)
        if severity is None or (severity, window.start) in state:
            return []
        state.add((severity, window.start))
        if severity == "critical":
            state.add(("warning", window.start))  # implied: never fire warning after critical
        return [self._alert(severity, value, window, ts)]

    def on_close(self, state: set[tuple[str, float]], window: Window) -> list[Alert]:
        """Forget the window's fired severities: it will not change again."""
        state.discard(("warning", window.start))
        state.discard(("critical", window.start))
        return []

    def _alert(self, severity: Severity, value: float, window: Window, ts: float) -> Alert:
        level = self.critical if severity == "critical" else self.warning
        message = (
            f"{self.label} {self.stat} {_number(value)} {self.unit} in {window.district} "
            f"is {self.direction} the {severity} level {level:g}"
        )
        return Alert.new(
            rule=self.rule_id,
            district=window.district,
            kind=self.kind,
            severity=severity,
            value=value,
            threshold=level,
            direction=self.direction,
            stat=self.stat,
            unit=self.unit,
            window_start=window.start,
            window_end=window.end,
            ts=ts,
            message=message,
        )


def rules_for_kinds(kinds: Mapping[str, Kind]) -> dict[str, tuple[Rule, ...]]:
    """The rules of every kind in config.yaml's ``kinds``, by kind id."""
    return {kind_id: (ThresholdRule.from_kind(kind_id, kind),) for kind_id, kind in kinds.items()}


def _short_label(name: str) -> str:
    """A kind's name for messages: its last word when that is a symbol like PM2.5, else all."""
    last = name.rsplit(maxsplit=1)[-1]
    if any(c.isdigit() for c in last) and any(c.isupper() for c in last):
        return last
    return name


def _number(value: float) -> str:
    """A measured value for people: one decimal from 10 up, else three significant digits."""
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"
