"""The ``database:`` section of config.yaml: where history is kept (PostgreSQL or TimescaleDB).

Frozen pydantic models, no I/O; ``connectors.storage.StorageOptions.from_mapping`` turns a
``model_dump()`` of :class:`DatabaseSettings` into the storage layer's options.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from models.history import parse_duration

__all__ = ["DatabaseSettings", "PoolSettings"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PoolSettings(_Frozen):
    """The connection pool of each process that uses the database."""

    min_size: Annotated[int, Field(ge=1)] = 1
    max_size: Annotated[int, Field(ge=1)] = 4
    timeout_s: Annotated[float, Field(gt=0)] = 10.0


def _default_retention() -> dict[str, str | float | None]:
    """How long each table keeps its rows (None: for ever)."""
    return {
        "readings": "7d", "vitals": "30d", "indicators": "30d",
        "rollup_1m": "30d", "rollup_1h": "365d", "rollup_1d": None,
    }


class DatabaseSettings(_Frozen):
    """History storage: the server, and how rows are written, rolled up and kept."""

    url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5433/cityheart")
    embedded: bool = True
    data_dir: str = "var/pgdata"
    timescale: Literal["auto", "on", "off"] = "auto"
    pool: PoolSettings = PoolSettings()
    batch_rows: Annotated[int, Field(ge=1)] = 5000
    copy_rows: bool = Field(default=True, alias="copy")
    retention: dict[str, str | float | None] = Field(default_factory=_default_retention)
    compress_after: str | float | None = "1d"
    maintenance_interval_s: Annotated[float, Field(gt=0)] = 60.0

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            msg = "must be a postgresql://user@host:port/database URL"
            raise ValueError(msg)
        return value

    @field_validator("retention")
    @classmethod
    def _durations(cls, value: dict[str, str | float | None]) -> dict[str, str | float | None]:
        known = {"readings", "vitals", "indicators", "rollup_1m", "rollup_1h", "rollup_1d"}
        for table, keep in value.items():
            if table not in known:
                msg = f"unknown table {table!r}; one of {sorted(known)}"
                raise ValueError(msg)
            if keep is not None:
                parse_duration(keep)
        return value

    @field_validator("compress_after")
    @classmethod
    def _duration(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def port(self) -> int:
        """The port of the server (5432 when the URL names none)."""
        return urlsplit(self.url.get_secret_value()).port or 5432

    @property
    def name(self) -> str:
        """The database name in the URL."""
        return urlsplit(self.url.get_secret_value()).path.lstrip("/") or "postgres"

    def storage_mapping(self) -> dict[str, object]:
        """What ``StorageOptions.from_mapping`` takes (the url in clear, ``copy`` by its name)."""
        data = self.model_dump(by_alias=True)
        data["url"] = self.url.get_secret_value()
        return data
