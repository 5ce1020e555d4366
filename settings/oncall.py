"""The ``oncall:`` section of config.yaml: who is on call for each department, and when.

Frozen, validated pydantic models (no I/O). One schedule per department: a rotation of people,
each on call for ``shift_days`` days from the ``handoff`` time (local to ``timezone``), the first
shift starting on ``start``; overrides put someone else on call for a while::

    oncall:
      - department: water-authority
        timezone: Europe/Lisbon
        rotation: [ana, ben, chen]
        handoff: "08:00"
        shift_days: 1
        start: 2026-12-07
        overrides: [{person: dan, start: 2026-12-24T18:00:00+00:00,
                     end: 2026-12-26T08:00:00+00:00}]

Who is on call at a time is :mod:`alerts.oncall` (pure); people are ``notifications.people``.
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["OncallOverride", "OncallSchedule", "check_zone"]

_ID = r"^[a-z0-9][a-z0-9_.-]*$"
Id = Annotated[str, Field(pattern=_ID)]


def check_zone(value: str) -> str:
    """``value`` if it is an IANA time zone; ValueError naming it otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{value!r} is not an IANA time zone (such as 'Europe/Berlin' or 'UTC')"
        raise ValueError(msg) from None
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OncallOverride(_Frozen):
    """``person`` is on call instead of the rotation from ``start`` until ``end``."""

    person: Id
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> OncallOverride:
        if self.end <= self.start:
            msg = f"end {self.end.isoformat()} must be after start {self.start.isoformat()}"
            raise ValueError(msg)
        return self


class OncallSchedule(_Frozen):
    """One department's rotation (see the module doc)."""

    department: Id
    rotation: Annotated[tuple[Id, ...], Field(min_length=1)]
    timezone: str = "UTC"
    handoff: time = time(8, 0)
    shift_days: Annotated[int, Field(ge=1, le=366)] = 1
    start: date = date(2026, 1, 1)
    overrides: tuple[OncallOverride, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("handoff")
    @classmethod
    def _naive(cls, value: time) -> time:
        if value.tzinfo is not None:
            msg = f"handoff {value.isoformat()} is a local time: give it without a zone"
            raise ValueError(msg)
        return value
