"""Config for tests: the test city as one mapping, config files for child processes,
fresh names.

    config = shipped_config()               # Riverton (tests/support/riverton.yaml), every
                                            # default spelled out
    config = shipped_config(SHIPPED)        # the shipped demo: config.yaml + city.yaml (SF)
    write_config(settings, tmp_path / "config.yaml")   # for `cityheart ... --config`

Most tests run on Riverton, a hand-drawn city of eight rectangles whose district ids
(``industrial-east``, ``old-town``...) they name; the shipped demo city is San Francisco, which
only the tests of what the README promises load (:data:`SHIPPED`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from settings.config import Settings

__all__ = ["CONFIG", "ROOT", "SHIPPED", "shipped_config", "unique", "write_config"]

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config.yaml"
"""The shipped config.yaml (its city file: city.yaml, San Francisco)."""
CONFIG = Path(__file__).resolve().parent / "riverton.yaml"
"""The test city, Riverton: hand-drawn districts, kinds, indicators, departments, scenarios."""


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
    """The config at ``path`` (default: the test city, Riverton) with its city file merged in
    and every default spelled out, as one mapping, for tests that change a key or two."""
    from settings.loader import dump, load

    return dump(load(path, env={}))
