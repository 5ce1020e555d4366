"""Load cityheart's configuration once: config.yaml, the city file it names, environment overrides.

    settings = load("config.yaml")           # reads os.environ for overrides
    settings = load("config.yaml", env={})   # no overrides, for tests
    raw = read_config("config.yaml")         # the merged mapping, not validated

Two files, one schema (:class:`settings.config.Settings`): the deployment's ``config.yaml``
(servers, ports, the demo simulator) names the city's file with ``city_file`` (a path relative
to it, for example ``city.yaml``: districts, sensor kinds, indicators, departments). Each top-level
section lives in one of the two; one in both is refused. Every default lives in the schema, so
either file holds only what differs.

A missing file, malformed YAML, an unknown key or a bad value raises ConfigError whose message
names the file and the dotted key, for example ``city.yaml: kinds.pm25.range: ...``.

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

__all__ = ["CITY_FILE_KEY", "ENV_OVERRIDES", "dump", "load", "load_mapping", "read_config"]

CITY_FILE_KEY = "city_file"
"""The key of config.yaml that names the city's file, relative to config.yaml."""

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
    """Read and validate the configuration at ``path`` (and its city file) with overrides from
    ``env``."""
    raw, sources = _read(Path(path))
    return load_mapping(raw, source=Path(path).name, env=os.environ if env is None else env,
                        sources=sources, base_dir=Path(path).parent)


def read_config(path: str | Path) -> dict[str, Any]:
    """The configuration at ``path`` with its city file's sections merged in, not validated."""
    return _read(Path(path))[0]


def _read(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(merged mapping, the file name each top-level section came from)."""
    raw = _read_mapping(path)
    sources = dict.fromkeys(raw, path.name)
    city_file = raw.pop(CITY_FILE_KEY, None)
    sources.pop(CITY_FILE_KEY, None)
    if city_file is None:
        return raw, sources
    if not isinstance(city_file, str) or not city_file:
        raise ConfigError(path.name, CITY_FILE_KEY, f"must be a file name, got {city_file!r}")
    city_path = path.parent / city_file
    city = _read_mapping(city_path)
    if CITY_FILE_KEY in city:
        raise ConfigError(city_path.name, CITY_FILE_KEY, "a city file names no other city file")
    for section, value in city.items():
        if section in raw:
            reason = f"is in both {path.name} and {city_path.name}: keep it in one"
            raise ConfigError(path.name, section, reason)
        raw[section] = value
        sources[section] = city_path.name
    return raw, sources


def _read_mapping(path: Path) -> dict[str, Any]:
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        # an installed cityheart has no config.yaml of its own: say where we looked and how to
        # give one (the source repository's config.yaml is the complete, commented example)
        msg = (f"cannot read the configuration: there is no {path.absolute()}; name the city's "
               "config.yaml with --config or CITYHEART_CONFIG (the config.yaml of cityheart's "
               "source repository is a complete example)")
        raise ConfigError(str(path), "", msg) from exc
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
    return raw


def load_mapping(
    raw: Mapping[str, Any], *, source: str = "config", env: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None, base_dir: Path | None = None,
) -> Settings:
    """Validate an already parsed configuration mapping (with optional env overrides).

    ``sources`` names the file each top-level section came from (default: ``source``), so an
    error names the file that holds the key. ``city.boundaries.file`` is read relative to
    ``base_dir`` (default: the working directory)."""
    sources = sources or {}
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
        where = sources.get(str(error["loc"][0]), source) if error["loc"] else source
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
        raise ConfigError(sources.get(key.split(".")[0].split("[")[0], source), key, reason)
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
