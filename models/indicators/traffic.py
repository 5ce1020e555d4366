"""Traffic congestion per district: the travel-time index or the share of slow segments.

The travel-time index (TTI) is free-flow speed over observed speed: 1.0 means traffic moves at
free flow, 2.0 that a trip takes twice as long. The segment share is the fraction of road
segments (one traffic_speed device each) slower than ``slow_fraction`` of free flow. Both give
the same ordered levels, :data:`LEVELS`::

    params = TrafficParams(free_flow_kmh=50.0)
    travel_time_index(25.0, params)          # value 2.0, level "jammed"
    segment_share([48, 20, 45, 12], params)  # value 0.5, level "jammed" (2 of 4 below 25 km/h)

Default TTI bounds: free below 1.25, slow from 1.25, congested from 1.5, jammed from 2.0 (a value
on a bound takes the worse level). Sub-score: 100 at TTI 1.0, 75 / 50 / 25 at the three bounds,
0 at ``worst_index`` (3.0), linear between; for the share: 100 at 0, 0 at a share of 1.
A stopped road (observed speed 0) reads ``max_index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.indicators.levels import Band, Indicator, InvalidIndicatorInput, Scale, finite, positive

__all__ = ["LEVELS", "TrafficParams", "segment_share", "travel_time_index"]

LEVELS = ("free", "slow", "congested", "jammed")
"""Traffic levels, free-flowing first."""


@dataclass(frozen=True, slots=True)
class TrafficParams:
    """One district's free-flow speed and the city's congestion level bounds."""

    free_flow_kmh: float
    tti_bounds: tuple[float, float, float] = (1.25, 1.5, 2.0)
    worst_index: float = 3.0
    max_index: float = 10.0
    slow_fraction: float = 0.5
    share_bounds: tuple[float, float, float] = (0.1, 0.25, 0.5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "free_flow_kmh", positive("free_flow_kmh", self.free_flow_kmh))
        self.tti_band.check()
        if self.max_index < self.worst_index:
            reason = f"must be at least worst_index ({self.worst_index})"
            raise InvalidIndicatorInput("max_index", self.max_index, reason)
        if not 0 < self.slow_fraction <= 1:
            raise InvalidIndicatorInput("slow_fraction", self.slow_fraction, "must be in (0, 1]")
        self.share_band.check()

    @property
    def tti_band(self) -> Band:
        """Where the levels begin over the travel-time index."""
        return Band("tti_bounds", LEVELS, self.tti_bounds, best=1.0, worst=self.worst_index)

    @property
    def share_band(self) -> Band:
        """Where the levels begin over the share of slow segments."""
        return Band("share_bounds", LEVELS, self.share_bounds, best=0.0, worst=1.0)

    @property
    def tti_scale(self) -> Scale:
        """Levels and sub-score over the travel-time index."""
        return self.tti_band.scale

    @property
    def share_scale(self) -> Scale:
        """Levels and sub-score over the share of slow segments."""
        return self.share_band.scale


def travel_time_index(observed_kmh: float, params: TrafficParams) -> Indicator:
    """The district's TTI from its observed mean speed (km/h), capped at ``max_index``."""
    observed = finite("observed_kmh", observed_kmh)
    if observed < 0:
        raise InvalidIndicatorInput("observed_kmh", observed_kmh, "must not be negative")
    limit = params.free_flow_kmh / params.max_index
    index = params.max_index if observed <= limit else params.free_flow_kmh / observed
    return params.tti_scale.indicator(
        "traffic", index, "tti",
        method="tti", observed_kmh=observed, free_flow_kmh=params.free_flow_kmh,
    )


def segment_share(speeds_kmh: Sequence[float], params: TrafficParams) -> Indicator:
    """The share of segments whose speed is below ``slow_fraction`` of free flow."""
    if not speeds_kmh:
        raise InvalidIndicatorInput("speeds_kmh", list(speeds_kmh), "need at least one segment")
    threshold = params.slow_fraction * params.free_flow_kmh
    slow = sum(1 for s in speeds_kmh if finite("speeds_kmh", s) < threshold)
    share = slow / len(speeds_kmh)
    return params.share_scale.indicator(
        "traffic", share, "share",
        method="segment_share", segments=len(speeds_kmh), slow_segments=slow,
        threshold_kmh=threshold, free_flow_kmh=params.free_flow_kmh,
    )
