"""The HTTP ingest's source keys: who may send, and which devices, kinds and districts.

    key, token = new_key("traffic-authority", devices=["det-*"], kinds=["traffic_speed"])
    save_keys(path, [*load_keys(path), key])            # the file keeps only the hash
    ring = KeyRing(load_keys(path))
    found = ring.authenticate(token)                    # the IngestKey, or None
    found.refusal("det-4013", "traffic_speed", "harbour")   # None, or why not

A token is ``chk_<id>_<secret>``: ``id`` finds the key, ``secret`` (32 random bytes) is checked
against the SHA-256 kept in the keys file (a random secret needs no slow hash; the file never
holds a usable token). Empty ``devices``/``kinds``/``districts`` mean any; ``devices`` are
shell-style patterns. :class:`KeysFile` reloads the file when it changes, so a key added with
``cityheart ingest-keys add`` works without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from connectors.files import write_atomically
from connectors.watched_file import WatchedFile
from models.errors import ConfigError

__all__ = ["IngestKey", "KeyRing", "KeysFile", "load_keys", "new_key", "save_keys"]

_PREFIX = "chk_"
_HEADER = ("# cityheart ingest keys, kept by `cityheart ingest-keys` (add, list, revoke).\n"
           "# Only each secret's SHA-256 is kept: a key is shown once, when it is added.\n")


@dataclass(frozen=True)
class IngestKey:
    """One source's key: its id, the SHA-256 of its secret and what it may send."""

    id: str
    source: str
    sha256: str
    devices: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    added_at: str = ""

    def refusal(self, device_id: str, kind: str, district: str) -> str | None:
        """Why this key may not send a reading of ``device_id``/``kind`` in ``district``."""
        if self.devices and not any(fnmatchcase(device_id, p) for p in self.devices):
            return (f"source {self.source!r} may not send device {device_id!r} "
                    f"(only {list(self.devices)})")
        if self.kinds and kind not in self.kinds:
            return f"source {self.source!r} may not send kind {kind!r} (only {list(self.kinds)})"
        if self.districts and district not in self.districts:
            return (f"source {self.source!r} may not send district {district!r} "
                    f"(only {list(self.districts)})")
        return None

    def record(self) -> dict[str, Any]:
        """The key's entry in the keys file."""
        return {"id": self.id, "source": self.source, "sha256": self.sha256,
                "devices": list(self.devices), "kinds": list(self.kinds),
                "districts": list(self.districts), "added_at": self.added_at}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(
    source: str, *, devices: Sequence[str] = (), kinds: Sequence[str] = (),
    districts: Sequence[str] = (), added_at: str = "",
) -> tuple[IngestKey, str]:
    """A new key of ``source`` and its token (shown once; only its hash is kept)."""
    key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
    key = IngestKey(key_id, source, _digest(secret), tuple(devices), tuple(kinds),
                    tuple(districts), added_at)
    return key, f"{_PREFIX}{key_id}_{secret}"


@dataclass
class KeyRing:
    """The keys in force, found by id."""

    keys: Sequence[IngestKey] = ()
    _by_id: dict[str, IngestKey] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._by_id = {key.id: key for key in self.keys}

    def authenticate(self, token: str) -> IngestKey | None:
        """The key ``token`` is, or None (unknown, revoked or malformed)."""
        if not token.startswith(_PREFIX):
            return None
        key_id, _, secret = token[len(_PREFIX):].partition("_")
        key = self._by_id.get(key_id)
        if key is None or not secret:
            return None
        return key if hmac.compare_digest(_digest(secret), key.sha256) else None


def _key(entry: object, number: int, path: Path) -> IngestKey:
    where = f"keys[{number}]"
    if not isinstance(entry, dict):
        raise ConfigError(str(path), where, f"an entry must be a mapping, got {entry!r}")
    try:
        return IngestKey(
            str(entry["id"]), str(entry["source"]), str(entry["sha256"]),
            tuple(entry.get("devices") or ()), tuple(entry.get("kinds") or ()),
            tuple(entry.get("districts") or ()), str(entry.get("added_at") or ""),
        )
    except KeyError as exc:
        raise ConfigError(str(path), f"{where}.{exc.args[0]}", "is missing") from None


def load_keys(path: Path) -> list[IngestKey]:
    """The keys in the file at ``path`` (none if it does not exist)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return []
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), "keys", f"cannot read the keys file: {exc}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(str(path), "keys", "the file must hold a list under 'keys'")
    return [_key(entry, number, path) for number, entry in enumerate(entries)]


def save_keys(path: Path, keys: Iterable[IngestKey]) -> None:
    """Write ``keys`` to ``path`` atomically, readable by its owner only."""
    text = _HEADER + yaml.safe_dump({"keys": [key.record() for key in keys]}, sort_keys=False)
    write_atomically(path, text)


class KeysFile:
    """The keys of a file, read again when it changes (checked at most once a ``check_s``;
    see :mod:`connectors.watched_file`)."""

    def __init__(self, path: Path, *, check_s: float = 1.0) -> None:
        self.path = path
        self._file = WatchedFile(path, lambda p: KeyRing(load_keys(p)), what="ingest keys",
                                 check_s=check_s)

    def current(self, now: float) -> KeyRing:
        """The keys as of ``now`` (monotonic seconds): reloaded if the file changed; a file
        that became unreadable keeps the keys in force (and is logged)."""
        return self._file.current(now)
