"""The replay dataflow: the city flow's own logic over stored readings, into history.

    flow = build_replay_flow(settings, options, since=t1, until=t2)

After a rule or indicator change, this backfills ``vitals``, ``indicators`` and ``alerts`` for a
past range. It is :func:`flows.city.build_flow` unchanged, fed by
:class:`~connectors.storage.replay_source.StoredReadingsSource` and writing to PostgreSQL instead
of Kafka (a backfill is history, not news: nothing is pushed to operators). Alert ids are
deterministic and stored alerts are kept (ON CONFLICT DO NOTHING), so a replay never duplicates
an alert; vital-sign windows and indicators are replaced by the re-computed ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from bytewax.dataflow import Dataflow

from connectors.storage.options import StorageOptions
from connectors.storage.replay_source import StoredReadingsSource
from connectors.storage.rows import Row, alert_row, vitals_topic_row
from connectors.storage.sinks import RoutedPostgresSink
from flows.city import build_flow
from settings.config import Settings

__all__ = ["build_replay_flow"]

log = logging.getLogger(__name__)


def _vitals(record: Any) -> tuple[str, Row]:
    return vitals_topic_row(orjson.loads(record.value))


def _alert(record: Any) -> tuple[str, Row]:
    return "alerts", alert_row(orjson.loads(record.value))


def _no_incident(_record: Any) -> None:
    """Incidents are not backfilled: people act on the live ones."""


def _dead_letter(record: Any) -> None:
    reason = dict(record.headers).get("reason", b"?").decode()
    log.warning("replay: a stored reading was refused by the flow (%s): %r", reason, record.value)


def build_replay_flow(
    settings: Settings,
    options: StorageOptions,
    *,
    since: float,
    until: float,
    districts: Sequence[str] = (),
    kinds: Sequence[str] = (),
) -> Dataflow:
    """The city flow over the readings stored in ``[since, until)``, writing to PostgreSQL."""
    return build_flow(
        settings,
        source=StoredReadingsSource(
            options, since=since, until=until, districts=districts, kinds=kinds
        ),
        vitals_sink=RoutedPostgresSink(options, _vitals),
        alerts_sink=RoutedPostgresSink(options, _alert),
        incidents_sink=RoutedPostgresSink(options, _no_incident),
        dead_letter_sink=RoutedPostgresSink(options, _dead_letter),
    )
