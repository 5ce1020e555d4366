"""The city flow on bytewax's TestingSource/TestingSink with an injected clock (no Kafka).

    out = run_flow(settings, [reading_record(T + 1, 10.0), reading_record(T + 12, 7.0)],
                   clock=lambda: NOW)
    out.vitals        # the window records' JSON values, in the order the flow wrote them
    out.at("aqi", T)  # harbour's AQI indicator record of the window that starts at T

    raw = run_flow_records(settings, items, recovery=RecoveryConfig(str(tmp_path)))
    raw.vitals        # the records as the Kafka sinks would write them (to an ABORT, if any)

The clock stands still unless the test moves it (a callable the source may advance as the
readings arrive), so event time alone moves the watermarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from bytewax.recovery import RecoveryConfig
from bytewax.testing import TestingSink, TestingSource, run_main

from connectors.kafka import KafkaRecord
from flows.city import build_flow
from models.devices import DeviceRegistry
from models.reading_batch import ReadingBatch
from models.readings import Reading
from models.timefmt import iso
from settings.config import Settings

__all__ = [
    "FlowOutputs", "FlowRecords", "batch_record", "reading_record", "run_flow", "run_flow_records",
]


def reading_record(ts: float, value: float, *, device: str = "pm-1", district: str = "harbour",
                   kind: str = "pm25", unit: str = "ug/m3") -> KafkaRecord:
    """A `readings` record exactly as the bridge writes it for one reading: a batch of one."""
    return batch_record([Reading(device, district, kind, value, unit, ts)])


def batch_record(readings: list[Reading]) -> KafkaRecord:
    """A `readings` record exactly as the bridge writes it: a batch, no key."""
    return KafkaRecord(None, ReadingBatch.of(readings).encode())


@dataclass
class FlowOutputs:
    """What one run of the flow wrote: JSON values (and keys) of the vitals topic's window
    and indicator records and of the alerts, the incident and dead-letter records as written
    (the incidents include the copies for the dispatch queues: those name their ``topic``)."""

    vitals: list[dict[str, Any]] = field(default_factory=list)
    indicators: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[KafkaRecord] = field(default_factory=list)
    dead: list[KafkaRecord] = field(default_factory=list)
    vital_keys: list[bytes] = field(default_factory=list)
    indicator_keys: list[bytes] = field(default_factory=list)
    alert_keys: list[bytes] = field(default_factory=list)

    def of(self, indicator: str, district: str = "harbour") -> list[dict[str, Any]]:
        """Every record of ``indicator`` in ``district``, oldest window first."""
        return [r for r in self.indicators
                if r["indicator"] == indicator and r["district"] == district]

    def at(self, indicator: str, start: float, district: str = "harbour") -> dict[str, Any]:
        """The one record of ``indicator`` in ``district`` for the window starting at ``start``."""
        (record,) = [r for r in self.of(indicator, district) if r["window_start"] == iso(start)]
        return record


@dataclass
class FlowRecords:
    """What one run of the flow wrote, as the records its Kafka sinks would have produced."""

    vitals: list[KafkaRecord] = field(default_factory=list)
    alerts: list[KafkaRecord] = field(default_factory=list)
    incidents: list[KafkaRecord] = field(default_factory=list)
    dead: list[KafkaRecord] = field(default_factory=list)


def run_flow_records(settings: Settings, items: Iterable[Any], *,
                     clock: Callable[[], float] | None = None, batch_size: int = 1,
                     rejections: list[Any] | None = None,
                     reports: list[Any] | None = None,
                     recovery: RecoveryConfig | None = None,
                     epoch_interval: timedelta | None = None,
                     registry: DeviceRegistry | None = None) -> FlowRecords:
    """Run the city flow over ``items`` (``readings`` records, or TestingSource.ABORT()) to
    the end of its input, or to an ABORT; the records it wrote.

    ``clock`` is the flow's (None: the wall clock); ``rejections`` (optional: the bridge's
    rejection records) feeds its rejection source; ``recovery`` and ``epoch_interval`` go to
    ``run_main`` (a second run with the same recovery resumes from the snapshot the first left
    at its ABORT); ``registry`` is the device registry.
    """
    out = FlowRecords()
    flow = build_flow(
        settings,
        source=TestingSource(items, batch_size=batch_size),
        vitals_sink=TestingSink(out.vitals),
        alerts_sink=TestingSink(out.alerts),
        incidents_sink=TestingSink(out.incidents),
        dead_letter_sink=TestingSink(out.dead),
        rejection_source=None if rejections is None else TestingSource(rejections),
        reports_source=None if reports is None else TestingSource(reports),
        clock=clock,
        registry=registry,
    )
    run_main(flow, epoch_interval=epoch_interval, recovery_config=recovery)
    return out


def run_flow(settings: Settings, items: Iterable[Any], *, clock: Callable[[], float],
             batch_size: int = 1, rejections: list[Any] | None = None,
             registry: DeviceRegistry | None = None,
             reports: list[Any] | None = None) -> FlowOutputs:
    """Run the city flow over ``items`` (``readings`` records, or TestingSource.ABORT())
    to the end of its input; ``rejections`` (optional: the bridge's rejection records) feeds
    its rejection source; ``registry`` is the device registry; ``reports`` (the reports
    topic's records) its reports source."""
    records = run_flow_records(settings, items, clock=clock, batch_size=batch_size,
                               rejections=rejections, registry=registry, reports=reports)
    out = FlowOutputs(incidents=records.incidents, dead=records.dead)
    for record in records.vitals:
        value = orjson.loads(record.value)
        if value.get("record") == "indicator":
            out.indicators.append(value)
            out.indicator_keys.append(record.key)
        else:
            out.vitals.append(value)
            out.vital_keys.append(record.key)
    out.alerts = [orjson.loads(r.value) for r in records.alerts]
    out.alert_keys = [r.key for r in records.alerts]
    return out
