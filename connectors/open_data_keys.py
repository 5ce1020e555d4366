"""The open-data API keys: a YAML file of hashed keys, and the gate that checks each download.

    key = add_key(path, "river-app", now=time.time())      # "ohk_3f9a0c1b.<secret>": shown once
    revoke_key(path, "3f9a0c1b", now=time.time())
    gate = KeyGate(path, rate_per_minute=60, daily_quota=1000)
    verdict = gate.check(presented_key, now=time.time())    # verdict.ok, .status, .reason

A key is ``ohk_<id>.<secret>``: the id names it in the file and in logs, the secret (32 random
bytes, URL-safe base64) is stored only as its SHA-256 (a random secret that long needs no slow
hash). The file is read again whenever it changes, so a key added or revoked by ``cityheart
open-data keys`` counts at once in the running dashboard, with no restart.

Each key has a token bucket (``rate_per_minute`` a minute, a burst of as many) and a daily
quota (UTC days), counted in the dashboard's memory: a restart gives every key a fresh day.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

import yaml

from connectors.files import write_atomically
from connectors.rate_limit import RateLimiter
from connectors.watched_file import WatchedFile
from models.errors import ConfigError

__all__ = ["KeyGate", "KeyRecord", "Verdict", "add_key", "list_keys", "revoke_key"]

PREFIX = "ohk_"


@dataclass(frozen=True)
class KeyRecord:
    """One key as the file keeps it (never its secret)."""

    id: str
    name: str
    sha256: str
    created: str
    revoked: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a download may go ahead; if not, the HTTP status and the reason to show."""

    ok: bool
    status: HTTPStatus = HTTPStatus.OK
    reason: str = ""
    key_id: str | None = None
    retry_after_s: int | None = None


def _now_text(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def list_keys(path: Path) -> list[KeyRecord]:
    """The keys in ``path`` (none when it does not exist); ConfigError if it is malformed."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return []
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), "keys", f"cannot read the open-data keys: {exc}") from exc
    entries = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(str(path), "keys", "must be a list of keys")
    try:
        return [KeyRecord(**entry) for entry in entries]
    except TypeError as exc:
        raise ConfigError(str(path), "keys", f"a key entry is malformed: {exc}") from exc


def _write(path: Path, keys: list[KeyRecord]) -> None:
    document = {"keys": [{k: v for k, v in vars(key).items() if v is not None} for key in keys]}
    write_atomically(path, "# cityheart open-data API keys: SHA-256 of each secret, never the "
                           "secret\n" + yaml.safe_dump(document, sort_keys=False))


def add_key(path: Path, name: str, *, now: float) -> str:
    """Make a key named ``name`` in ``path`` and return it whole (it is not stored)."""
    if not name.strip():
        raise ValueError("a key needs a name (who it is for)")
    keys = list_keys(path)
    taken = {k.id for k in keys}
    key_id = secrets.token_hex(4)
    while key_id in taken:
        key_id = secrets.token_hex(4)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    keys.append(KeyRecord(id=key_id, name=name, sha256=_digest(secret), created=_now_text(now)))
    _write(path, keys)
    return f"{PREFIX}{key_id}.{secret}"


def revoke_key(path: Path, key_id: str, *, now: float) -> KeyRecord:
    """Revoke the key ``key_id`` (kept in the file, marked revoked); KeyError if unknown."""
    keys = list_keys(path)
    for i, key in enumerate(keys):
        if key.id == key_id:
            if key.revoked is None:
                keys[i] = KeyRecord(key.id, key.name, key.sha256, key.created, _now_text(now))
                _write(path, keys)
            return keys[i]
    valid = ", ".join(k.id for k in keys) or "none"
    msg = f"no open-data key {key_id!r}; the keys are: {valid}"
    raise KeyError(msg)


class KeyGate:
    """Checks a presented key against the file, its rate and its daily quota (thread-safe)."""

    def __init__(self, path: Path, *, rate_per_minute: float, daily_quota: int) -> None:
        self.path = path
        self.daily_quota = daily_quota
        self._limiter = RateLimiter(rate_per_s=rate_per_minute / 60.0,
                                    burst=max(1, round(rate_per_minute)))
        self._lock = threading.Lock()
        self._keys = WatchedFile(path, lambda p: {k.id: k for k in list_keys(p)},
                                 what="open-data keys")
        self._used: dict[str, tuple[str, int]] = {}  # key id -> (UTC day, downloads)

    def check(self, presented: str | None, *, now: float) -> Verdict:
        """Whether the holder of ``presented`` may download now (counts it if so)."""
        if not presented:
            return Verdict(False, HTTPStatus.UNAUTHORIZED, "an API key is required: send it "
                           "as the X-API-Key header or the api_key parameter")
        key_id, _, secret = presented.removeprefix(PREFIX).partition(".")
        with self._lock:
            key = self._keys.current().get(key_id)
            if key is None or not presented.startswith(PREFIX) or not hmac.compare_digest(
                    key.sha256, _digest(secret)):
                return Verdict(False, HTTPStatus.UNAUTHORIZED, "unknown API key")
            if key.revoked is not None:
                return Verdict(False, HTTPStatus.FORBIDDEN,
                               f"API key {key_id} was revoked at {key.revoked}", key_id)
            day = datetime.fromtimestamp(now, UTC).date().isoformat()
            used_day, used = self._used.get(key_id, (day, 0))
            used = used if used_day == day else 0
            if used >= self.daily_quota:
                return Verdict(False, HTTPStatus.TOO_MANY_REQUESTS,
                               f"API key {key_id} used its {self.daily_quota} downloads of "
                               f"{day} (UTC)", key_id, retry_after_s=_to_midnight(now))
            if not self._limiter.allow(key_id, now):
                return Verdict(False, HTTPStatus.TOO_MANY_REQUESTS,
                               f"API key {key_id} is over its rate limit", key_id,
                               retry_after_s=60)
            self._used[key_id] = (day, used + 1)
            return Verdict(True, key_id=key_id)


def _to_midnight(now: float) -> int:
    return int(86_400 - now % 86_400) + 1
