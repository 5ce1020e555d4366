"""Start a component's Prometheus ``/metrics`` server (settings ``metrics:``) around its run.

    with component_metrics(settings, "bridge") as server:   # None when metrics are off
        run_bridge(settings)

    cli: _run(config, verbose, with_metrics("bridge", run_bridge))
    metrics_urls(settings, ("bridge", "flow"))   # {"bridge": "http://127.0.0.1:9110/metrics", ...}

The recorder also runs :class:`connectors.pipeline_watch.PipelineWatch` (window latency and
open incidents): it is the one process every deployment has exactly one of. A port already in
use is logged as an error and the component runs without ``/metrics`` (Prometheus then shows
the target down): metrics never stop the city.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator

from connectors.metrics import MetricsServer, serve_metrics
from connectors.pipeline_watch import PipelineWatch
from models.errors import ConnectorError
from settings.config import Settings
from settings.metrics import METRICS_COMPONENTS

__all__ = ["component_metrics", "flow_metrics", "metrics_urls", "with_metrics"]

log = logging.getLogger(__name__)

Action = Callable[[Settings], int | None]


@contextlib.contextmanager
def component_metrics(
    settings: Settings, component: str, *, index: int = 0
) -> Iterator[MetricsServer | None]:
    """Serve ``/metrics`` for process ``index`` of ``component`` while the block runs."""
    metrics = settings.metrics
    if not metrics.enabled:
        yield None
        return
    port = metrics.port_of(component, index)
    try:
        server: MetricsServer | None = serve_metrics(metrics.host, port)
    except ConnectorError as exc:
        log.error("%s: running without /metrics: %s", component, exc)
        server = None
    if server is not None:
        log.info("%s: metrics at %s", component, server.url)
    watch = _watch(settings) if component == "recorder" else None
    try:
        yield server
    finally:
        if watch is not None:
            watch.stop()
        if server is not None:
            server.close()


def _watch(settings: Settings) -> PipelineWatch | None:
    topics = settings.kafka.topics
    watch = PipelineWatch(
        settings.kafka.bootstrap, vitals_topic=topics.vitals, incidents_topic=topics.incidents
    )
    try:
        watch.start()
    except ConnectorError as exc:
        log.error("recorder: no window latency or open incidents metrics: %s", exc)
        return None
    return watch


def flow_metrics(
    settings: Settings, process_id: int | None
) -> contextlib.AbstractContextManager[MetricsServer | None]:
    """:func:`component_metrics` of flow process ``process_id`` (None: the only one); none
    for a parent that starts a local cluster (``flow.processes`` > 1): each member serves its
    own, on the flow port + its process id."""
    if process_id is None and settings.flow.processes > 1:
        return contextlib.nullcontext()
    return component_metrics(settings, "flow", index=process_id or 0)


def with_metrics(component: str, action: Action) -> Action:
    """``action`` (a component's run function) with its ``/metrics`` served while it runs."""

    def run(settings: Settings) -> int | None:
        with component_metrics(settings, component):
            return action(settings)

    return run


def metrics_urls(settings: Settings, components: Iterable[str]) -> dict[str, str]:
    """The ``/metrics`` URL of each of ``components`` that serves one (none when off)."""
    metrics = settings.metrics
    if not metrics.enabled:
        return {}
    host = f"[{metrics.host}]" if ":" in metrics.host else metrics.host
    return {
        name: f"http://{host}:{metrics.port_of(name)}/metrics"
        for name in components
        if name in METRICS_COMPONENTS and metrics.port_of(name)
    }
