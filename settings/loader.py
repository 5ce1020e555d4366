"""Load cityheart's configuration once: config.yaml plus environment overrides.

    settings = load("config.yaml")           # reads os.environ for overrides
    settings = load("config.yaml", env={})   # no overrides, for tests

A missing file, malformed YAML, an unknown key or a bad value raises ConfigError whose message
names the file and the dotted key, for example ``config.yaml: kinds.pm25.range: ...``.

Environment overrides (secrets and addresses belong here, not in the file):

=========================== =====================================================
CITYHEART_MQTT_URL          mqtt.url; an external broker, so mqtt.embedded=false
CITYHEART_MQTT_PROTOCOL     mqtt.protocol: "5" or "3.1.1" (amqtt speaks only 3.1.1)
CITYHEART_MQTT_USERNAME     mqtt.username
CITYHEART_MQTT_PASSWORD     mqtt.password (kept as a secret, masked in repr)
CITYHEART_KAFKA_BOOTSTRAP   kafka.bootstrap; external, so kafka.embedded=false
CITYHEART_DATABASE_URL      database.url; an external server, so database.embedded=false
CITYHEART_FEED_HOST         feed.host
CITYHEART_FEED_PORT         feed.port
CITYHEART_METRICS_ENABLED   metrics.enabled: "true" or "false"
CITYHEART_METRICS_HOST      metrics.host: where /metrics listens (0.0.0.0 in a container)
CITYHEART_METRICS_PORT      metrics.port: this process's /metrics port (overrides metrics.ports)
=========================== =====================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from models.errors import ConfigError
from settings.config import Settings
from settings.geography import apply_boundaries

__all__ = ["ENV_OVERRIDES", "dump", "load", "load_mapping"]

# variable -> (section, key, value that makes the section external or None)
ENV_OVERRIDES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "CITYHEART_MQTT_URL": ("mqtt", "url", {"embedded": False}),
    "CITYHEART_MQTT_PROTOCOL": ("mqtt", "protocol", None),
    "CITYHEART_MQTT_USERNAME": ("mqtt", "username", None),
    "CITYHEART_MQTT_PASSWORD": ("mqtt", "password", None),
    "CITYHEART_KAFKA_BOOTSTRAP": ("kafka", "bootstrap", {"embedded": False}),
    "CITYHEART_DATABASE_URL": ("database", "url", {"embedded": False}),
    "CITYHEART_FEED_HOST": ("feed", "host", None),
    "CITYHEART_FEED_PORT": ("feed", "port", None),
    "CITYHEART_METRICS_ENABLED": ("metrics", "enabled", None),
    "CITYHEART_METRICS_HOST": ("metrics", "host", None),
    "CITYHEART_METRICS_PORT": ("metrics", "port", None),
}


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration file at ``path`` with overrides from ``env``."""
    path = Path(path)
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the configuration: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # PyYAML raises ValueError for impossible dates (2026-13-45) and RecursionError for
        # deeply nested flow collections, besides its own YAMLError
        raise ConfigError(source, "", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(source, "", "the top level must be a mapping of sections")
    return load_mapping(
        raw, source=source, env=os.environ if env is None else env, base_dir=path.parent
    )


def load_mapping(
    raw: Mapping[str, Any],
    *,
    source: str = "config",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Settings:
    """Validate an already parsed configuration mapping (with optional env overrides).

    ``city.boundaries.file`` is read relative to ``base_dir`` (default: the working directory).
    """
    data = {section: value for section, value in raw.items()}
    geography = None
    city = data.get("city")
    if isinstance(city, Mapping) and city.get("boundaries") is not None:
        data, geography = apply_boundaries(data, source=source, base_dir=base_dir or Path.cwd())
    overridden: dict[tuple[str, str], str] = {}
    for variable, (section, key, implies) in ENV_OVERRIDES.items():
        if env and variable in env:
            current = data.get(section) or {}
            if not isinstance(current, Mapping):
                reason = f"must be a mapping (it takes {variable}), got {current!r}"
                raise ConfigError(source, section, reason)
            section_data = dict(current)
            section_data[key] = env[variable]
            if implies:
                section_data.update(implies)
            data[section] = section_data
            overridden[(section, key)] = variable
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _dotted(error["loc"])
        where = source
        for (section, field), variable in overridden.items():
            if key == f"{section}.{field}":
                where = f"environment variable {variable}"
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown key"
        elif error["type"] == "missing":
            reason = "required key is missing"
        elif "input" in error and error["type"] != "value_error":
            reason = f"{reason} (got {error['input']!r})"
        raise ConfigError(where, key, reason) from exc
    for key, reason in settings.reference_problems():
        raise ConfigError(source, key, reason)
    if geography is not None:
        settings._geography = geography
    return settings


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else str(part)
    return key


def dump(settings: Settings) -> dict[str, Any]:
    """``settings`` as a mapping that :func:`load_mapping` reads back to equal settings.

    For handing a derived configuration to a child process: secrets are written in clear (the
    file must be private) and keys carry their config.yaml names.
    """
    data = settings.model_dump(mode="json", by_alias=True)
    if settings.city.boundaries is not None:
        del data["districts"]  # derived from the boundaries file (its path is absolute by now)
    data["database"]["url"] = settings.database.url.get_secret_value()
    if settings.mqtt.password is not None:
        data["mqtt"]["password"] = settings.mqtt.password.get_secret_value()
    return data
