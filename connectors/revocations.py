"""Revoked tokens: a YAML file of token ids (``jti``) refused before their expiry.

    revoke(path, claims, now=time.time(), reason="laptop lost")
    revoked = RevocationList(path)
    revoked.check(claims)          # raises RevokedToken naming when and why

``cityheart revoke`` writes the file; every process that checks tokens (the feed, the
dashboard and its API) reads it again whenever it changes, so a revoked token is refused from
its next request or connection on, with no restart. An entry may be dropped once the token has
expired (``prune``); tokens issued without a ``jti`` cannot be revoked one by one (rotate the
secret instead).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from connectors.files import write_atomically
from connectors.watched_file import WatchedFile
from models.claims import Claims, TokenError
from models.errors import ConfigError

__all__ = ["RevocationList", "RevokedToken", "read_revoked", "revoke"]


class RevokedToken(TokenError):
    """Raised for a token whose id was revoked."""


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_revoked(path: Path) -> dict[str, dict[str, Any]]:
    """Each revoked token id with its entry (sub, exp, at, reason); {} without a file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), "revoked", f"cannot read revoked tokens: {exc}") from exc
    entries = raw.get("revoked") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "jti" in e
                                               for e in entries):
        raise ConfigError(str(path), "revoked", "must be a list of entries with a jti")
    return {str(e["jti"]): e for e in entries}


def revoke(path: Path, claims: Claims, *, now: float, reason: str = "") -> dict[str, Any]:
    """Add ``claims``' token to the file (expired entries are pruned); ValueError without jti."""
    if claims.jti is None:
        msg = (f"the token of {claims.sub!r} has no jti (issued before tokens had ids): it "
               "cannot be revoked alone; rotate CITYHEART_TOKEN_SECRET instead")
        raise ValueError(msg)
    entries = {k: v for k, v in read_revoked(path).items() if float(v.get("exp", now)) > now}
    entry = {"jti": claims.jti, "sub": claims.sub, "role": claims.role, "exp": claims.exp,
             "at": _iso(now), "reason": reason}
    entries[claims.jti] = entry
    write_atomically(path, yaml.safe_dump({"revoked": list(entries.values())}, sort_keys=False))
    return entry


class RevocationList:
    """The revoked ids of ``path``, read again when the file changes (thread-safe; a file
    that becomes unreadable keeps the ids revoked before, see :mod:`connectors.watched_file`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = WatchedFile(path, read_revoked, what="revoked tokens")

    def check(self, claims: Claims) -> Claims:
        """``claims``, or RevokedToken when its token was revoked."""
        if claims.jti is None:
            return claims
        entry = self._file.current().get(claims.jti)
        if entry is not None:
            why = f": {entry['reason']}" if entry.get("reason") else ""
            msg = f"token of {claims.sub!r} was revoked at {entry.get('at')}{why}"
            raise RevokedToken(msg)
        return claims
