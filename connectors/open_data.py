"""The open-data service behind ``/open-data/``: the DCAT catalogue and streamed downloads.

    open_data = OpenData(settings, pool=lambda: storage().pool, keys=Path("open-data-keys.yaml"))
    open_data.catalogue("http://127.0.0.1:8766/open-data/")      # DCAT JSON-LD, a dict
    answer = open_data.download("aqi-hourly", "csv", api_key=key, start=None, end=None)
    answer.status, answer.headers, answer.body                    # body: bytes, chunk by chunk

The catalogue is public. A download needs an API key (:mod:`connectors.open_data_keys`: rate
and daily quota per key); it covers whole periods that ended at least ``open_data.delay_s``
ago, at most ``open_data.max_days`` long, and is streamed from a server-side cursor
(:mod:`connectors.storage.open_data`) through :func:`models.open_data.encode`. Every refusal
says why and what is valid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from connectors.audit_log import AuditLog
from connectors.open_data_keys import KeyGate
from connectors.storage.open_data import dataset_rows, dataset_span
from models.open_data import DATASETS, FORMATS, Site, dataset, dcat_catalogue, encode
from models.open_data import published_range as _published_range
from settings.config import Settings

__all__ = ["Download", "OpenData"]

log = logging.getLogger(__name__)


@dataclass
class Download:
    """An answer to a download request: a status, headers and a body (streamed on success)."""

    status: HTTPStatus
    headers: dict[str, str] = field(default_factory=dict)
    body: Iterator[bytes] | None = None
    error: dict[str, Any] | None = None


class OpenData:
    """The open datasets of one deployment (see module doc)."""

    def __init__(self, settings: Settings, *, pool: Callable[[], ConnectionPool], keys: Path,
                 clock: Callable[[], float] = time.time, audit: AuditLog | None = None) -> None:
        options = settings.open_data
        self.settings = options
        self._audit = audit
        self._pool = pool
        self._clock = clock
        self.gate = KeyGate(keys, rate_per_minute=options.rate_per_minute,
                            daily_quota=options.daily_quota)
        self._names = {d.id: d.name for d in settings.districts}
        geography = settings.geography
        self._centroids = {d.id: (round(d.geometry.centroid.x, 6),
                                  round(d.geometry.centroid.y, 6))
                           for d in geography.districts}
        bounds = [d.geometry.bounds for d in geography.districts]
        self._bbox = (min(b[0] for b in bounds), min(b[1] for b in bounds),
                      max(b[2] for b in bounds), max(b[3] for b in bounds))
        self._city = settings.city.name

    def site(self, base_url: str) -> Site:
        """The publisher as the catalogue describes it, at ``base_url``."""
        return Site(base_url=base_url, city=self._city,
                    publisher=self.settings.publisher or f"{self._city} operations centre",
                    licence_url=self.settings.licence_url, bbox=self._bbox,
                    delay_s=self.settings.delay_s)

    def catalogue(self, base_url: str) -> dict[str, Any]:
        """The DCAT catalogue; a dataset's temporal coverage is left out if history is away."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        coverage: dict[str, tuple[datetime, datetime] | None] = {}
        for ds in DATASETS:
            try:
                span = dataset_span(self._pool(), ds)
            except Exception as exc:  # noqa: BLE001 (the catalogue is served with history away)
                log.warning("open data: no coverage for %s: %s", ds.id, exc)
                span = None
            if span is not None:  # up to the end of the newest period published
                newest = _published_range(now, ds.period, delay_s=self.settings.delay_s,
                                          start=None, end=None)[1]
                coverage[ds.id] = (span[0], min(span[1], newest))
        return dcat_catalogue(self.site(base_url), DATASETS, coverage)

    def download(self, dataset_id: str, fmt: str, *, api_key: str | None,
                 start: str | None, end: str | None) -> Download:
        """One dataset file, or the refusal (400, 401, 403, 404, 429) with its reason."""
        try:
            ds = dataset(dataset_id)
        except KeyError as exc:
            return _refuse(HTTPStatus.NOT_FOUND, "unknown_dataset", exc.args[0])
        if fmt not in FORMATS:
            return _refuse(HTTPStatus.BAD_REQUEST, "unknown_format",
                           f"unknown format {fmt!r}; the formats are: {', '.join(FORMATS)}")
        try:
            first, last = _published_range(
                datetime.fromtimestamp(self._clock(), UTC), ds.period,
                delay_s=self.settings.delay_s, start=_time("from", start),
                end=_time("to", end))
        except ValueError as exc:
            return _refuse(HTTPStatus.BAD_REQUEST, "invalid_range", str(exc))
        if last - first > timedelta(days=self.settings.max_days):
            return _refuse(HTTPStatus.BAD_REQUEST, "range_too_long",
                           f"one download covers at most {self.settings.max_days} days "
                           f"(open_data.max_days); ask for several")
        verdict = self.gate.check(api_key, now=self._clock())
        if not verdict.ok:
            answer = _refuse(verdict.status, "refused", verdict.reason)
            if verdict.retry_after_s is not None:
                answer.headers["Retry-After"] = str(verdict.retry_after_s)
            return answer
        log.info("open data: key %s downloads %s.%s %s..%s", verdict.key_id, ds.id, fmt,
                 first.isoformat(), last.isoformat())
        rows = self._counted(dataset_rows(self._pool(), ds, first, last, self._names),
                             f"{ds.id}.{fmt}", verdict.key_id or "?")
        name = f"{ds.id}_{first:%Y%m%dT%H%M}_{last:%Y%m%dT%H%M}.{fmt}"
        return Download(HTTPStatus.OK, {
            "Content-Type": FORMATS[fmt] + ("; charset=utf-8" if fmt == "csv" else ""),
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Period-Start": _iso(first), "X-Period-End": _iso(last),
        }, encode(fmt, ds, rows, self._centroids))


    def _counted(self, rows: Iterator[tuple[Any, ...]], what: str,
                 key_id: str) -> Iterator[tuple[Any, ...]]:
        """``rows``, audited once sent: records per district, as ``key:<id>``."""
        counts: dict[str, int] = {}
        try:
            for row in rows:
                counts[row[1]] = counts.get(row[1], 0) + 1
                yield row
        finally:
            if self._audit is not None:
                self._audit.record_as(f"key:{key_id}", "open-data", "open-data", what, counts)


def _refuse(status: HTTPStatus, error: str, detail: str) -> Download:
    return Download(status, error={"error": error, "detail": detail})


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _time(name: str, text: str | None) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        msg = f"{name}={text!r} is not an ISO 8601 time (such as 2026-12-07T00:00:00Z)"
        raise ValueError(msg) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
