"""The streaming anomaly detector: one per series, score first, then learn; picklable and small.

Feed it one series' readings in time order; each :meth:`AnomalyDetector.update` returns a
:class:`Scored` with the anomaly ``score`` in [0, 1) and what the detector expected::

    detector = AnomalyDetector()                 # or AnomalyDetector(DetectorParams(warmup=500))
    result = detector.update(ts, value)          # epoch seconds, a finite float
    if result.score >= threshold:                # one threshold for every sensor kind
        alert(f"expected {result.low:.0f}-{result.high:.0f}, got {value:.0f}")

How it scores. Before learning from a value the detector gathers eight pieces of evidence, each
a non-negative number that is large when the value is unusual in one way:

==================  ======================================================================
``spike``           robust z-distance from what the level and the daily profile predict,
                    blended by how well each predicted lately (:class:`~.baselines.Hedge`)
``shift``           the same, smoothed over ~5 points (a level shift keeps it high)
``rare_value``      surprisal of the value under a decaying density of past values
``rare_values``     that surprisal smoothed over ~10 points (a drift into new territory)
``time_of_day``     surprisal under a density of (value, time of day): "20 at 08:00"
``daily_pattern``   smoothed residual from the daily profile, in profile-scale units, only
                    where that profile explains the series (its error < 0.7 x the spread)
``weekly_pattern``  the same for a 168-hour weekly profile
``outliers``        the share of the last ~30 values that lie more than 6 noise scales from
                    the level: a sensor gone erratic, a spell of unusual activity
==================  ======================================================================

Each evidence goes through its own :class:`~models.anomaly.calibration.TailCalibrator`, so it
becomes nats of surprise relative to *this series' own history* of that evidence; the
detector's ``surprise`` is the largest of them (``kind`` names which). The alert ``score`` is the
*rise* in the point evidences (``spike``, ``rare_value``, ``time_of_day``: the largest of their
nats) since the previous point, mapped to [0, 1) by ``s / (s + score_scale)``: an episode alerts
at its onset rather than on every point, and a point that is as strange as the one before it
adds nothing new. The smoothed evidences (``shift``, ``rare_values``, the patterns, ``outliers``)
describe a state that lasts; their rise only echoes a point that already counted, or follows a
slow climb, so they count through the rules below instead. Three rules catch what a rise
misses: the first point of an episode whose surprise reaches ``episode_nats`` (7) scores
that whole surprise, so a slow ramp still alerts once when it gets there (the episode ends when
the surprise falls below half of it); an episode of moderate surprise that lasts (a holiday
that looks like a Sunday, a pressure a little low all night) alerts once with
``episode_nats`` when its surprise beyond ``sustain_allowance`` nats a point adds up to
``sustain_nats`` (a CUSUM, :class:`~models.anomaly.alarms.SustainedSurprise`); and a sensor
that repeats one value for far longer than this series' own repeat statistics allow (a
geometric model of repeat runs, see :class:`~models.anomaly.baselines.RepeatRuns`), and for
longer than any run it had in the last ``2-4 x memory`` points, raises a one-off ``stuck``
event of at least ``stuck_nats``.

Two more rules came from measuring on NAB (BENCHMARKS.md). A value that leaves the range the
series has covered so far (a decaying min/max, judged only once a whole day has been seen) by
more than ``range_margin`` of that range and more than one noise scale is a ``beyond_range``
event of ``episode_nats x (1 + excursion in ranges)``: Numenta's HTM detector uses the same
"spatial anomaly" idea. Then three gates of :mod:`~models.anomaly.alarms` act on alerts of
at least half ``score_scale``: a quiet spell of ``quiet_points`` points in which further alerts
on the same side of the expected value count only if they beat it by 30 % (one excursion
alerts once, an excursion the other way still alerts), daily habits (an alert at the time of
day at which two alerts fired on earlier days of the last week is a routine, not news), and
the alert rate: beyond one alert in about ``alert_memory`` points, each alert loses
``alert_discount`` nats per e-fold of the recent ones (a series that cries wolf must shout).

Warm-up is explicit: the score is 0 until ``warmup`` points have been seen (and each calibrator
answers 0 until it has seen 30 values of its evidence), so a new series never alarms on its
first readings. A flat series gives next to no evidence: its scores stay below 0.1 forever
(River's ``GaussianScorer`` says 1.0 there); a noisy series that freezes is a ``stuck`` event,
once.

State is a few hundred floats (about 9 KB pickled, see BENCHMARKS.md): plain Python, and
``river.stats.EWMean`` for the five smoothed evidences (``shift``, ``rare_values``, the two
patterns' residuals, ``outliers``), so the flow can keep one detector per series in a Bytewax
``stateful_map`` and a recovery snapshot resumes exactly. There is no randomness: equal inputs
give equal outputs. Operator feedback (:meth:`AnomalyDetector.mark_false_alarm`) is described
in :mod:`models.anomaly.feedback`.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from river import base as river_base

from models.anomaly.alarms import AlertRate, DailyHabits, QuietSpell, SustainedSurprise
from models.anomaly.baselines import (
    Envelope,
    Hedge,
    RepeatRuns,
    RobustLevel,
    SlotProfile,
    ewmean,
    restore_slots,
)
from models.anomaly.calibration import TailCalibrator, score_from_surprisal
from models.anomaly.density import PhaseDensity, ValueDensity
from models.anomaly.feedback import FalseAlarm, FeedbackMemory
from models.errors import CityheartError

__all__ = [
    "KINDS",
    "AnomalyDetector",
    "DetectorParams",
    "InvalidDetectorInput",
    "Scored",
]

DAY = 86400.0
WEEK = 7 * DAY
#: Names of the evidences, in the order the detector computes them (``Scored.kind``).
KINDS = (
    "spike",
    "shift",
    "rare_value",
    "rare_values",
    "time_of_day",
    "daily_pattern",
    "weekly_pattern",
    "outliers",
)
STUCK = "stuck"      # the kind of a stuck-sensor event
BEYOND = "beyond_range"  # the kind of a value beyond the range the series has covered
_RANGE_MEMORIES = 16  # the range forgets an old excursion over this many ``memory`` spans
_RANGE_NOISES = 1.0   # an excursion counts only beyond this many noise scales
_ACTIVE_AFTER = 10    # values before any evidence is computed (levels need a start)
_PATTERN_GATE = 0.7   # a profile counts when its error is below this share of the spread
_SIGMA_PER_MAD = 1.25  # Gaussian sigma per mean absolute deviation
_NEGLIGIBLE = 0.1     # nats of alerting surprise treated as none
_DAY_SLOTS = 48      # half hours
_WEEK_SLOTS = 168    # hours
_RECENT = 64          # recent points remembered for mark_false_alarm
_OUTLIER_NOISES = 6.0  # an outlier lies this many noise scales (slow MADs) from the level
_OUTLIER_RATE = 0.03   # the outlier share is an average over about the last 1 / rate values
#: Whether each evidence marks an onset (the point evidences); the smoothed ones describe a
#: state that lasts and count only in the surprise (episodes, sustained surprise).
_ONSET = tuple(kind in ("spike", "rare_value", "time_of_day") for kind in KINDS)


class InvalidDetectorInput(CityheartError, ValueError):
    """Raised when a detector gets a parameter or a reading it cannot use.

    ``name`` is the parameter or field (``warmup``, ``value``, ...), ``value`` what it was and
    ``reason`` what is wrong with it.
    """

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(name, value, reason)
        self.name = name
        self.value = value
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.name}={self.value!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """The few knobs of a detector; the defaults are generic (none is tuned to one series)."""

    warmup: int = 200            # points before any score above 0
    memory: int = 3000           # points the calibration and the densities remember
    quantile: float = 0.98       # where each calibrator's tail starts
    prototypes: int = 32         # centres per density
    kernel_width: float = 0.5    # density kernel, in noise scales
    phase_width: float = 0.05    # time-of-day kernel, as a share of a day (72 min)
    score_scale: float = 6.0     # surprise (nats) that maps to a score of 0.5
    episode_nats: float = 7.0    # a surprise this high alerts once per episode, however slow
    stuck_nats: float = 12.0     # improbability of a repeat run that makes a stuck event
    range_margin: float = 0.02   # an excursion beyond the range so far, in ranges, that alerts
    quiet_points: int = 100      # after an alert, smaller alerts are damped for this many points
    band_z: float = 3.0          # half-width of the expected band, in robust sigmas
    margin: float = 0.25         # a false alarm mutes deviations up to (1 + margin) x its own
    # new fields go last: a snapshot holds the values in this order (see __setstate__)
    sustain_allowance: float = 1.0   # nats a point that surprise may add up to without alerting
    sustain_nats: float = 20.0   # surprise beyond the allowance, summed, that alerts (once)
    alert_memory: int = 1000     # points over which a series' recent alerts are counted ...
    alert_discount: float = 2.0  # ... and nats taken off per e-fold of them beyond one (0: off)

    def __post_init__(self) -> None:
        for name in ("warmup", "memory", "prototypes", "quiet_points", "alert_memory"):
            number = getattr(self, name)
            if not isinstance(number, int) or number < 1:
                raise InvalidDetectorInput(name, number, "must be a positive integer")
        if not 0.5 <= self.quantile < 1.0:
            raise InvalidDetectorInput("quantile", self.quantile, "must be in [0.5, 1)")
        for name in (
            "kernel_width",
            "phase_width",
            "score_scale",
            "episode_nats",
            "sustain_allowance",
            "sustain_nats",
            "stuck_nats",
            "band_z",
            "range_margin",
        ):
            number = getattr(self, name)
            if not (isinstance(number, int | float) and math.isfinite(number) and number > 0):
                raise InvalidDetectorInput(name, number, "must be a finite number above 0")
        discount = self.alert_discount
        if not (isinstance(discount, int | float) and math.isfinite(discount) and discount >= 0):
            raise InvalidDetectorInput("alert_discount", discount, "must be a finite number >= 0")
        if not 0.0 <= self.margin <= 10.0:
            raise InvalidDetectorInput("margin", self.margin, "must be in [0, 10]")


@dataclass(frozen=True, slots=True)
class Scored:
    """What the detector made of one point."""

    ts: float
    value: float
    score: float           # in [0, 1): compare with the configured threshold
    surprise: float        # nats: how unusual the point is (not only its onset)
    expected: float        # what the detector expected at ts
    low: float             # expected band: expected -/+ band_z robust sigmas
    high: float
    kind: str | None       # the evidence that made the surprise (see KINDS), None if none
    ready: bool            # False during warm-up, when the score is always 0
    muted_by: int | None = None   # id of the FalseAlarm that muted this point

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the ones an anomaly alert carries)."""
        return {
            "ts": self.ts,
            "value": self.value,
            "score": self.score,
            "surprise": self.surprise,
            "expected": self.expected,
            "low": self.low,
            "high": self.high,
            "kind": self.kind,
            "ready": self.ready,
            "muted_by": self.muted_by,
        }


class AnomalyDetector(river_base.AnomalyDetector):
    """Scores one series point by point; see the module docstring for how.

    It is a River anomaly detector too: ``learn_one(x)`` and ``score_one(x)`` take a reading as
    a dict ``{"ts": t, "value": v}`` (``t`` in epoch seconds, or a datetime, naive meaning
    UTC), so it fits River pipelines and evaluators::

        detector = AnomalyDetector()
        for x in stream:                    # {"ts": ..., "value": ...}, in time order
            score = detector.score_one(x)   # the same score update() gives; learns nothing
            detector.learn_one(x)

    A dict without ``ts`` or ``value`` (or with ``None`` there) is no reading: it scores 0 and
    teaches nothing. ``score_one`` works on a copy of the state (a pickle round trip: about
    0.1-0.2 ms more than :meth:`update`) and keeps it, so the ``learn_one`` of the same reading
    that follows only adopts it; the flow calls :meth:`update`, which scores and learns in one step.

    Parameters
    ----------
    params
        The detector's knobs (:class:`DetectorParams`); ``None`` means the defaults.
    """

    __slots__ = (
        "_alert_rate",
        "_calibrators",
        "_day",
        "_density",
        "_feedback",
        "_first_ts",
        "_habits",
        "_hedge",
        "_in_episode",
        "_level",
        "_n",
        "_outliers",
        "_phase_density",
        "_previous",
        "_quiet",
        "_range",
        "_rare_smooth",
        "_recent",
        "_runs",
        "_scored",
        "_spike_smooth",
        "_sustained",
        "_week",
        "params",
    )

    def __init__(self, params: DetectorParams | None = None) -> None:
        params = params if params is not None else DetectorParams()
        self.params = params
        memory = params.memory
        self._n = 0
        self._first_ts = math.inf
        self._level = RobustLevel(fast_rate=0.05, slow_rate=0.002)
        self._day = SlotProfile(_DAY_SLOTS, DAY, min_rate=0.1)
        self._week = SlotProfile(_WEEK_SLOTS, WEEK, min_rate=0.3)
        self._hedge = Hedge(decay=0.02)
        self._density = ValueDensity(params.prototypes, params.kernel_width, memory)
        self._phase_density = PhaseDensity(
            params.prototypes, params.kernel_width, params.phase_width, memory
        )
        self._runs = RepeatRuns(memory=500, record_span=2 * memory)
        self._range = Envelope(1.0 / (_RANGE_MEMORIES * memory))
        self._calibrators = [TailCalibrator(params.quantile, memory) for _ in KINDS]
        # river.stats.EWMean where it does the job: NAB scores did not drop (standard +0.08);
        # it costs about 10 % more a point and 0.4 KB more state (BENCHMARKS.md)
        self._spike_smooth = ewmean(0.2)
        self._rare_smooth = ewmean(0.1)
        self._outliers = ewmean(_OUTLIER_RATE)
        self._previous = 0.0
        self._in_episode = False
        self._sustained = _sustained_surprise(params)
        self._quiet = QuietSpell(params.quiet_points)
        self._habits = DailyHabits()
        self._alert_rate = _alert_rate(params)
        self._feedback = FeedbackMemory()
        self._recent: list[tuple[float, float, float]] = []
        # score_one's work for learn_one: (ts, value, score, the state after learning it)
        self._scored: tuple[float, float, float, AnomalyDetector] | None = None

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """The state a snapshot holds: every slot but score_one's pending work."""
        return None, {
            name: getattr(self, name)
            for name in self.__slots__
            if name != "_scored" and hasattr(self, name)
        }

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        """Resume a snapshot, also one written before a part of the state existed.

        Parts added later start afresh (the sustained-surprise sum came after snapshots of
        version 07ebe53, the alert rate after 26edc5e, the outlier share and its calibrator
        after f3be506); parameters the snapshot lacks take their defaults.
        """
        restore_slots(self, state)
        self._scored = None
        params = self.params
        names = [f.name for f in fields(DetectorParams)]
        known = {name: getattr(params, name) for name in names if hasattr(params, name)}
        if len(known) < len(names):
            params = self.params = DetectorParams(**known)
        if not hasattr(self, "_sustained"):
            self._sustained = _sustained_surprise(params)
        if not hasattr(self, "_alert_rate"):
            self._alert_rate = _alert_rate(params)
        if not hasattr(self, "_outliers"):
            self._outliers = ewmean(_OUTLIER_RATE)
        if isinstance(self._spike_smooth, float):   # kept by hand before river.stats
            self._spike_smooth = ewmean(0.2, self._spike_smooth)
            self._rare_smooth = ewmean(0.1, self._rare_smooth)
        if isinstance(self._outliers, float):
            self._outliers = ewmean(_OUTLIER_RATE, self._outliers)
        calibrators = self._calibrators
        while len(calibrators) < len(KINDS):
            calibrators.append(TailCalibrator(params.quantile, params.memory))

    @property
    def seen(self) -> int:
        """How many points the detector has learnt from."""
        return self._n

    @property
    def ready(self) -> bool:
        """Whether the warm-up is over (before it, every score is 0)."""
        return self._n >= self.params.warmup

    @property
    def false_alarms(self) -> tuple[FalseAlarm, ...]:
        """The operator false alarms currently applied, oldest first."""
        return tuple(self._feedback.alarms)

    def update(self, ts: float, value: float) -> Scored:
        """Score ``value`` at epoch seconds ``ts``, then learn from it."""
        x = _reading("value", value)
        ts = _reading("ts", ts)
        self._scored = None
        self._n += 1
        if self._n == 1:
            self._first_ts = ts
        tiny = self._level.tiny()
        day_slot, week_slot = self._day.slot(ts), self._week.slot(ts)
        phase = (ts % DAY) / DAY
        evidence, expected, scale = self._evidence(x, tiny, day_slot, week_slot, phase)
        surprise, kind, onset = self._calibrate(evidence)
        stuck = 0.0
        beyond = 0.0
        if self._n > _ACTIVE_AFTER:
            stuck = self._runs.observe(x, tiny, self.params.stuck_nats)
            beyond = self._beyond(ts, x, tiny)
        self._learn(x, tiny, day_slot, week_slot, phase)
        alerting = self._alerting(surprise, onset)
        if stuck > 0.0 and stuck > alerting:
            alerting, kind = stuck, STUCK
        if beyond > 0.0:
            nats = self.params.episode_nats * (1.0 + beyond)
            if nats > alerting:
                alerting, kind = nats, BEYOND
        return self._finish(ts, x, alerting, surprise, kind, expected, scale)

    # x is Mapping[Any, Any]: River's base class takes dict[Hashable, Any], and a reading
    # typed dict[str, float] must do too (Mapping's key type is invariant)
    def learn_one(self, x: Mapping[Any, Any]) -> None:
        """Learn the reading ``x`` (``{"ts": t, "value": v}``; see the class docstring)."""
        reading = _from_dict(x)
        scored, self._scored = self._scored, None
        if reading is None:
            return
        if scored is not None and scored[:2] == reading:
            after = scored[3]
            for name in self.__slots__:
                if name != "_scored":
                    setattr(self, name, getattr(after, name))
            return
        self.update(*reading)

    def score_one(self, x: Mapping[Any, Any]) -> float:
        """The score :meth:`update` would give the reading ``x``, in [0, 1); learns nothing."""
        reading = _from_dict(x)
        if reading is None:
            return 0.0
        scored = self._scored
        if scored is not None and scored[:2] == reading:
            return scored[2]
        after: AnomalyDetector = pickle.loads(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
        score = after.update(*reading).score
        self._scored = (*reading, score, after)
        return score

    def expected_at(self, ts: float) -> tuple[float, float]:
        """The value expected at ``ts`` and its scale, from the current models (no learning)."""
        level = self._level
        if self._n == 0:
            return 0.0, 0.0
        slot = self._day.slot(ts)
        if not self._day.ready(slot):
            return level.level, level.scale + level.tiny()
        weight_level, weight_day = self._hedge.weights()
        expected = weight_level * level.level + weight_day * self._day.mean[slot]
        scale = weight_level * level.scale + weight_day * self._day.scale
        return expected, scale + level.tiny()

    def mark_false_alarm(
        self, at: float, value: float, within_s: float | None = None
    ) -> FalseAlarm:
        """Record that ``value`` at ``at`` was normal: similar deviations stop alerting.

        The deviation is measured against what the detector expected at ``at`` (remembered for
        the last 64 points, else its current expectation for that time). ``within_s`` limits
        the effect to that many seconds around the same time of day.
        """
        at = _reading("at", at)
        value = _reading("value", value)
        if within_s is not None and not (math.isfinite(within_s) and within_s > 0):
            raise InvalidDetectorInput("within_s", within_s, "must be a finite number above 0")
        expected, scale = next(
            ((e, s) for t, e, s in reversed(self._recent) if t == at), self.expected_at(at)
        )
        deviation = (value - expected) / scale if scale > 0 else 0.0
        self._scored = None
        return self._feedback.add(at, value, expected, deviation, self.params.margin, within_s)

    def undo_false_alarm(self, alarm_id: int) -> FalseAlarm:
        """Forget a false alarm; raises UnknownFalseAlarm for an id the detector does not hold."""
        self._scored = None
        return self._feedback.remove(alarm_id)

    def _evidence(
        self, x: float, tiny: float, day_slot: int, week_slot: int, phase: float
    ) -> tuple[list[float | None], float, float]:
        level = self._level
        if self._n == 1:
            return [None] * len(KINDS), x, 0.0
        day = self._day
        scale = level.scale + tiny
        z_level = abs(x - level.level) / scale
        expected = level.level
        if day.ready(day_slot):
            z_day = abs(x - day.mean[day_slot]) / (day.scale + tiny)
            weight_level, weight_day = self._hedge.weights()
            expected = weight_level * level.level + weight_day * day.mean[day_slot]
            scale = weight_level * scale + weight_day * (day.scale + tiny)
            spike = self._hedge.surprise(z_level, z_day)
            if self._n > _ACTIVE_AFTER:
                self._hedge.learn(z_level, z_day)
        else:
            spike = z_level
        if self._n <= _ACTIVE_AFTER:
            return [None] * len(KINDS), expected, scale
        self._spike_smooth.update(spike)
        noise = level.noise + tiny
        rare = self._density.surprisal(x, noise)
        self._rare_smooth.update(rare)
        evidence: list[float | None] = [
            spike,
            self._spike_smooth.get(),
            rare,
            self._rare_smooth.get(),
            self._phase_density.surprisal(x, phase, noise),
            _pattern(day, day_slot, x, level.spread, tiny),
            _pattern(self._week, week_slot, x, level.spread, tiny),
            self._outlier_share(x, noise),
        ]
        return evidence, expected, scale

    def _outlier_share(self, x: float, noise: float) -> float:
        """The recent share of values far from the level, this one included."""
        outlier = 1.0 if abs(x - self._level.level) > _OUTLIER_NOISES * noise else 0.0
        self._outliers.update(outlier)
        return self._outliers.get()

    def _calibrate(self, evidence: list[float | None]) -> tuple[float, str | None, float]:
        """The surprise (the largest calibrated evidence), its kind, and the onset surprise."""
        surprise = onset = 0.0
        kind = None
        for index, value in enumerate(evidence):
            if value is None:
                continue
            calibrator = self._calibrators[index]
            nats = calibrator.surprisal(value)
            if nats > surprise:
                surprise = nats
                kind = KINDS[index]
            if nats > onset and _ONSET[index]:
                onset = nats
            calibrator.learn(value)
        return surprise, kind, onset

    def _alerting(self, surprise: float, onset: float) -> float:
        """The surprise that counts for alerting: the onset's rise, an episode's first high
        point, or ``episode_nats`` when a sustained episode has added up to ``sustain_nats``."""
        rise = onset - self._previous
        self._previous = onset
        level = self.params.episode_nats
        if self._sustained.observe(surprise) and rise < level:
            rise = level
        if surprise >= level and not self._in_episode:
            self._in_episode = True
            return surprise if surprise > rise else rise
        if surprise < 0.5 * level:
            self._in_episode = False
        return rise

    def _beyond(self, ts: float, x: float, tiny: float) -> float:
        """How far ``x`` leaves the range so far, in ranges, when that counts (else 0).

        It counts once the range has seen a whole day (a daily cycle sets it), beyond
        ``range_margin`` of the range and beyond ``_RANGE_NOISES`` noise scales, so the slow
        growth of a noisy series' record extremes does not alert.
        """
        envelope = self._range
        width = envelope.width
        excursion = envelope.observe(x)
        if ts - self._first_ts < DAY or width <= tiny:
            return 0.0
        floor = _RANGE_NOISES * (self._level.noise + tiny)
        if excursion <= self.params.range_margin * width or excursion <= floor:
            return 0.0
        return excursion / width

    def _learn(
        self, x: float, tiny: float, day_slot: int, week_slot: int, phase: float
    ) -> None:
        level = self._level
        level.learn(x)
        n = self._n
        if n > _ACTIVE_AFTER:
            noise = level.noise + tiny
            self._density.learn(x, noise)
            self._phase_density.learn(x, phase, noise)
        self._week.learn(week_slot, x, n)
        self._day.learn(day_slot, x, n)

    def _finish(
        self,
        ts: float,
        x: float,
        alerting: float,
        surprise: float,
        kind: str | None,
        expected: float,
        scale: float,
    ) -> Scored:
        params = self.params
        recent = self._recent
        recent.append((ts, expected, scale))
        if len(recent) > _RECENT:
            del recent[0]
        ready = self._n >= params.warmup
        if not ready or alerting < _NEGLIGIBLE:
            alerting = 0.0
        start = 0.5 * params.score_scale
        alerting = self._quiet.gate(alerting, x >= expected, start)
        alerting = self._habits.gate(ts, alerting, x >= expected, start)
        alerting = self._alert_rate.gate(alerting, start)
        if alerting >= params.episode_nats:
            self._sustained.alerted()
        muted = None
        if ready and alerting > 0.0 and self._feedback.alarms and scale > 0.0:
            alarm = self._feedback.muting(ts, (x - expected) / scale)
            if alarm is not None:
                muted = alarm.id
                alerting = 0.0
        score = score_from_surprisal(alerting, params.score_scale)
        half = params.band_z * _SIGMA_PER_MAD * scale
        return Scored(ts, x, score, surprise, expected, expected - half, expected + half,
                      kind, ready, muted)


def _sustained_surprise(params: DetectorParams) -> SustainedSurprise:
    """The CUSUM of surprise a detector with ``params`` keeps (capped at ``episode_nats``)."""
    return SustainedSurprise(params.sustain_allowance, params.sustain_nats, params.episode_nats)


def _alert_rate(params: DetectorParams) -> AlertRate:
    """The count of recent alerts a detector with ``params`` keeps."""
    return AlertRate(params.alert_memory, params.alert_discount)


def _pattern(profile: SlotProfile, slot: int, x: float, spread: float, tiny: float) -> float | None:
    """Smoothed residual from a slot profile, when the profile explains the series."""
    if not profile.ready(slot):
        return None
    scale = profile.scale + tiny
    profile.smooth.update((x - profile.mean[slot]) / scale)
    if profile.scale >= _PATTERN_GATE * spread:
        return None
    return abs(profile.smooth.get())


def _from_dict(x: Mapping[Any, Any]) -> tuple[float, float] | None:
    """(ts, value) of a River-style reading; None when either is missing."""
    ts, value = x.get("ts"), x.get("value")
    if ts is None or value is None:
        return None
    if isinstance(ts, datetime):
        ts = (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).timestamp()
    return _reading("ts", ts), _reading("value", value)


def _reading(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise InvalidDetectorInput(name, value, "must be a finite number")
    return number
