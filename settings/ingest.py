"""The HTTP ingest endpoint's settings (``ingest:`` in config.yaml; ``cityheart ingest``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["IngestSettings"]


class IngestSettings(BaseModel):
    """Where ``cityheart ingest`` listens, whose keys it takes and how much it accepts.

    ``keys_file`` (relative to config.yaml's directory) holds the sources' keys, hashed
    (``cityheart ingest-keys``). A request carries at most ``max_body_bytes`` and
    ``max_records`` readings (413 beyond), and a source sends at most ``per_source_per_s``
    readings a second with bursts of ``burst`` (429 beyond). A request's answer is kept for
    ``idempotency_ttl_s`` under its ``Idempotency-Key`` (at most ``idempotency_max_keys``
    answers); the last ``seq_memory`` (device, kind, seq) delivered are remembered so a reading
    sent again is not stored twice. ``delivery_timeout_s``: how long a request waits for Kafka.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8767
    keys_file: str = "ingest-keys.yaml"
    max_body_bytes: Annotated[int, Field(gt=0)] = 4_194_304
    max_records: Annotated[int, Field(ge=1)] = 10_000
    per_source_per_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 50_000.0
    burst: Annotated[int, Field(ge=1)] = 100_000
    idempotency_ttl_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 86_400.0
    idempotency_max_keys: Annotated[int, Field(ge=1)] = 100_000
    seq_memory: Annotated[int, Field(ge=0)] = 1_000_000
    delivery_timeout_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 30.0

    @model_validator(mode="after")
    def _burst_holds_a_request(self) -> IngestSettings:
        if self.burst < self.max_records:
            msg = (f"burst {self.burst} is below max_records {self.max_records}: a full request "
                   "could never pass the rate limit")
            raise ValueError(msg)
        return self

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/ingest"
