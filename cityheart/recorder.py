"""``cityheart recorder``: keep the city's history, from Kafka into PostgreSQL, until a signal.

Opens the database once (connects, detects TimescaleDB and logs which, migrates the schema),
starts plain PostgreSQL's rollup and retention scheduler when TimescaleDB is absent, and runs
:func:`flows.recorder.build_recorder_flow` in this process.
"""

from __future__ import annotations

import logging

from cityheart.flow import run_dataflow
from connectors.kafka import create_topics
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from flows.recorder import build_recorder_flow
from settings.config import Settings

__all__ = ["run_recorder"]

log = logging.getLogger(__name__)


def run_recorder(settings: Settings) -> None:
    """Prepare the database, then record until SIGINT or SIGTERM."""
    topics = settings.kafka.topics
    create_topics(
        settings.kafka.bootstrap,
        [topics.readings, topics.vitals, topics.alerts, topics.incidents, topics.reports],
        settings.kafka.partitions,
    )
    options = StorageOptions.from_database(settings.database)
    with Storage.open(options) as storage:
        log.info(
            "recorder: %s, %s, %s, %s, %s -> %s", topics.readings, topics.vitals, topics.alerts,
            topics.incidents, topics.reports, options.masked_url,
        )
        flow = build_recorder_flow(settings.kafka, options)
        if storage.flavour.timescale:
            run_dataflow(flow, workers=1, name="recorder")
        else:
            with storage.maintenance():
                run_dataflow(flow, workers=1, name="recorder")
