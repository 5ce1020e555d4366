"""The ``open_data:`` section of config.yaml: the public catalogue, its delay, licence and keys.

Frozen pydantic model, no I/O::

    open_data:
      enabled: true
      publisher: Riverton operations centre      # default: "<city name> operations centre"
      licence_url: https://creativecommons.org/licenses/by/4.0/
      delay_s: 3600            # a period is published this long after it ended
      max_days: 92             # the longest time range one download may cover
      keys_file: open-data-keys.yaml             # relative to config.yaml's directory
      rate_per_minute: 60      # downloads per minute per key (a burst of as many)
      daily_quota: 1000        # downloads per key per UTC day

The catalogue (``/open-data/catalog.jsonld``) is public; downloads need an API key made with
``cityheart open-data keys add NAME`` (see docs/open-data.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OpenDataSettings"]


class OpenDataSettings(BaseModel):
    """The public, aggregated and delayed datasets and who may download them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    publisher: str | None = None
    licence_url: str = "https://creativecommons.org/licenses/by/4.0/"
    delay_s: Annotated[float, Field(ge=0)] = 3600.0
    max_days: Annotated[int, Field(ge=1, le=3660)] = 92
    keys_file: str = "open-data-keys.yaml"
    rate_per_minute: Annotated[float, Field(gt=0)] = 60.0
    daily_quota: Annotated[int, Field(ge=1)] = 1000
