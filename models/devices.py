"""The device registry: which devices may publish, where, and with which (hashed) secret.

Pure model, no I/O: ``cityheart.devices`` reads and writes the YAML file and generates the
secrets; this module validates the registry, and :mod:`connectors.mqtt_accounts` hashes the
secrets and renders what mosquitto needs from it::

    registry = parse_registry(yaml.safe_load(text), source="devices.yaml",
                              district_ids=settings.district_ids(), kind_ids=settings.kinds)
    hashed = hash_password("a generated secret", salt=os.urandom(12))
    registry = registry.with_device(Device(id="pm25-old-town-001", district="old-town",
                                           kind="pm25", password_hash=hashed,
                                           added_at="2026-11-26T08:00:00Z"))
    passwd = password_file([(d.id, d.password_hash) for d in registry.active()])
    acl = acl_file(registry, "city", reader="cityheart-bridge")

Each device may write only its own topic ``<prefix>/<district>/<kind>/<device_id>``
(:meth:`Device.topic`). Secrets are kept as mosquitto's ``$7$`` hashes (PBKDF2-HMAC-SHA512,
64-byte key, 12-byte salt, base64 with padding: the format ``mosquitto_passwd`` writes since
2.0), so the registry never holds a password and the password file is rendered straight from it.
A revoked device stays in the registry (with ``revoked_at``) but is left out of both files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.errors import ConfigError

__all__ = [
    "DEVICE_ID_PATTERN",
    "Device",
    "DeviceRegistry",
    "parse_registry",
    "registry_mapping",
]

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
"""A device id: one MQTT topic level and a mosquitto user name (no ``/ + # :`` or spaces)."""

_HASH_PATTERN = r"^\$7\$[0-9]+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$"


class Device(BaseModel):
    """One registered device: its id, where it is, what it measures and its hashed secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    district: str
    kind: str
    password_hash: Annotated[str, Field(pattern=_HASH_PATTERN, repr=False)]
    added_at: str
    """ISO 8601 UTC time the device was added (or its secret last changed)."""
    revoked_at: str | None = None
    """ISO 8601 UTC time it was revoked; None while it may connect."""
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    """Where the device is installed (WGS84 degrees; both or neither of lat and lon)."""
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None
    owner: str | None = None
    """The department that owns and maintains it."""
    model: str | None = None
    """Its make and model."""
    installed: date | None = None
    """The day it was installed."""

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            msg = "give both lat and lon (WGS84 degrees), or neither"
            raise ValueError(msg)
        return self

    @property
    def position(self) -> tuple[float, float] | None:
        """(lat, lon) where it is installed, or None."""
        if self.lat is None or self.lon is None:
            return None
        return self.lat, self.lon

    @property
    def active(self) -> bool:
        """Whether the device may connect (not revoked)."""
        return self.revoked_at is None

    def topic(self, prefix: str) -> str:
        """The one MQTT topic this device may publish on."""
        return f"{prefix}/{self.district}/{self.kind}/{self.id}"


class DeviceRegistry(BaseModel):
    """Every device ever registered, in the order they were added."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    devices: tuple[Device, ...] = ()

    def get(self, device_id: str) -> Device | None:
        """The device with ``device_id``, or None."""
        return next((d for d in self.devices if d.id == device_id), None)

    def active(self) -> list[Device]:
        """The devices that may connect."""
        return [d for d in self.devices if d.active]

    def positions(self) -> dict[str, tuple[float, float]]:
        """The (lat, lon) of each device that has one (revoked ones too: their late readings
        still belong where they were)."""
        return {d.id: d.position for d in self.devices if d.position is not None}

    def expected(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """The active devices' ids by district and kind: who should report where."""
        found: dict[str, dict[str, list[str]]] = {}
        for device in self.active():
            found.setdefault(device.district, {}).setdefault(device.kind, []).append(device.id)
        return {d: {k: tuple(ids) for k, ids in kinds.items()} for d, kinds in found.items()}

    def with_device(self, device: Device, *, source: str = "registry") -> DeviceRegistry:
        """A registry with ``device`` added; ConfigError if its id is already registered."""
        known = self.get(device.id)
        if known is not None:
            state = "revoked" if not known.active else "registered"
            msg = f"{device.id!r} is already {state} (added {known.added_at}); choose another id"
            raise ConfigError(source, "devices", msg)
        return DeviceRegistry(devices=(*self.devices, device))

    def with_password(self, device_id: str, password_hash: str, at: str,
                      *, source: str = "registry") -> DeviceRegistry:
        """A registry where active ``device_id`` has a new secret (as of ``at``)."""
        device = self._active(device_id, source)
        updated = device.model_copy(update={"password_hash": password_hash, "added_at": at})
        return self._replace(Device.model_validate(updated.model_dump()))

    def revoked(self, device_id: str, at: str, *, source: str = "registry") -> DeviceRegistry:
        """A registry where ``device_id`` is revoked as of ``at`` (ISO 8601 UTC)."""
        device = self._active(device_id, source)
        return self._replace(device.model_copy(update={"revoked_at": at}))

    def _active(self, device_id: str, source: str) -> Device:
        device = self.get(device_id)
        if device is None:
            msg = f"{device_id!r} is not a registered device"
            raise ConfigError(source, "devices", msg)
        if not device.active:
            msg = f"{device_id!r} was revoked at {device.revoked_at}"
            raise ConfigError(source, "devices", msg)
        return device

    def _replace(self, device: Device) -> DeviceRegistry:
        return DeviceRegistry(
            devices=tuple(device if d.id == device.id else d for d in self.devices)
        )

    def problems(
        self, district_ids: Iterable[str], kind_ids: Iterable[str]
    ) -> list[tuple[str, str]]:
        """(dotted key, reason) for each repeated id, unknown district and unknown kind."""
        districts, kinds = set(district_ids), set(kind_ids)
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for number, device in enumerate(self.devices):
            where = f"devices[{number}]"
            if device.id in seen:
                problems.append((f"{where}.id", f"{device.id!r} is repeated"))
            seen.add(device.id)
            if device.district not in districts:
                reason = f"{device.district!r} is not a district id (one of {sorted(districts)})"
                problems.append((f"{where}.district", reason))
            if device.kind not in kinds:
                reason = f"{device.kind!r} is not a kind id (one of {sorted(kinds)})"
                problems.append((f"{where}.kind", reason))
        return problems


def parse_registry(
    raw: Any, *, source: str, district_ids: Iterable[str], kind_ids: Iterable[str]
) -> DeviceRegistry:
    """Validate a parsed registry file (None: empty); ConfigError naming the file and key."""
    if raw is None:
        return DeviceRegistry()
    if not isinstance(raw, Mapping):
        raise ConfigError(source, "", "the top level must be a mapping with a `devices` list")
    data = dict(raw)
    if data.get("devices") is None:
        data["devices"] = []
    try:
        registry = DeviceRegistry.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _dotted(error["loc"])
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown key"
        elif error["type"] == "missing":
            reason = "required key is missing"
        elif "input" in error:
            reason = f"{reason} (got {error['input']!r})"
        raise ConfigError(source, key, reason) from exc
    for key, reason in registry.problems(district_ids, kind_ids):
        raise ConfigError(source, key, reason)
    return registry


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def registry_mapping(registry: DeviceRegistry) -> dict[str, Any]:
    """``registry`` as the mapping the YAML file holds (:func:`parse_registry` reads it back);
    the optional fields a device lacks are left out."""
    return {"devices": [
        d.model_dump(exclude_none=True) | {"revoked_at": d.revoked_at} for d in registry.devices
    ]}
