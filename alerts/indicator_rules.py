"""Threshold rules on indicators, with a minimum duration and hysteresis: pure, per-key state.

A rule of config.yaml's ``indicators.rules`` watches one indicator (its ``value``, or with
``stat: score`` its 0-100 sub-score) in every district, in the city, or both. The flow keeps
one picklable state per rule and district (``rule.new_state()``) and shows it each indicator
record in event-time order; :meth:`IndicatorRule.on_record` returns the alerts that fire::

    rules = indicator_rules(settings.indicators.rules)
    state = rule.new_state()
    for alert in rule.on_record(state, record):       # record: an IndicatorRecord
        send(alert.record(emitted_at=now))

Each severity runs its own *episode*: it starts with the first window whose value is at or
beyond the severity's level (``above``: >=, ``below``: <=), and fires once: on the first window
beyond the level once the episode has lasted ``for_s`` seconds of event time (from its first
window's start to this window's end; ``for_s: 0`` fires on the first window). It ends only when
a value is back past the level by more than ``hysteresis`` (``above``: below ``level -
hysteresis``), so a value wavering around the level neither ends the episode nor fires again. A
window without a record (no data) neither extends nor ends an episode. When warning and
critical become due on the same window only the critical alert goes out.

Alerts keep the ``alerts`` wire format: ``kind`` is the indicator (``aqi``), ``stat`` what the
rule watches (``value`` or ``score``), ``window_start``/``window_end`` the window that made it
fire and ``ts`` that window's end. The id (:meth:`~alerts.rules.Alert.new`) hashes (rule,
district, indicator, severity, episode start), so a replay of the same readings yields the
same ids, and one episode one alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from alerts.rules import Alert, Severity
from models.timefmt import iso
from models.vitals.records import CITY, IndicatorRecord
from settings.indicators import IndicatorRuleSettings

__all__ = ["Episode", "IndicatorRule", "indicator_rules"]

_LABELS = {
    "aqi": "AQI", "aqi_instant": "Instant AQI", "traffic": "Traffic congestion",
    "noise": "Noise Leq", "water_level": "Water level", "water_pressure": "Water pressure",
    "power": "Power load ratio", "crowd": "Crowd density", "device_health": "Device coverage",
    "score": "Health score",
}


@dataclass(slots=True)
class Episode:
    """One severity's episode: when it started (None: no episode) and whether it fired."""

    start: float | None = None
    fired: bool = False


@dataclass(frozen=True, slots=True)
class IndicatorRule:
    """A threshold rule with minimum duration and hysteresis on one indicator."""

    rule_id: str
    indicator: str
    stat: Literal["value", "score"]
    direction: Literal["above", "below"]
    warning: float
    critical: float
    for_s: float = 0.0
    hysteresis: float = 0.0
    scope: Literal["all", "districts", "city"] = "all"
    districts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, rule: IndicatorRuleSettings) -> IndicatorRule:
        """The rule of one ``indicators.rules`` entry."""
        return cls(
            rule.id, rule.indicator, rule.stat, rule.direction, rule.warning, rule.critical,
            rule.for_s, rule.hysteresis, rule.scope, frozenset(rule.districts),
        )

    def applies_to(self, district: str) -> bool:
        """Whether the rule watches ``district`` (``"city"`` for the city records)."""
        if district == CITY:
            return self.scope in ("all", "city")
        return self.scope in ("all", "districts") and (
            not self.districts or district in self.districts
        )

    def new_state(self) -> dict[str, Episode]:
        """Fresh state for one district: an episode per severity."""
        return {"warning": Episode(), "critical": Episode()}

    def on_record(self, state: dict[str, Episode], record: IndicatorRecord) -> list[Alert]:
        """Show the rule one record of its indicator; the alert that fires, if any."""
        if record.indicator != self.indicator:
            return []
        value = record.value if self.stat == "value" else record.score
        if value is None:
            return []
        due: list[Severity] = []
        for severity, level in (("warning", self.warning), ("critical", self.critical)):
            episode = state[severity]
            if episode.start is not None and not self._holds(value, level):
                episode.start, episode.fired = None, False
            if episode.start is None and self._beyond(value, level):
                episode.start = record.window_start
            if (episode.start is not None and not episode.fired and self._beyond(value, level)
                    and record.window_end - episode.start >= self.for_s):
                episode.fired = True
                due.append(severity)  # type: ignore[arg-type]
        if not due:
            return []
        worst: Severity = "critical" if "critical" in due else "warning"
        return [self._alert(worst, float(value), record, state[worst])]

    def _beyond(self, value: float, level: float) -> bool:
        return value >= level if self.direction == "above" else value <= level

    def _holds(self, value: float, level: float) -> bool:
        if self.direction == "above":
            return value >= level - self.hysteresis
        return value <= level + self.hysteresis

    def _alert(
        self, severity: Severity, value: float, record: IndicatorRecord, episode: Episode
    ) -> Alert:
        assert episode.start is not None
        level = self.critical if severity == "critical" else self.warning
        unit = record.unit if self.stat == "value" else "score"
        label = _LABELS.get(self.indicator, self.indicator)
        what = label if self.stat == "value" else f"{label} sub-score"
        lasted = record.window_end - episode.start
        where = "the city" if record.district == CITY else record.district
        message = (
            f"{what} {_number(value)} in {where} has been {self.direction} the {severity} "
            f"level {level:g} for {_duration(lasted)} (since {iso(episode.start)[11:19]} UTC)"
        )
        return Alert.new(
            rule=self.rule_id,
            district=record.district,
            kind=self.indicator,
            severity=severity,
            value=value,
            threshold=level,
            direction=self.direction,
            stat=self.stat,
            unit=unit,
            window_start=record.window_start,
            window_end=record.window_end,
            ts=record.window_end,
            message=message,
            since=episode.start,
        )


def indicator_rules(rules: Sequence[IndicatorRuleSettings]) -> tuple[IndicatorRule, ...]:
    """The rules of config.yaml's ``indicators.rules``."""
    return tuple(IndicatorRule.from_settings(rule) for rule in rules)


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
