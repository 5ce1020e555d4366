"""A file read again when it changes: the keys, revoked tokens and sources a running component
takes from a file that a CLI command edits.

    keys = WatchedFile(path, load_keys, what="ingest keys", check_s=1.0)
    keys.current(time.monotonic())      # the parsed value in force (read again if changed)

The file's identity (modification time in ns, size and inode: the CLI replaces files with an
atomic rename, which gives a new inode) is taken at most once every ``check_s`` seconds of the
clock the caller passes; when it differs, ``load(path)`` runs again. The first read happens in
the constructor and raises whatever ``load`` raises (a bad file at start is for the operator to
fix). A later read that raises :class:`~models.errors.ConfigError` keeps the last good value and
logs an error naming the file, so a half-edited file never takes keys or sources away from a
running component. A missing file is ``load``'s to interpret (typically: empty).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from models.errors import ConfigError

__all__ = ["WatchedFile"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_Stamp = tuple[int, int, int] | None


class WatchedFile(Generic[T]):
    """``load(path)``'s value, read again when the file changes (thread-safe)."""

    def __init__(self, path: Path, load: Callable[[Path], T], *, what: str,
                 check_s: float = 0.0) -> None:
        self.path = path
        self.what = what
        self._load = load
        self._check_s = check_s
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._stamp = _stamp(path)
        self._value = load(path)

    @property
    def value(self) -> T:
        """The value as last read, without looking at the file."""
        return self._value

    def current(self, now: float = 0.0) -> T:
        """The value as of ``now`` (monotonic seconds; only compared with ``check_s``)."""
        with self._lock:
            if self._check_s and now - self._checked < self._check_s:
                return self._value
            self._checked = now
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return self._value
            self._stamp = stamp
            try:
                self._value = self._load(self.path)
            except ConfigError as exc:
                log.error("%s: %s is not valid, keeping what it held before: %s",
                          self.what, self.path, exc)
            else:
                log.info("%s: read again from %s", self.what, self.path)
            return self._value


def _stamp(path: Path) -> _Stamp:
    """The file's (mtime in ns, size, inode), or None when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
