"""The pulled sources' health on ``/metrics``: a collector over a running poller.

    collector = SourcesHealth(poller.health)      # a callable returning {name: health}
    REGISTRY.register(collector)                  # for as long as the poller runs
    REGISTRY.unregister(collector)

At each scrape, per source (label ``source``):

=================================================== ===========================================
``cityheart_source_up``                             1 when its breaker is closed and its last
                                                    poll succeeded, else 0
``cityheart_source_breaker_open``                   1 open, 0.5 half open (a probe may go),
                                                    0 closed
``cityheart_source_consecutive_errors``             failed polls in a row
``cityheart_source_last_success_timestamp_seconds`` when an answer last reached Kafka
``cityheart_source_lag_seconds``                    now minus the time of the newest reading
                                                    it produced
``cityheart_source_polls_total``                    polls (requests sent)
``cityheart_source_failures_total``                 polls that failed (down, 5xx, not JSON...)
``cityheart_source_readings_total``                 readings produced (each once)
``cityheart_source_duplicates_total``               readings it repeated, not produced again
``cityheart_source_refused_total``                  records dead-lettered
=================================================== ===========================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["SourcesHealth"]

_BREAKER = {"closed": 0.0, "half_open": 0.5, "open": 1.0}
_GAUGES = (
    ("consecutive_errors", "cityheart_source_consecutive_errors", "Failed polls in a row."),
    ("last_success_ts", "cityheart_source_last_success_timestamp_seconds",
     "When the source's answer last reached Kafka (UTC epoch seconds)."),
    ("lag_s", "cityheart_source_lag_seconds",
     "Now minus the time of the newest reading the source produced."),
)
_COUNTERS = (
    ("polls", "cityheart_source_polls", "Polls of the source (requests sent)."),
    ("failures", "cityheart_source_failures", "Polls that failed (down, 5xx, time-out, not JSON)."),
    ("readings", "cityheart_source_readings", "Readings produced from the source, each once."),
    ("duplicates", "cityheart_source_duplicates",
     "Readings the source repeated, not produced again."),
    ("refused", "cityheart_source_refused", "The source's records sent to the dead-letter topic."),
)


class SourcesHealth(Collector):
    """Each source's health from ``health()`` at every scrape."""

    def __init__(self, health: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._health = health

    def describe(self) -> Iterator[Metric]:
        """The families without samples."""
        yield from self._families({})

    def collect(self) -> Iterator[Metric]:
        """The families, one sample per source."""
        yield from self._families(self._health())

    @staticmethod
    def _families(health: dict[str, dict[str, Any]]) -> Iterator[Metric]:
        up = GaugeMetricFamily("cityheart_source_up", "1 when the source's breaker is closed "
                               "and its last poll succeeded.", labels=["source"])
        breaker = GaugeMetricFamily("cityheart_source_breaker_open", "The source's breaker: "
                                    "1 open, 0.5 half open, 0 closed.", labels=["source"])
        for name, entry in health.items():
            ok = entry["state"] == "closed" and not entry["consecutive_errors"]
            up.add_metric([name], 1.0 if ok else 0.0)
            breaker.add_metric([name], _BREAKER[entry["state"]])
        yield up
        yield breaker
        for key, metric, text in _GAUGES:
            gauge = GaugeMetricFamily(metric, text, labels=["source"])
            for name, entry in health.items():
                if entry.get(key) is not None:
                    gauge.add_metric([name], float(entry[key]))
            yield gauge
        for key, metric, text in _COUNTERS:
            counter = CounterMetricFamily(metric, text, labels=["source"])
            for name, entry in health.items():
                counter.add_metric([name], float(entry[key]))
            yield counter
