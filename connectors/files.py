"""Small files cityheart keeps beside config.yaml, written so a reader never sees half of one.

    write_atomically(path, text)            # owner-only (0600) unless ``mode`` says otherwise

The text goes to a temporary file in the same folder, which then replaces ``path`` in one step
(``os.replace``), so a process reading the file (the dashboard's key gate, the feed's revocation
list, the source poller) reads the old file or the new one, never a mix; the temporary file is
removed if anything fails. Used for the device registry, the ingest and open-data keys, the
revoked tokens and the sources registry.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` in one step (see module doc), with permissions ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
