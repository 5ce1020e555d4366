"""Storage settings as one frozen object: where the database is and how to write and keep data.

    options = StorageOptions(url="postgresql://postgres@127.0.0.1:5433/cityheart")
    options = StorageOptions.from_mapping({"url": ..., "retention": {"readings": "7d"}})

:meth:`StorageOptions.from_mapping` reads the ``database:`` block of config.yaml (durations as
``"7d"``, ``"1h"`` or seconds; ``null`` keeps rows forever), so the settings model can hand its
dump straight over. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from models.history import parse_duration
from settings.database import DatabaseSettings

__all__ = ["Retention", "StorageOptions", "masked_url"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each table keeps rows, in seconds; None keeps them forever."""

    readings: float | None = 7 * DAY
    vitals: float | None = 30 * DAY
    indicators: float | None = 30 * DAY
    rollup_1m: float | None = 30 * DAY
    rollup_1h: float | None = 365 * DAY
    rollup_1d: float | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Retention:
        """Durations by table name (``"7d"``, seconds, or None), unknown names refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            msg = f"retention: unknown table(s) {unknown}; known: {sorted(known)}"
            raise ValueError(msg)
        return cls(**{
            name: None if value is None else parse_duration(value) for name, value in data.items()
        })


@dataclass(frozen=True, slots=True, repr=False)
class StorageOptions:
    """How cityheart reaches and uses its PostgreSQL (or TimescaleDB) database.

    ``timescale``: ``auto`` uses TimescaleDB when the server has it, ``on`` requires it, ``off``
    never uses it. ``copy``: write with COPY (False for servers without it, such as PGlite).
    ``batch_rows``: most rows one COPY or INSERT statement carries (INSERTs also stay under
    PostgreSQL's 65,535 parameters; PGlite needs statements under 64 KiB: about 200 readings).
    ``compress_after_s``: TimescaleDB compresses chunks older than this (None: never).
    ``maintenance_interval_s``: how often plain PostgreSQL refreshes its rollups and applies
    retention.
    """

    url: str
    timescale: Literal["auto", "on", "off"] = "auto"
    pool_min: int = 1
    pool_max: int = 4
    pool_timeout_s: float = 10.0
    batch_rows: int = 5000
    copy: bool = True
    retention: Retention = field(default_factory=Retention)
    compress_after_s: float | None = DAY
    maintenance_interval_s: float = 60.0

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("postgresql", "postgres"):
            msg = f"database url {masked_url(self.url)!r} is not a postgresql:// URL"
            raise ValueError(msg)
        if self.timescale not in ("auto", "on", "off"):
            msg = f"timescale {self.timescale!r} is not 'auto', 'on' or 'off'"
            raise ValueError(msg)
        if not 1 <= self.pool_min <= self.pool_max:
            msg = f"pool sizes must satisfy 1 <= min ({self.pool_min}) <= max ({self.pool_max})"
            raise ValueError(msg)
        if self.batch_rows < 1:
            msg = f"batch_rows {self.batch_rows} must be at least 1"
            raise ValueError(msg)

    def __repr__(self) -> str:
        return f"StorageOptions(url={self.masked_url!r}, timescale={self.timescale!r}, ...)"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> StorageOptions:
        """Options from a config mapping (such as a pydantic ``model_dump()``); keys this class
        does not know (embedded, data_dir) are ignored, durations may be strings such as
        ``"1d"``, the url may be a secret (anything with ``get_secret_value()``)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if hasattr(values.get("url"), "get_secret_value"):
            values["url"] = values["url"].get_secret_value()
        pool = data.get("pool") or {}
        for key in ("min_size", "max_size", "timeout_s"):
            if key in pool:
                name = {"min_size": "pool_min", "max_size": "pool_max"}.get(key, "pool_timeout_s")
                values[name] = pool[key]
        if isinstance(values.get("retention"), Mapping):
            values["retention"] = Retention.from_mapping(values["retention"])
        for key in ("compress_after_s", "maintenance_interval_s", "pool_timeout_s"):
            if values.get(key) is not None:
                values[key] = parse_duration(values[key])
        if "compress_after" in data:
            after = data["compress_after"]
            values["compress_after_s"] = None if after is None else parse_duration(after)
        return cls(**values)

    @classmethod
    def from_database(cls, database: DatabaseSettings) -> StorageOptions:
        """Options from config.yaml's ``database:`` section."""
        return cls.from_mapping(database.storage_mapping())

    @property
    def masked_url(self) -> str:
        """The URL with its password replaced by ``***`` (for logs and errors)."""
        return masked_url(self.url)


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
