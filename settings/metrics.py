"""The ``metrics:`` section of config.yaml: where each component serves Prometheus ``/metrics``.

Frozen pydantic model, no I/O. Each long-running component (bridge, flow, feed, recorder,
dashboard, sources) listens on its own port, so they can share one machine (``cityheart up``)::

    metrics:
      enabled: true
      host: 127.0.0.1
      ports: {bridge: 9110, flow: 9120, feed: 9130, recorder: 9140, dashboard: 9150,
             sources: 9160}

``port`` (usually set from ``CITYHEART_METRICS_PORT`` in a container, where each component has
a network namespace of its own) overrides ``ports`` for whichever component reads it. Port 0
picks a free port (tests). The n-th process of a component on one machine listens on its port
+ n (:meth:`MetricsSettings.port_of`; the defaults are ten apart), so the flow processes of one
Bytewax cluster and the members of a bridge do not collide.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["METRICS_COMPONENTS", "MetricsPorts", "MetricsSettings"]

Component = Literal["bridge", "flow", "feed", "recorder", "dashboard", "sources"]
METRICS_COMPONENTS: tuple[str, ...] = (
    "bridge", "flow", "feed", "recorder", "dashboard", "sources")
"""The components that serve ``/metrics``."""

_Port = Annotated[int, Field(ge=0, le=65535)]


class MetricsPorts(BaseModel):
    """The ``/metrics`` port of each component (0: any free port)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bridge: _Port = 9110
    flow: _Port = 9120
    feed: _Port = 9130
    recorder: _Port = 9140
    dashboard: _Port = 9150
    sources: _Port = 9160


class MetricsSettings(BaseModel):
    """Prometheus metrics: on or off, the address, and each component's port."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    host: str = "127.0.0.1"
    ports: MetricsPorts = MetricsPorts()
    port: _Port | None = None
    """One port for whichever component reads these settings (overrides ``ports``)."""

    def port_of(self, component: str, index: int = 0) -> int:
        """The port process ``index`` of ``component`` listens on (0 stays 0: any free port)."""
        if component not in METRICS_COMPONENTS:
            msg = f"component {component!r} is not one of {list(METRICS_COMPONENTS)}"
            raise ValueError(msg)
        base = self.port if self.port is not None else int(getattr(self.ports, component))
        return base + index if base else 0
