"""``cityheart sources run``: the poller of the registry, its health on ``/metrics``, READY.

    run_poller(settings, Path("sources.yaml"), health_path=..., environ=dict(os.environ),
               stop=threading.Event(), notifier=Notifier.from_environ(os.environ))
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import REGISTRY

from connectors.kafka import create_topics
from connectors.notify import Notifier
from connectors.sources.health import SourcesHealth
from connectors.sources.poller import Poller
from connectors.sources.registry import SourcesFile
from settings.config import Settings

__all__ = ["run_poller"]

log = logging.getLogger(__name__)


def run_poller(
    settings: Settings, path: Path, *, health_path: Path, environ: Mapping[str, str],
    stop: threading.Event, notifier: Notifier | None = None,
) -> None:
    """Poll the sources of ``path`` until ``stop`` is set; say READY=1 once polling."""
    topics = settings.kafka.topics
    create_topics(settings.kafka.bootstrap,
                  [topics.readings, topics.dead_letter, topics.rejected],
                  settings.kafka.partitions)
    registry = SourcesFile(path, check_s=settings.sources.check_s)
    poller = Poller(settings, registry, health_path=health_path, environ=environ)
    collector = SourcesHealth(poller.health)
    REGISTRY.register(collector)
    try:
        log.info("sources: polling %d sources of %s", len(registry.specs), path)
        print(f"sources: {len(registry.specs)} in {path}", flush=True)
        (notifier or Notifier(None)).ready()
        poller.run(stop)
        log.info("sources: stopped")
    finally:
        REGISTRY.unregister(collector)
