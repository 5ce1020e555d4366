"""The ``anomaly:`` section of config.yaml: when the flow's anomaly detectors raise alerts.

The flow keeps one :class:`~models.anomaly.AnomalyDetector` per district and kind, fed the
mean of its readings over each ``interval_s`` of event time, and with ``per_device`` one per
device, fed that device's mean. A detector's score is in [0, 1) and means the same for every
kind, so one ``threshold`` serves all of them::

    anomaly:
      enabled: true
      threshold: 0.5      # warning at or above this score
      critical: 0.8       # critical at or above this one
      per_device: true
      interval_s: 300     # one point per series per 5 minutes (0: per flow window)
      warmup: 200         # points a series must have seen before it may alert
      detector: cityheart # or river.HalfSpaceTrees / river.GaussianScorer (see
                          # models.anomaly.river_detectors for their limits)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AnomalySettings"]


class AnomalySettings(BaseModel):
    """Anomaly alerts: score thresholds, per-device detectors on or off, warm-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    critical: Annotated[float, Field(gt=0, lt=1)] = 0.8
    per_device: bool = True
    interval_s: Annotated[float, Field(ge=0)] = 300.0
    warmup: Annotated[int, Field(ge=1)] = 200
    detector: Literal["cityheart", "river.HalfSpaceTrees", "river.GaussianScorer"] = "cityheart"

    @model_validator(mode="after")
    def _ordered(self) -> AnomalySettings:
        if self.critical < self.threshold:
            msg = f"critical ({self.critical}) must be at or above threshold ({self.threshold})"
            raise ValueError(msg)
        return self
