"""Config for tests: the shipped config as one mapping, config files for child processes,
fresh names.

    config = shipped_config()               # config.yaml + city.yaml, every default spelled out
    write_config(settings, tmp_path / "config.yaml")   # for `cityheart ... --config`
"""

from __future__ import annotations

import uuid
from pathlib import Path

from settings.config import Settings

__all__ = ["CONFIG", "ROOT", "shipped_config", "unique", "write_config"]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.yaml"


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_config(settings: Settings, path: Path) -> Path:
    """Write ``settings`` as a config.yaml a child process (``cityheart ... --config``) can load."""
    import yaml

    from settings.loader import dump

    path.write_text(yaml.safe_dump(dump(settings), sort_keys=False))
    return path


def shipped_config(path: Path = CONFIG) -> dict:
    """The shipped config.yaml with its city file merged in and every default spelled out, as
    one mapping, for tests that change a key or two."""
    from settings.loader import dump, load

    return dump(load(path, env={}))
