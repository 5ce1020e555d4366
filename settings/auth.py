"""The ``auth:`` section of config.yaml: whether the push feed requires signed tokens.

Frozen pydantic model, no I/O. The signing secret is never configured here: it comes only from
the environment variable ``CITYHEART_TOKEN_SECRET``, read by the cityheart layer
(``cityheart.token``), which passes it in::

    auth:
      required: false      # true: a feed client without a valid token is refused
      token_ttl_s: 43200   # default lifetime of tokens issued by `cityheart token`
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TOKEN_SECRET_ENV", "AuthSettings"]

TOKEN_SECRET_ENV = "CITYHEART_TOKEN_SECRET"
"""The environment variable holding the token signing secret."""


class AuthSettings(BaseModel):
    """Feed authentication: ``required`` refuses clients without a token (else: operator)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: bool = False
    token_ttl_s: Annotated[int, Field(ge=1)] = 43200
