"""Who acts: the roles cityheart knows and the claims a verified token carries.

    claims = Claims(role="dispatcher", sub="ana", iat=t0, exp=t0 + 3600,
                    department="water-authority").check()

:meth:`Claims.check` raises :class:`MalformedToken` naming the claim that makes no sense. The
tokens that carry claims are signed and verified in :mod:`connectors.tokens`; the rules on what
a role may do are :mod:`alerts.access`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

from models.errors import CityheartError
from models.grants import Grant

__all__ = ["ROLES", "Claims", "MalformedToken", "TokenError", "malformed"]

ROLES = ("operator", "dispatcher", "viewer", "consumer")
"""operator, dispatcher and viewer are built in (alerts.access); a consumer reads what its grant
(``auth.grants``, :mod:`models.grants`) allows."""


class TokenError(CityheartError):
    """Raised when a token cannot be issued or accepted; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class MalformedToken(TokenError):
    """Raised when a token is not a JWT of valid claims, or its claims make no sense."""


@dataclass(frozen=True, slots=True)
class Claims:
    """Who a token speaks for: role, department (dispatchers only), grant (consumers only),
    subject, validity and the token's id (``jti``, to revoke it).

    ``rules`` is the grant itself, filled in by whoever verified the token against the
    deployment's ``auth.grants`` (a token carries only the grant's name).
    """

    role: str
    sub: str
    iat: int
    exp: int
    department: str | None = None
    grant: str | None = None
    jti: str | None = None
    rules: Grant | None = field(default=None, compare=False)

    def payload(self) -> dict[str, Any]:
        """The JSON claims; ``department``, ``grant`` and ``jti`` only when set."""
        body: dict[str, Any] = {"role": self.role, "sub": self.sub, "iat": self.iat,
                                "exp": self.exp}
        for name in ("department", "grant", "jti"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body

    def check(self) -> Claims:
        """Return self, or raise MalformedToken naming the claim that makes no sense."""
        if self.role not in ROLES:
            malformed(f"role {self.role!r} is not one of {list(ROLES)}")
        if not isinstance(self.sub, str) or not self.sub:
            malformed(f"sub {self.sub!r} must be a non-empty string")
        if self.role == "dispatcher" and not (isinstance(self.department, str) and self.department):
            malformed(f"a dispatcher token needs a department, got {self.department!r}")
        if self.role != "dispatcher" and self.department is not None:
            malformed(f"role {self.role!r} takes no department, got {self.department!r}")
        if self.role == "consumer" and not (isinstance(self.grant, str) and self.grant):
            malformed(f"a consumer token needs a grant, got {self.grant!r}")
        if self.role != "consumer" and self.grant is not None:
            malformed(f"role {self.role!r} takes no grant, got {self.grant!r}")
        if self.jti is not None and not (isinstance(self.jti, str) and self.jti):
            malformed(f"jti {self.jti!r} must be a non-empty string")
        for name in ("iat", "exp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                malformed(f"{name} {value!r} must be whole epoch seconds")
        if self.exp <= self.iat:
            malformed(f"exp {self.exp} must be after iat {self.iat}")
        return self


def malformed(reason: str) -> NoReturn:
    """Raise :class:`MalformedToken` with ``reason``."""
    raise MalformedToken(reason)
