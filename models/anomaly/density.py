"""Novelty: how rarely a series has taken a value (overall, or at this time of day) recently.

Both classes keep a small decaying mixture density: at most ``prototypes`` centres, each with a
weight that fades by ``1 / memory`` per value, and a Laplace kernel whose width is
``width`` noise scales. The surprisal of a value is the negative log of its density (relative to
the total weight), so a value in a region the series visits often scores a few nats, a value
seen once in ``memory`` points about ``log(memory)``, and a value far from everything grows
linearly with the distance. A value within one kernel width (L-infinity) of its nearest centre
pulls that centre a little (at most ``_MAX_STEP`` of the way, so a slow ramp leaves a trail of
new centres instead of dragging one along); otherwise it becomes a new centre, replacing the
lightest one when all are taken::

    density = ValueDensity(prototypes=32, width=0.5, memory=2000)
    s = density.surprisal(x, noise)    # nats; noise = the series' typical deviation
    density.learn(x, noise)

:class:`PhaseDensity` does the same over (value, time of day): the phase is circular, with a
kernel width of ``phase_width`` of a day, so "20 at 08:00" can be rare while 20 and 08:00 are
both common. Weights decay lazily (new weights grow by ``1 / (1 - 1/memory)`` per value and all
are rescaled when they get large), so a value costs O(prototypes) and nothing more.
"""

from __future__ import annotations

import math

__all__ = ["PhaseDensity", "ValueDensity"]

_MAX_STEP = 0.1      # largest fraction of the way a centre moves towards a value
_MIN_STEP = 0.02     # smallest (centres keep adapting a little)
_FAR = 30.0          # kernel distances beyond this contribute nothing
_RESCALE = 1e100


class ValueDensity:
    """A decaying 1-D mixture density over the values of one series."""

    __slots__ = ("centre", "gain", "increment", "prototypes", "total", "weight", "width")

    def __init__(self, prototypes: int = 32, width: float = 0.5, memory: int = 2000) -> None:
        self.prototypes = prototypes
        self.width = width
        self.gain = 1.0 / (1.0 - 1.0 / memory)
        self.centre: list[float] = []
        self.weight: list[float] = []
        self.total = 0.0
        self.increment = 1.0

    def surprisal(self, x: float, noise: float) -> float:
        """Nats of surprise at ``x`` (0 before anything was learnt)."""
        if not self.centre:
            return 0.0
        inverse = 1.0 / (self.width * noise)
        exp = math.exp
        density = 0.0
        nearest = math.inf
        nearest_weight = 1.0
        for centre, weight in zip(self.centre, self.weight, strict=True):
            distance = abs(x - centre) * inverse
            if distance < _FAR:
                density += weight * exp(-distance)
            elif distance < nearest:
                nearest = distance
                nearest_weight = weight
        if density > 0.0:
            return -math.log(density / self.total)
        return nearest + math.log(self.total / nearest_weight)

    def learn(self, x: float, noise: float) -> None:
        """Add ``x`` to the density."""
        self.increment *= self.gain
        increment = self.increment
        centres = self.centre
        best = -1
        best_distance = math.inf
        for index, centre in enumerate(centres):
            distance = abs(x - centre)
            if distance < best_distance:
                best_distance = distance
                best = index
        if best >= 0 and best_distance <= self.width * noise:
            weight = self.weight[best]
            step = min(_MAX_STEP, max(_MIN_STEP, increment / (weight + increment)))
            centres[best] += (x - centres[best]) * step
            self.weight[best] = weight + increment
        else:
            self._add(x, increment)
        self.total += increment
        if increment > _RESCALE:
            self.weight = [weight / increment for weight in self.weight]
            self.total /= increment
            self.increment = 1.0

    def _add(self, x: float, increment: float) -> None:
        if len(self.centre) < self.prototypes:
            self.centre.append(x)
            self.weight.append(increment)
            return
        lightest = self.weight.index(min(self.weight))
        self.total -= self.weight[lightest]
        self.centre[lightest] = x
        self.weight[lightest] = increment


class PhaseDensity:
    """A decaying mixture density over (value, time-of-day phase in [0, 1))."""

    __slots__ = (
        "centre",
        "gain",
        "increment",
        "phase",
        "phase_width",
        "prototypes",
        "total",
        "weight",
        "width",
    )

    def __init__(
        self,
        prototypes: int = 32,
        width: float = 0.5,
        phase_width: float = 0.05,
        memory: int = 2000,
    ) -> None:
        self.prototypes = prototypes
        self.width = width
        self.phase_width = phase_width
        self.gain = 1.0 / (1.0 - 1.0 / memory)
        self.centre: list[float] = []
        self.phase: list[float] = []
        self.weight: list[float] = []
        self.total = 0.0
        self.increment = 1.0

    def surprisal(self, x: float, phase: float, noise: float) -> float:
        """Nats of surprise at ``x`` at ``phase`` (0 before anything was learnt)."""
        if not self.centre:
            return 0.0
        inverse = 1.0 / (self.width * noise)
        inverse_phase = 1.0 / self.phase_width
        exp = math.exp
        density = 0.0
        nearest = math.inf
        nearest_weight = 1.0
        for centre, where, weight in zip(self.centre, self.phase, self.weight, strict=True):
            gap = abs(phase - where)
            if gap > 0.5:
                gap = 1.0 - gap
            distance = abs(x - centre) * inverse + gap * inverse_phase
            if distance < _FAR:
                density += weight * exp(-distance)
            elif distance < nearest:
                nearest = distance
                nearest_weight = weight
        if density > 0.0:
            return -math.log(density / self.total)
        return nearest + math.log(self.total / nearest_weight)

    def learn(self, x: float, phase: float, noise: float) -> None:
        """Add ``(x, phase)`` to the density."""
        self.increment *= self.gain
        increment = self.increment
        reach = self.width * noise
        best = -1
        best_distance = math.inf
        for index, (centre, where) in enumerate(zip(self.centre, self.phase, strict=True)):
            gap = abs(phase - where)
            if gap > 0.5:
                gap = 1.0 - gap
            distance = max(abs(x - centre) / reach, gap / self.phase_width)
            if distance < best_distance:
                best_distance = distance
                best = index
        if best >= 0 and best_distance <= 1.0:
            self._pull(best, x, phase, increment)
        else:
            self._add(x, phase, increment)
        self.total += increment
        if increment > _RESCALE:
            self.weight = [weight / increment for weight in self.weight]
            self.total /= increment
            self.increment = 1.0

    def _pull(self, index: int, x: float, phase: float, increment: float) -> None:
        weight = self.weight[index]
        step = min(_MAX_STEP, max(_MIN_STEP, increment / (weight + increment)))
        self.centre[index] += (x - self.centre[index]) * step
        gap = phase - self.phase[index]
        if gap > 0.5:
            gap -= 1.0
        elif gap < -0.5:
            gap += 1.0
        self.phase[index] = (self.phase[index] + gap * step) % 1.0
        self.weight[index] = weight + increment

    def _add(self, x: float, phase: float, increment: float) -> None:
        if len(self.centre) < self.prototypes:
            self.centre.append(x)
            self.phase.append(phase)
            self.weight.append(increment)
            return
        lightest = self.weight.index(min(self.weight))
        self.total -= self.weight[lightest]
        self.centre[lightest] = x
        self.phase[lightest] = phase
        self.weight[lightest] = increment
