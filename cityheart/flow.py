"""``cityheart flow``: run the Bytewax dataflow on Kafka until SIGINT or SIGTERM.

    run_flow(settings)      # creates missing topics, then runs readings -> vitals, alerts
                            # (vitals: window records and indicator records)

or under bytewax's own runner, with the CITYHEART_* environment overrides applied::

    python -m bytewax.run "cityheart.flow:build_from_config('config.yaml')"

SIGINT and SIGTERM stop the dataflow and :func:`run_flow` returns normally (exit code 0). Every
batch the sinks took was confirmed by Kafka before that; windows still open are not emitted
(the next run reads the topic again from the beginning).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.errors import BytewaxRuntimeError
from bytewax.run import cli_main

from cityheart.settings import load
from connectors.kafka import create_topics
from flows.city import build_kafka_flow
from models.config import Settings
from models.errors import CityheartError

__all__ = ["build_from_config", "run_dataflow", "run_flow"]

log = logging.getLogger(__name__)


def build_from_config(path: str) -> Dataflow:
    """The Kafka dataflow of config.yaml at ``path`` plus environment overrides."""
    return build_kafka_flow(load(path))


def run_flow(settings: Settings) -> None:
    """Create the topics if missing and run the dataflow until SIGINT or SIGTERM."""
    kafka = settings.kafka
    topics = kafka.topics
    create_topics(
        kafka.bootstrap,
        settings.kafka_topic_names(),
        kafka.partitions,
    )
    flow = build_kafka_flow(settings)
    log.info(
        "flow: %s -> %s (windows and indicators), %s (dead letters %s, read back for "
        "out-of-range devices) at %s, %d worker(s), %g s windows, AQI %s",
        topics.readings, topics.vitals, topics.alerts, topics.dead_letter, kafka.bootstrap,
        settings.flow.workers, settings.flow.window_s, settings.indicators.aqi.standard,
    )
    run_dataflow(flow, workers=settings.flow.workers, name="flow")


def run_dataflow(flow: Any, *, workers: int, name: str) -> None:
    """Run a Bytewax dataflow in this process until SIGINT or SIGTERM (then return quietly).

    Raises the CityheartError that stopped the flow (e.g. Kafka refused a record) as itself.
    """
    # bytewax stops on KeyboardInterrupt (it checks Python's signal handlers as it runs):
    # make SIGTERM raise one too (handlers can only be set on the main thread)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if on_main_thread else None
    try:
        # process_id and addresses: run as a one-process cluster even with one worker; bytewax's
        # single-worker path reports Ctrl-C as a Rust panic instead of a KeyboardInterrupt
        cli_main(flow, workers_per_process=workers, process_id=0, addresses=[])
    except KeyboardInterrupt:
        log.info("%s stopped by signal", name)
    except BytewaxRuntimeError as exc:
        cause = _cause(exc, (KeyboardInterrupt, CityheartError))
        if isinstance(cause, KeyboardInterrupt):
            log.info("%s stopped by signal", name)
            return
        if isinstance(cause, CityheartError):  # e.g. Kafka refused a record: name it plainly
            log.debug("dataflow failed", exc_info=exc)
            raise cause from None
        raise
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _cause(
    exc: BaseException, kinds: tuple[type[BaseException], ...]
) -> BaseException | None:
    """The first exception of one of ``kinds`` in ``exc``'s cause chain (bytewax wraps errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None
