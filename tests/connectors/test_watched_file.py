"""WatchedFile, the one file watcher behind the ingest keys, the open-data keys, the revoked
tokens and the sources registry: a changed file is read again, a file replaced by one of the
same size and time is still seen, and a bad file keeps the last good value with a clear error."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from connectors.files import write_atomically
from connectors.watched_file import WatchedFile
from models.errors import ConfigError


def words(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    if "!" in text:
        raise ConfigError(str(path), "words", f"a word may not hold '!': {text.strip()!r}")
    return text.split()


def test_a_changed_file_is_read_again_and_a_bad_one_keeps_the_last_good_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "words.txt"
    watched = WatchedFile(path, words, what="words", check_s=1.0)
    assert watched.current(0.0) == []                         # no file yet: load says empty
    write_atomically(path, "alpha beta\n")
    assert watched.current(0.5) == []                         # checked at most once a second
    assert watched.current(1.5) == ["alpha", "beta"]
    # the same size and modification time, but a new file (an atomic replace): seen
    stat = path.stat()
    write_atomically(path, "gamma delt\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert watched.current(3.0) == ["gamma", "delt"]
    with caplog.at_level(logging.ERROR, logger="connectors.watched_file"):
        write_atomically(path, "broken!\n")
        assert watched.current(5.0) == ["gamma", "delt"]
    assert f"words: {path} is not valid, keeping what it held before" in caplog.text
    assert "may not hold '!'" in caplog.text
    path.unlink()
    assert watched.current(7.0) == []


def test_a_bad_file_at_start_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("oops!\n")
    with pytest.raises(ConfigError, match="may not hold"):
        WatchedFile(path, words, what="words")
