"""The registry of external services: ``sources.yaml`` next to config.yaml, and its health file.

    specs = load_sources(path)                    # [SourceSpec, ...] (none if no file)
    save_sources(path, [*specs, spec])            # atomically
    registry = SourcesFile(path)                  # re-read when the file changes
    registry.current(monotonic_now)               # the specs in force
    save_health(health_path, {name: {...}})       # what the poller last saw, per source
    load_health(health_path)                      # {} if there is none yet

``cityheart sources add|remove`` edit the file; ``cityheart sources run`` (started by ``up``)
holds a :class:`SourcesFile` and so takes a new, changed or removed source within a second,
without a restart. A file that cannot be read while running keeps the sources in force (and
is logged). Secrets are never in the file: an entry names the environment variables that hold
them (``auth.token_env``...).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from connectors.files import write_atomically
from connectors.watched_file import WatchedFile
from models.errors import ConfigError
from settings.sources import SourceSpec

__all__ = ["SourcesFile", "load_health", "load_sources", "save_health", "save_sources"]

_HEADER = ("# cityheart pulled sources, kept by `cityheart sources` (add, list, test, remove).\n"
           "# Secrets are not kept here: auth names the environment variables that hold them.\n")


def _spec(entry: object, number: int, path: Path) -> SourceSpec:
    try:
        return SourceSpec.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(str(path), f"sources[{number}].{where}", first["msg"]) from None


def load_sources(path: Path) -> list[SourceSpec]:
    """The sources in the file at ``path`` (none if it does not exist); names are unique."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return []
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), "sources", f"cannot read the sources file: {exc}") from None
    entries = document.get("sources") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(str(path), "sources", "the file must hold a list under 'sources'")
    specs = [_spec(entry, number, path) for number, entry in enumerate(entries)]
    names = [spec.name for spec in specs]
    for number, name in enumerate(names):
        if names.index(name) != number:
            raise ConfigError(str(path), f"sources[{number}].name", f"{name!r} is repeated")
    return specs


def save_sources(path: Path, specs: Iterable[SourceSpec]) -> None:
    """Write ``specs`` to ``path`` atomically."""
    entries = [spec.model_dump(mode="json", exclude_defaults=True) for spec in specs]
    write_atomically(path, _HEADER + yaml.safe_dump({"sources": entries}, sort_keys=False), 0o644)


def save_health(path: Path, health: dict[str, dict[str, Any]]) -> None:
    """Write each source's health (``sources list`` reads it) atomically."""
    write_atomically(path, orjson.dumps(health, option=orjson.OPT_INDENT_2).decode(), 0o644)


def load_health(path: Path) -> dict[str, dict[str, Any]]:
    """Each source's health as the poller last wrote it ({} when it has not run)."""
    try:
        found = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


class SourcesFile:
    """The sources of a file, read again when it changes (checked at most once a ``check_s``;
    see :mod:`connectors.watched_file`)."""

    def __init__(self, path: Path, *, check_s: float = 1.0) -> None:
        self.path = path
        self._file = WatchedFile(path, load_sources, what="sources", check_s=check_s)

    @property
    def specs(self) -> list[SourceSpec]:
        """The sources in force, as last read (not checking the file)."""
        return self._file.value

    def current(self, now: float) -> list[SourceSpec]:
        """The sources as of ``now`` (monotonic seconds), reloaded if the file changed; a file
        that became unreadable keeps the sources in force (and is logged)."""
        return self._file.current(now)
