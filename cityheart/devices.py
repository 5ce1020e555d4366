"""``cityheart devices``: the device registry, device secrets, mosquitto's password file and ACL.

    path = registry_path(settings, Path("config.yaml"))      # mqtt.device_auth.registry
    password = add_device(settings, path, "pm25-mission-001", kind="pm25",
                          details={"lat": 37.7599, "lon": -122.4148, "owner": "environment"})
    added = import_devices(settings, path, Path("sensors.csv"))   # [(device, password), ...]
    revoke_device(settings, path, "pm25-mission-001")
    export_files(settings, load_registry(settings, path), passwd=Path("passwd"),
                 acl=Path("acl"), bridge_password="...")

The registry (YAML, default ``devices.yaml`` next to config.yaml) holds each device's id,
district, kind, position, owner (department), model, install date and the ``$7$`` hash of its
secret (:mod:`models.devices`); a secret is generated here, printed once by ``cityheart devices
add`` (or ``import``) and never stored. A device given a position but no district is in the
district holding it; a position outside every district, or in another district than the one
given, is refused.

Import files: CSV with a header row (``id``, ``kind``, and any of ``district``, ``lat``,
``lon``, ``owner``, ``model``, ``installed``), or a GeoJSON FeatureCollection of Points (the
point is the position; the same names as properties). Every row is checked before any is
added: one bad row and nothing changes. ``export`` renders the files
mosquitto loads: every active device may write only ``<prefix>/<district>/<kind>/<id>``; the
bridge's account (``mqtt.username``, else ``cityheart-bridge``, password from
``CITYHEART_MQTT_PASSWORD``) reads ``<prefix>/#``; the gateway account
(``mqtt.device_auth.gateway``, password from ``CITYHEART_MQTT_GATEWAY_PASSWORD``, left out when
that is unset) writes ``<prefix>/#``. :func:`start_authenticated_broker` does the same for the
embedded mosquitto of ``cityheart up``, with fresh service passwords each run.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cityheart.runtime.servers import EmbeddedServer, start_mqtt_broker
from connectors.files import write_atomically
from connectors.mqtt_accounts import acl_file, hash_password, password_file
from models.devices import Device, DeviceRegistry, parse_registry, registry_mapping
from models.errors import ConfigError
from models.timefmt import iso
from settings.config import Settings

__all__ = [
    "BRIDGE_ACCOUNT",
    "GATEWAY_PASSWORD_ENV",
    "add_device",
    "import_devices",
    "read_device_file",
    "bridge_account",
    "export_files",
    "export_from_env",
    "load_registry",
    "new_secret",
    "registry_path",
    "revoke_device",
    "rotate_device",
    "save_registry",
    "start_authenticated_broker",
]

log = logging.getLogger(__name__)

BRIDGE_ACCOUNT = "cityheart-bridge"
"""The bridge's MQTT user name when config.yaml sets no ``mqtt.username``."""

GATEWAY_PASSWORD_ENV = "CITYHEART_MQTT_GATEWAY_PASSWORD"
"""The environment variable holding the gateway account's password for ``export``."""

_HEADER = (
    "# cityheart device registry, kept by `cityheart devices` (add, revoke, rotate, export).\n"
    "# Secrets are mosquitto $7$ hashes (PBKDF2-SHA512); a device's password is shown once.\n"
)

Clock = Callable[[], float]


def registry_path(settings: Settings, config_path: Path) -> Path:
    """The registry file: ``mqtt.device_auth.registry``, relative to config.yaml's directory."""
    return config_path.resolve().parent / settings.mqtt.device_auth.registry


def load_registry(settings: Settings, path: Path) -> DeviceRegistry:
    """Read and validate the registry at ``path`` (missing: empty) against the city's config."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DeviceRegistry()
    except OSError as exc:
        msg = f"cannot read the device registry: {exc.strerror}"
        raise ConfigError(str(path), "", msg) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"not valid YAML: {exc}"
        raise ConfigError(path.name, "", msg) from exc
    return parse_registry(
        raw, source=path.name, district_ids=settings.district_ids(), kind_ids=settings.kinds
    )


def save_registry(path: Path, registry: DeviceRegistry) -> None:
    """Write ``registry`` to ``path`` atomically, readable by its owner only."""
    text = _HEADER + yaml.safe_dump(registry_mapping(registry), sort_keys=False)
    write_atomically(path, text)


def new_secret() -> str:
    """A fresh device or service password: 128 random bits, URL-safe text."""
    return secrets.token_urlsafe(16)


def _hashed(password: str) -> str:
    return hash_password(password, salt=os.urandom(12))


def add_device(
    settings: Settings,
    path: Path,
    device_id: str,
    *,
    kind: str,
    district: str | None = None,
    details: Mapping[str, Any] | None = None,
    clock: Clock = time.time,
) -> str:
    """Register a device in the file at ``path``; return its generated password (shown once).

    ``details`` may give ``lat``, ``lon``, ``owner``, ``model`` and ``installed``; without a
    ``district`` the position's district is taken. ConfigError names the key when the id is
    malformed or taken, the district or kind is not in config.yaml, or the position is outside
    the city or in another district.
    """
    registry = load_registry(settings, path)
    [(device, password)] = _new_devices(
        settings, [{"id": device_id, "kind": kind, "district": district, **(details or {})}],
        source=path.name, at=iso(clock()), keys=lambda _n, field: field,
    )
    registry = registry.with_device(device, source=path.name)
    for key, reason in registry.problems(settings.district_ids(), settings.kinds):
        raise ConfigError(path.name, key, reason)
    save_registry(path, registry)
    log.info("registered device %s (%s, %s)", device_id, device.district, kind)
    return password


def import_devices(
    settings: Settings, path: Path, file: Path, *, clock: Clock = time.time
) -> list[tuple[Device, str]]:
    """Register every device of ``file`` (CSV or GeoJSON points, see the module docstring) in
    the registry at ``path``, all or none; each new device with its password (shown once)."""
    rows = read_device_file(file)
    registry = load_registry(settings, path)
    added = _new_devices(settings, rows, source=file.name, at=iso(clock()),
                         keys=lambda number, field: f"row {number}.{field}")
    for number, (device, _) in enumerate(added, 1):
        registry = registry.with_device(device, source=f"{file.name} row {number}")
    for key, reason in registry.problems(settings.district_ids(), settings.kinds):
        raise ConfigError(path.name, key, reason)
    save_registry(path, registry)
    log.info("imported %d devices from %s", len(added), file)
    return added


def read_device_file(file: Path) -> list[dict[str, Any]]:
    """The rows of a CSV (``.csv``) or GeoJSON points (``.geojson``, ``.json``) device file."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), "", f"cannot read the device file: {exc.strerror}") from exc
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return [{k.strip(): (v.strip() if v is not None and v.strip() else None)
                 for k, v in row.items() if k} for row in csv.DictReader(text.splitlines())]
    if suffix not in (".geojson", ".json"):
        msg = f"{file.suffix or 'no suffix'!r} is not a device file type (.csv, .geojson, .json)"
        raise ConfigError(file.name, "", msg)
    try:
        collection = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(file.name, "", f"not valid JSON: {exc}") from exc
    features = collection.get("features") if isinstance(collection, dict) else None
    if not isinstance(features, list):
        raise ConfigError(file.name, "", "not a GeoJSON FeatureCollection (no features list)")
    rows = []
    for number, feature in enumerate(features, 1):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        point = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point" or not (
                isinstance(point, list) and len(point) >= 2):
            msg = "the geometry must be a Point [lon, lat]"
            raise ConfigError(file.name, f"row {number}.geometry", msg)
        properties = feature.get("properties") or {}
        rows.append({**properties, "lon": point[0], "lat": point[1]})
    return rows


_FIELDS = ("id", "kind", "district", "lat", "lon", "owner", "model", "installed")


def _new_devices(
    settings: Settings, rows: list[dict[str, Any]], *, source: str, at: str,
    keys: Callable[[int, str], str],
) -> list[tuple[Device, str]]:
    """Each row as a new Device with a fresh password; ConfigError naming row and field."""
    from models.geography import Locator

    locator = Locator(settings.geography.districts)
    out = []
    for number, row in enumerate(rows, 1):
        unknown = sorted(set(row) - set(_FIELDS))
        if unknown:
            msg = f"unknown column(s) {unknown}; the columns are {list(_FIELDS)}"
            raise ConfigError(source, keys(number, unknown[0]), msg)
        fields = {k: v for k, v in row.items() if v is not None}
        password = new_secret()
        try:
            device = Device.model_validate({
                **fields, "district": fields.get("district") or "?",
                "password_hash": _hashed(password), "added_at": at,
            })
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "id"
            reason = f"{error['msg'].removeprefix('Value error, ')} (got {error.get('input')!r})"
            raise ConfigError(source, keys(number, field), reason) from exc
        district = fields.get("district")
        if device.position is None:
            if district is None:
                msg = "give the device's district, or its position (lat and lon) to find it"
                raise ConfigError(source, keys(number, "district"), msg)
        else:
            found = locator.locate(*device.position)
            where = f"lat {device.lat}, lon {device.lon}"
            if found is None:
                msg = f"{where} is outside every district of the city"
                raise ConfigError(source, keys(number, "lat"), msg)
            if district is not None and district != found:
                msg = f"{where} is in district {found!r}, not {district!r}"
                raise ConfigError(source, keys(number, "district"), msg)
            device = device.model_copy(update={"district": found})
        out.append((device, password))
    return out


def rotate_device(
    settings: Settings, path: Path, device_id: str, *, clock: Clock = time.time
) -> str:
    """Give an active device a new password; return it (the old one stops at the next export)."""
    password = new_secret()
    registry = load_registry(settings, path).with_password(
        device_id, _hashed(password), iso(clock()), source=path.name
    )
    save_registry(path, registry)
    log.info("new secret for device %s", device_id)
    return password


def revoke_device(
    settings: Settings, path: Path, device_id: str, *, clock: Clock = time.time
) -> Device:
    """Revoke a device (it stays listed; the next export leaves it out); return it."""
    registry = load_registry(settings, path).revoked(device_id, iso(clock()), source=path.name)
    save_registry(path, registry)
    log.info("revoked device %s", device_id)
    device = registry.get(device_id)
    assert device is not None
    return device


def bridge_account(settings: Settings) -> str:
    """The bridge's MQTT user name."""
    return settings.mqtt.username or BRIDGE_ACCOUNT


def export_files(
    settings: Settings,
    registry: DeviceRegistry,
    *,
    passwd: Path,
    acl: Path,
    bridge_password: str,
    gateway_password: str | None = None,
) -> None:
    """Write mosquitto's password file and ACL for ``registry`` and the service accounts.

    The gateway account goes in only when ``mqtt.device_auth.gateway`` names one and
    ``gateway_password`` is given.
    """
    gateway = settings.mqtt.device_auth.gateway if gateway_password else None
    reader = bridge_account(settings)
    accounts = [(reader, _hashed(bridge_password))]
    if gateway is not None and gateway_password:
        accounts.append((gateway, _hashed(gateway_password)))
    accounts += [(d.id, d.password_hash) for d in registry.active()]
    try:
        acl_text = acl_file(registry, settings.mqtt.topic_prefix, reader=reader, gateway=gateway)
        passwd_text = password_file(accounts)
    except ValueError as exc:
        raise ConfigError("device registry", "devices", str(exc)) from exc
    write_atomically(passwd, passwd_text)
    write_atomically(acl, acl_text)
    log.info("exported %d device accounts to %s and %s", len(registry.active()), passwd, acl)


def export_from_env(
    settings: Settings, registry: DeviceRegistry, *, passwd: Path, acl: Path,
    env: Mapping[str, str],
) -> None:
    """:func:`export_files` with the bridge's password from settings (CITYHEART_MQTT_PASSWORD)
    and the gateway's from ``env`` (:data:`GATEWAY_PASSWORD_ENV`)."""
    if settings.mqtt.password is None:
        msg = ("the bridge's password is needed (its account goes in the password file); "
               "set it and give the bridge the same")
        raise ConfigError("environment", "CITYHEART_MQTT_PASSWORD", msg)
    gateway_password = env.get(GATEWAY_PASSWORD_ENV) or None
    if settings.mqtt.device_auth.gateway and not gateway_password:
        log.warning("%s is not set: no gateway account %r exported",
                    GATEWAY_PASSWORD_ENV, settings.mqtt.device_auth.gateway)
    export_files(settings, registry, passwd=passwd, acl=acl,
                 bridge_password=settings.mqtt.password.get_secret_value(),
                 gateway_password=gateway_password)


def start_authenticated_broker(
    settings: Settings, config_path: Path, *, log_path: Path | None = None
) -> tuple[EmbeddedServer, dict[str, dict[str, str]]]:
    """Start the embedded mosquitto with the registry's devices and fresh service accounts.

    Returns the server and, by component name (``bridge``, ``simulate``), the environment that
    logs it in: the bridge with its account (``CITYHEART_MQTT_PASSWORD`` if set, else a new
    password), the simulator with the gateway account (if ``mqtt.device_auth.gateway``).
    """
    mqtt = settings.mqtt
    path = registry_path(settings, config_path)
    registry = load_registry(settings, path)
    if not registry.active():
        log.warning("no active device in %s: only the service accounts may connect", path)
    bridge_password = mqtt.password.get_secret_value() if mqtt.password else new_secret()
    gateway_password = new_secret() if mqtt.device_auth.gateway else None
    with tempfile.TemporaryDirectory(prefix="cityheart-mqtt-auth-") as scratch:
        passwd, acl = Path(scratch) / "passwd", Path(scratch) / "acl"
        export_files(settings, registry, passwd=passwd, acl=acl,
                     bridge_password=bridge_password, gateway_password=gateway_password)
        server = start_mqtt_broker(  # it keeps copies of the files
            mqtt.port, prefer=mqtt.embedded_broker, log_path=log_path,
            password_file=passwd, acl_file=acl,
        )
    env = {"bridge": _login(bridge_account(settings), bridge_password)}
    if mqtt.device_auth.gateway and gateway_password:
        env["simulate"] = _login(mqtt.device_auth.gateway, gateway_password)
    return server, env


def _login(user: str, password: str) -> dict[str, str]:
    return {"CITYHEART_MQTT_USERNAME": user, "CITYHEART_MQTT_PASSWORD": password}
