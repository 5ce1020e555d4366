"""Calibration: any non-negative evidence becomes a surprisal that means the same everywhere.

A detector measures very different things (a robust z-score, a density surprisal, a smoothed
seasonal residual) on very different series. :class:`TailCalibrator` learns, online, the upper tail
of one evidence on one series and answers "how surprising is this value, in nats" with the
peaks-over-threshold model of extreme value theory (the streaming form of SPOT, Siffer et al.,
KDD 2017)::

    tail = TailCalibrator(quantile=0.98, memory=2000)
    for value in evidence:
        s = tail.surprisal(value)     # 0 below the 98 % quantile, then grows with the excess
        tail.learn(value)             # score first, then learn: no look-ahead

Above the tracked ``quantile`` ``u`` the excess follows a generalised Pareto distribution whose
shape ``xi`` (clamped to [0, 0.45]) and scale come from the method of moments on exponentially
weighted moments of the excesses, so heavy-tailed evidence (bursty counts) is not over-scored and
light-tailed evidence (Gaussian noise) is not under-scored. The surprisal is
``log(1 + xi * excess / sigma) / xi`` (``excess / sigma`` when ``xi`` is 0): the negative log of
the tail probability beyond ``u``, up to the constant ``-log(1 - quantile)``. The quantile is
tracked by stochastic gradient steps proportional to the tail scale, so the calibrator needs no
units and no data range. It needs :data:`READY` values before it answers anything but 0.

:func:`score_from_surprisal` maps a surprisal in ``[0, inf)`` into a score in ``[0, 1)`` that
never reaches 1 (``s / (s + scale)``), so scores of very different events stay apart.
"""

from __future__ import annotations

import math

__all__ = ["READY", "TailCalibrator", "score_from_surprisal", "surprisal_from_score"]

#: Values a calibrator sees before it answers anything but 0.
READY = 30
_INIT = 20           # values collected to start the quantile and the tail scale
_MAX_SHAPE = 0.45    # heaviest tail allowed (a GPD with xi >= 0.5 has no finite variance)
_EXCESS_CAP = 50.0   # one excess moves the tail moments by at most this many tail scales
_MAX_STEP = 0.2      # fastest update of the tail moments
_MIN_SCALE = 0.05    # tail scale floor: excesses of a few hundredths are noise


class TailCalibrator:
    """The upper tail of one evidence on one series, learnt online; picklable, ~100 bytes."""

    # The quantile is tracked here, not with river.stats: Quantile (P-square) never forgets,
    # so the tail would not follow a series that changes, and RollingQuantile keeps the whole
    # window (3000 floats for each of the eight evidences, ~200 KB against ~100 bytes here).

    __slots__ = ("_init", "_mean", "_msq", "_n", "_u", "quantile", "rate")

    def __init__(self, quantile: float = 0.98, memory: int = 2000) -> None:
        self.quantile = quantile
        self.rate = 1.0 / memory
        self._n = 0
        self._u = 0.0
        self._mean = 0.0   # mean excess over u
        self._msq = 0.0    # mean squared excess over u
        self._init: list[float] | None = []

    @property
    def seen(self) -> int:
        """How many values the calibrator has learnt."""
        return self._n

    @property
    def threshold(self) -> float:
        """The current estimate of the ``quantile`` of the evidence."""
        return self._u

    def surprisal(self, value: float) -> float:
        """Nats of surprise of ``value``: 0 at or below the tracked quantile."""
        if self._n < READY or value <= self._u:
            return 0.0
        excess = value - self._u
        mean = self._mean
        if mean < _MIN_SCALE:
            mean = _MIN_SCALE
        var = self._msq - mean * mean
        shape = 0.5 * (1.0 - mean * mean / var) if var > 0.0 else 0.0
        if shape < 1e-3:
            return excess / mean
        if shape > _MAX_SHAPE:
            shape = _MAX_SHAPE
        return math.log1p(shape * excess / (mean * (1.0 - shape))) / shape

    def learn(self, value: float) -> None:
        """Update the quantile and the tail moments with one value."""
        n = self._n = self._n + 1
        if self._init is not None:
            self._start(value)
            return
        rate = 1.0 / n if n * self.rate < 1.0 else self.rate
        q = 1.0 - self.quantile
        mean = self._mean
        if value > self._u:
            excess = value - self._u
            if excess > _EXCESS_CAP * mean:
                excess = _EXCESS_CAP * mean
            step = rate / q
            if step > _MAX_STEP:
                step = _MAX_STEP
            self._mean = mean + step * (excess - mean)
            self._msq += step * (excess * excess - self._msq)
            self._u += rate * mean * (1.0 - q) / q
        else:
            self._u -= rate * mean

    def _start(self, value: float) -> None:
        init = self._init
        assert init is not None
        init.append(value)
        if len(init) < _INIT:
            return
        ranked = sorted(init)
        self._init = None
        self._u = ranked[15]
        spread = (ranked[19] - ranked[5]) / 4.0 + 1e-9 * (abs(ranked[10]) + 1e-9)
        self._mean = spread
        self._msq = 2.0 * spread * spread


def score_from_surprisal(surprisal: float, scale: float) -> float:
    """A surprisal in nats as a score in [0, 1): 0 for 0, 0.5 at ``scale``, never 1."""
    if surprisal <= 0.0:
        return 0.0
    return surprisal / (surprisal + scale)


def surprisal_from_score(score: float, scale: float) -> float:
    """The inverse of :func:`score_from_surprisal` (``inf`` for a score of 1 or more)."""
    if score <= 0.0:
        return 0.0
    if score >= 1.0:
        return math.inf
    return scale * score / (1.0 - score)
