"""What every indicator shares: ordered level scales, the result type and the input error.

Each indicator module names its levels once, healthiest first, and builds a :class:`Scale` that
turns a value into a level and a 0-100 sub-score (100 = healthy)::

    scale = Scale(("free", "slow", "congested", "jammed"), bounds=(1.25, 1.5, 2.0),
                  best=1.0, worst=3.0)
    scale.level(1.5)     # "congested": a value on a bound takes the worse level
    scale.score(1.5)     # 50.0

The sub-score is piecewise linear through the anchors ``best, bounds[0], ..., bounds[-1], worst``,
which score ``100, 100*(n-1)/n, ..., 100/n, 0`` for ``n`` levels: each level owns an equal slice
of 0-100, so a sub-score of 60 always reads "in the second level, near its better end". Values
beyond ``best`` score 100 and values beyond ``worst`` score 0. A scale whose ``worst`` lies below
its ``best`` runs downwards (lower values are worse).

Every indicator function returns an :class:`Indicator`: value, unit, level, sub-score and the
inputs that explain them, ready for ``as_dict()`` and JSON.

The parameters of a banded indicator (traffic, noise, water level, power, crowd) hold their level
bounds and the ends of the sub-score; each describes them as a :class:`Band`, which checks their
order naming the parameter and gives the :class:`Scale`. Parameters with one band mix in
:class:`Banded` for their ``scale``::

    @dataclass(frozen=True, slots=True)
    class PowerParams(Banded):
        bounds: tuple[float, float, float] = (0.7, 0.9, 1.0)
        worst_ratio: float = 1.2

        def __post_init__(self) -> None:
            self.band.check()      # InvalidIndicatorInput("bounds", ...) when out of order

        @property
        def band(self) -> Band:
            return Band("bounds", LEVELS, self.bounds, best=0.0, worst=self.worst_ratio)

    params.scale.indicator("power", ratio, "ratio", load_mw=88.0)
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from models.errors import CityheartError

__all__ = [
    "Band",
    "Banded",
    "Indicator",
    "InputValue",
    "InvalidIndicatorInput",
    "Scale",
    "finite",
    "increasing",
    "positive",
]

InputValue = float | int | str | bool | None
"""The type of one explaining input of an indicator."""


class InvalidIndicatorInput(CityheartError, ValueError):
    """Raised when an indicator gets a parameter or a measurement it cannot use.

    ``name`` is the parameter (``free_flow_kmh``, ``bounds``, ...), ``value`` what it was and
    ``reason`` what is wrong with it.
    """

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(name, value, reason)
        self.name = name
        self.value = value
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.name}={self.value!r}: {self.reason}"


def finite(name: str, value: float) -> float:
    """``value`` as a float, or InvalidIndicatorInput naming ``name`` when it is not finite."""
    number = float(value)
    if not math.isfinite(number):
        raise InvalidIndicatorInput(name, value, "must be a finite number")
    return number


def positive(name: str, value: float) -> float:
    """``value`` as a float, or InvalidIndicatorInput naming ``name`` unless finite and > 0."""
    number = finite(name, value)
    if number <= 0:
        raise InvalidIndicatorInput(name, value, "must be greater than 0")
    return number


@dataclass(frozen=True, slots=True)
class Scale:
    """Ordered levels over one value axis, and the piecewise-linear 0-100 sub-score.

    ``names`` run from healthiest to worst; ``bounds`` (one fewer) are where each next level
    begins, strictly between ``best`` (scores 100) and ``worst`` (scores 0). With
    ``worse_on_bound`` (the default, like the alert thresholds' "at or above") a value equal to a
    bound takes the worse level; without it, the better one (a limit that may be reached but not
    exceeded).
    """

    names: tuple[str, ...]
    bounds: tuple[float, ...]
    best: float
    worst: float
    worse_on_bound: bool = True

    def __post_init__(self) -> None:
        if len(self.names) < 2 or len(set(self.names)) != len(self.names):
            raise InvalidIndicatorInput("names", self.names, "need two or more distinct levels")
        if len(self.bounds) != len(self.names) - 1:
            reason = f"need {len(self.names) - 1} bounds for levels {list(self.names)}"
            raise InvalidIndicatorInput("bounds", self.bounds, reason)
        anchors = [finite("anchors", a) for a in self._anchors()]
        if not all(a < b for a, b in pairwise(anchors)):
            reason = (
                f"best ({self.best}), bounds and worst ({self.worst}) must be strictly "
                "monotonic, from healthy to worst"
            )
            raise InvalidIndicatorInput("bounds", self.bounds, reason)

    @property
    def _sign(self) -> float:
        return 1.0 if self.worst > self.best else -1.0

    def _anchors(self) -> list[float]:
        """best, bounds, worst, flipped so that larger is always worse."""
        return [self._sign * a for a in (self.best, *self.bounds, self.worst)]

    def index(self, value: float) -> int:
        """The position in ``names`` of ``value``'s level (0 = healthiest)."""
        bounds = self._anchors()[1:-1]
        x = self._sign * value
        return bisect_right(bounds, x) if self.worse_on_bound else bisect_left(bounds, x)

    def level(self, value: float) -> str:
        """The name of ``value``'s level."""
        return self.names[self.index(value)]

    def score(self, value: float) -> float:
        """``value``'s sub-score: 100 at ``best``, 0 at ``worst``, linear between anchors."""
        anchors = self._anchors()
        x = self._sign * value
        if x <= anchors[0]:
            return 100.0
        if x >= anchors[-1]:
            return 0.0
        segment = bisect_right(anchors, x) - 1
        step = 100.0 / len(self.names)
        low, high = anchors[segment], anchors[segment + 1]
        return 100.0 - step * (segment + (x - low) / (high - low))

    def score_at_level(self, index: int) -> float:
        """The sub-score where level ``index`` begins (100 for the healthiest level)."""
        return 100.0 - 100.0 * index / len(self.names)

    def rank(self, name: str) -> int:
        """The position of level ``name`` in ``names``; InvalidIndicatorInput if unknown."""
        if name not in self.names:
            raise InvalidIndicatorInput("level", name, f"is not one of {list(self.names)}")
        return self.names.index(name)

    def indicator(
        self, name: str, value: float, unit: str, /, *, at: float | None = None,
        **inputs: InputValue,
    ) -> Indicator:
        """The Indicator of ``value`` with the level and sub-score of ``at`` (default ``value``)."""
        x = value if at is None else at
        return Indicator.of(name, value, unit, self.level(x), self.score(x), **inputs)


@dataclass(frozen=True, slots=True)
class Band:
    """An indicator parameter's level bounds, strictly between ``best`` and ``worst``.

    ``param`` names the parameter holding ``bounds`` in errors; the rest is the :class:`Scale`.
    """

    param: str
    levels: tuple[str, ...]
    bounds: tuple[float, ...]
    best: float
    worst: float
    worse_on_bound: bool = True

    def check(self) -> None:
        """InvalidIndicatorInput naming ``param`` unless best, bounds, worst strictly increase."""
        increasing(self.param, (self.best, *self.bounds, self.worst))

    @property
    def scale(self) -> Scale:
        """The levels and sub-score over the band."""
        return Scale(self.levels, self.bounds, self.best, self.worst, self.worse_on_bound)


class Banded:
    """Mixin of indicator parameters with one :class:`Band`: they define ``band``."""

    __slots__ = ()

    @property
    def band(self) -> Band:
        """Where the levels begin and the sub-score's ends."""
        raise NotImplementedError

    @property
    def scale(self) -> Scale:
        """Levels and sub-score over the band."""
        return self.band.scale


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator's result: value, unit, level, 0-100 sub-score and what explains them.

    ``name`` is the sub-index it feeds (``traffic``, ``noise``, ``water_level``, ...);
    ``inputs`` are (name, value) pairs such as ``("free_flow_kmh", 50.0)``.
    """

    name: str
    value: float
    unit: str
    level: str
    score: float
    inputs: tuple[tuple[str, InputValue], ...] = ()

    @classmethod
    def of(
        cls, name: str, value: float, unit: str, level: str, score: float, **inputs: InputValue
    ) -> Indicator:
        """An Indicator with its explaining inputs given as keyword arguments."""
        return cls(name, value, unit, level, score, tuple(inputs.items()))

    def input(self, name: str) -> InputValue:
        """The explaining input ``name``; KeyError naming it when there is none."""
        for key, value in self.inputs:
            if key == name:
                return value
        msg = f"indicator {self.name!r} has no input {name!r}; it has {[k for k, _ in self.inputs]}"
        raise KeyError(msg)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form: name, value, unit, level, score and an inputs object."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "level": self.level,
            "score": round(self.score, 1),
            "inputs": dict(self.inputs),
        }


def increasing(name: str, values: Iterable[float]) -> tuple[float, ...]:
    """``values`` as finite floats in strictly increasing order, or InvalidIndicatorInput."""
    numbers = tuple(finite(name, v) for v in values)
    if not all(a < b for a, b in pairwise(numbers)):
        raise InvalidIndicatorInput(name, numbers, "must be strictly increasing")
    return numbers
