"""Pulled sources: the poller's settings (``sources:`` in config.yaml) and one source's spec.

    settings.sources.file                 # "sources.yaml", next to config.yaml
    spec = SourceSpec.model_validate({"name": "met-office", "url": "https://...",
                                      "interval_s": 60, "mapping": {...}})

:class:`SourcesSettings` says where the registry of external services is kept and how the
poller treats a failing one (retries with backoff, then a circuit breaker). :class:`SourceSpec`
is one entry of that registry (``cityheart sources add``): the URL polled, how often, the
auth (names of environment variables, never the secrets themselves) and the
:class:`Mapping` from the JSON answer to readings. Frozen pydantic models, no I/O.

In a mapping, a string starting with ``$`` is a JSONPath selector (RFC 9535) evaluated on
each item the ``items`` selector finds; any other value is a constant.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["SourceAuth", "SourceSpec", "SourcesSettings", "SourceValue", "ValueMapping"]

_Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourcesSettings(_Frozen):
    """Where the registry is kept and how the poller treats failing sources.

    ``file`` (relative to config.yaml's directory) holds the sources (``cityheart sources
    add``); ``health_file`` beside it, each source's health as the poller last saw it (what
    ``cityheart sources list`` shows). A failed fetch is tried again after ``retry_initial_s``,
    then twice as long each time up to ``retry_max_s`` (never later than the source's
    interval). After ``breaker_failures`` failures in a row the source's breaker opens: it is
    not asked again for ``breaker_cooldown_s``, then one probe decides (closed on success,
    open again on failure). ``timeout_s``: one request's time limit. ``dedupe_memory``: per
    source, how many (device, kind, time) already produced are remembered, so a reading the
    service repeats in its next answers is produced once.
    """

    file: str = "sources.yaml"
    health_file: str = "sources-health.json"
    timeout_s: _Seconds = 10.0
    retry_initial_s: _Seconds = 1.0
    retry_max_s: _Seconds = 60.0
    breaker_failures: Annotated[int, Field(ge=1)] = 5
    breaker_cooldown_s: _Seconds = 300.0
    max_response_bytes: Annotated[int, Field(gt=0)] = 16_777_216
    dedupe_memory: Annotated[int, Field(ge=1)] = 100_000
    check_s: _Seconds = 1.0
    """How often the poller looks whether the registry file changed."""


class SourceAuth(_Frozen):
    """How to authenticate to the service; secrets come from the named environment variables.

    ``bearer``: ``Authorization: Bearer $<token_env>``; ``header``: ``<header>: $<token_env>``
    (an API key header); ``basic``: ``$<username_env>`` and ``$<password_env>``.
    """

    type: Literal["none", "bearer", "header", "basic"] = "none"
    token_env: str | None = None
    header: str | None = None
    username_env: str | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> SourceAuth:
        needs = {"bearer": ("token_env",), "header": ("header", "token_env"),
                 "basic": ("username_env", "password_env"), "none": ()}[self.type]
        missing = [name for name in needs if not getattr(self, name)]
        if missing:
            msg = f"auth type {self.type!r} needs {missing}"
            raise ValueError(msg)
        return self


class SourceValue(_Frozen):
    """One reading taken from each item: its kind, value and unit (selectors or constants)."""

    kind: str
    value: str | float
    unit: str | None = None
    """The unit (a selector or a constant); None: the kind's canonical unit."""


class ValueMapping(_Frozen):
    """From a service's JSON answer to readings.

    ``items`` selects the items (one per station or observation; ``$`` is the whole answer);
    on each item ``device_id``, ``time`` (ISO 8601 with a zone, or epoch seconds), the place
    (``district``, or ``lat`` and ``lon``, located in the city's districts) and each of
    ``values`` give one reading. ``device_prefix`` is put before every device id, so two
    services' station "1" stay apart.
    """

    items: str = "$"
    device_id: str
    time: str
    district: str | None = None
    lat: str | float | None = None
    lon: str | float | None = None
    device_prefix: str = ""
    values: Annotated[tuple[SourceValue, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _place(self) -> ValueMapping:
        if self.district is None and (self.lat is None or self.lon is None):
            msg = "give district, or lat and lon"
            raise ValueError(msg)
        return self


class SourceSpec(_Frozen):
    """One external service polled by ``cityheart sources run``."""

    name: str
    url: str
    interval_s: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 60.0
    auth: SourceAuth = SourceAuth()
    headers: dict[str, str] = Field(default_factory=dict)
    mapping: ValueMapping
    added_at: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            msg = (f"name {value!r} must be lower-case letters, digits, '.', '_' or '-' "
                   "(at most 63)")
            raise ValueError(msg)
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            msg = f"url {value!r} is not http:// or https://"
            raise ValueError(msg)
        return value
