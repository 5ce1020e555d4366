"""The ``cityheart devices`` command group (registered in ``cityheart.cli``).

    cityheart devices add pm25-mission-001 --district mission --kind pm25   # password, once
    cityheart devices add bus-12 --kind pm25 --lat 37.76 --lon -122.42 --owner transit \
        --model "AQ-200" --installed 2026-03-01              # district: the position's
    cityheart devices import sensors.csv                     # or points.geojson; passwords once
    cityheart devices list [--json] [--no-history]           # state, last seen, position
    cityheart devices list --near 37.76,-122.42 --radius 500m   # or --within D, --bbox S,W,N,E
    cityheart devices rotate pm25-mission-001                # a new password
    cityheart devices revoke pm25-mission-001
    cityheart devices export --passwd /etc/mosquitto/passwd --acl /etc/mosquitto/acl

The work is done by :mod:`cityheart.devices`; this module parses options and prints. ``list``
asks the history database (config.yaml's ``database``) when each device last reported and the
flow's newest device-health verdicts: ok, silent, stuck, out_of_range (readings rejected),
missing (registered, never reported) or revoked; with the database down (or
``--no-history``) it says so on stderr and lists active devices as ``active``. ``--near``,
``--within`` and ``--bbox`` keep the devices whose registered position they hold (devices
without one are left out), measured as the database measures readings' positions
(:mod:`models.spatial`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import orjson
import typer

from cityheart.devices import (
    add_device,
    export_from_env,
    import_devices,
    load_registry,
    registry_path,
    revoke_device,
    rotate_device,
)
from cityheart.spatial_cli import (
    BboxOption,
    NearOption,
    RadiusOption,
    WithinOption,
    spatial_filter,
)
from models.devices import DeviceRegistry
from models.errors import CityheartError, ConnectorError
from models.inventory import DeviceRow, inventory, missing_by_district
from settings.config import Settings
from settings.loader import load

__all__ = ["devices_app"]

devices_app = typer.Typer(
    no_args_is_help=True,
    help="Device accounts on the MQTT broker: the registry, passwords, password file and ACL.",
)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The city's config.yaml.", envvar="CITYHEART_CONFIG")
]
RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", help="The registry file (default: mqtt.device_auth.registry)."),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")]


def _run(
    config: Path, registry: Path | None, verbose: bool,
    action: Callable[[Settings, Path], None],
) -> None:
    """Load the settings and run ``action`` with the registry path; exit 2: bad config, 1: error."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load(config)
    except CityheartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        action(settings, registry or registry_path(settings, config))
    except CityheartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@devices_app.command("add")
def add(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="The device id (its user name).")],
    kind: Annotated[str, typer.Option(help="Its sensor kind (config.yaml).")],
    district: Annotated[
        str | None, typer.Option(help="Its district id (default: the position's).")
    ] = None,
    lat: Annotated[float | None, typer.Option(help="Its latitude (WGS84 degrees).")] = None,
    lon: Annotated[float | None, typer.Option(help="Its longitude (WGS84 degrees).")] = None,
    owner: Annotated[str | None, typer.Option(help="The department that owns it.")] = None,
    model: Annotated[str | None, typer.Option(help="Its make and model.")] = None,
    installed: Annotated[
        str | None, typer.Option(help="The day it was installed (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    registry: RegistryOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Register a device and print its generated password (shown once, never stored)."""
    given = {"lat": lat, "lon": lon, "owner": owner, "model": model, "installed": installed}
    details = {key: value for key, value in given.items() if value is not None}

    def action(settings: Settings, path: Path) -> None:
        password = add_device(settings, path, device_id, district=district, kind=kind,
                              details=details)
        _print_password(settings, path, device_id, password, as_json)

    _run(config, registry, verbose, action)


@devices_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV, or GeoJSON points.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    registry: RegistryOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Register every device of a CSV or GeoJSON file (all or none); print their passwords."""

    def action(settings: Settings, path: Path) -> None:
        prefix = settings.mqtt.topic_prefix
        added = import_devices(settings, path, file)
        for device, password in added:
            if as_json:
                record = {"id": device.id, "username": device.id, "password": password,
                          "topic": device.topic(prefix), "district": device.district}
                typer.echo(orjson.dumps(record).decode())
            else:
                typer.echo(f"{device.id:32} {password}  {device.topic(prefix)}")
        typer.echo(f"{len(added)} devices imported into {path} (passwords shown once, not "
                   "stored; run `cityheart devices export` to apply)", err=True)

    _run(config, registry, verbose, action)


@devices_app.command("rotate")
def rotate(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="The device id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    registry: RegistryOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Give a device a new password and print it (export again to apply it)."""

    def action(settings: Settings, path: Path) -> None:
        password = rotate_device(settings, path, device_id)
        _print_password(settings, path, device_id, password, as_json)

    _run(config, registry, verbose, action)


def _print_password(
    settings: Settings, path: Path, device_id: str, password: str, as_json: bool
) -> None:
    """Print a device's new password with the topic it may publish on."""
    device = load_registry(settings, path).get(device_id)
    assert device is not None
    _print_secret(device_id, device.topic(settings.mqtt.topic_prefix), password, as_json)


def _print_secret(device_id: str, topic: str, password: str, as_json: bool) -> None:
    if as_json:
        record = {"id": device_id, "username": device_id, "password": password, "topic": topic}
        typer.echo(orjson.dumps(record).decode())
        return
    typer.echo(f"device {device_id}: publish on {topic}")
    typer.echo(f"username: {device_id}")
    typer.echo(f"password: {password}")
    typer.echo("(shown once and not stored: give it to the device now; "
               "run `cityheart devices export` to apply)")


@devices_app.command("revoke")
def revoke(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="The device id.")],
    registry: RegistryOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Revoke a device: the next export leaves it out of the password file and ACL."""

    def action(settings: Settings, path: Path) -> None:
        device = revoke_device(settings, path, device_id)
        typer.echo(f"device {device_id} revoked at {device.revoked_at}; "
                   "run `cityheart devices export` and reload the broker to apply")

    _run(config, registry, verbose, action)


@devices_app.command("list")
def list_devices(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    history: Annotated[
        bool, typer.Option("--history/--no-history", help="Ask the history database.")
    ] = True,
    database_url: Annotated[
        str | None, typer.Option(help="History database (default: config.yaml's).",
                                 envvar="CITYHEART_DATABASE_URL")
    ] = None,
    near: NearOption = None,
    radius: RadiusOption = None,
    within: WithinOption = None,
    bbox: BboxOption = None,
    registry: RegistryOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """List the registered devices: state, last seen, position, owner, model, topic (or those
    near a point, within a district or in a box)."""

    def action(settings: Settings, path: Path) -> None:
        prefix = settings.mqtt.topic_prefix
        try:
            where = spatial_filter(settings, (near, radius, within, bbox))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        devices = load_registry(settings, path)
        if not devices.devices:
            typer.echo(f"no devices registered in {path} (add one with: cityheart devices add "
                       "ID --district D --kind K)", err=True)
            return
        if where is not None:
            devices = DeviceRegistry(devices=tuple(
                d for d in devices.devices
                if d.position is not None and where.contains(*d.position)))
        rows = _rows(settings, devices, database_url) if history else inventory(
            devices, last_seen=None, health=None)
        for row in rows:
            if as_json:
                record = {**row.as_dict(), "topic": row.device.topic(prefix)}
                typer.echo(orjson.dumps(record).decode())
            else:
                typer.echo(_line(row, prefix))
        missing = missing_by_district(rows)
        if missing:
            per = ", ".join(f"{d} {n}" for d, n in sorted(missing.items()))
            typer.echo(f"missing (registered, never reported): {sum(missing.values())} "
                       f"city-wide; {per}", err=True)

    _run(config, registry, verbose, action)


def _rows(settings: Settings, devices: DeviceRegistry, url: str | None) -> list[DeviceRow]:
    """The rows with history; without it (database down) said on stderr."""
    from cityheart.history import open_history_storage

    try:
        with open_history_storage(settings, url) as storage:
            seen = storage.history.last_seen([d.id for d in devices.devices])
            latest = storage.history.latest("indicators", names=["device_health"])
    except ConnectorError as exc:
        typer.echo(f"no device states: {exc}", err=True)
        return inventory(devices, last_seen=None, health=None)
    return inventory(devices, last_seen=seen,
                     health=[record.get("components") or [] for record in latest])


def _line(row: DeviceRow, prefix: str) -> str:
    from models.timefmt import iso

    device = row.device
    where = f"{device.lat:.6f},{device.lon:.6f}" if device.position else "-"
    seen = iso(row.last_seen) if row.last_seen is not None else (
        "never" if row.state == "missing" else "-")
    return (f"{device.id:32} {row.state:12} {seen:24} {where:22} {device.owner or '-':16} "
            f"{device.topic(prefix)}")


@devices_app.command("export")
def export(
    passwd: Annotated[Path, typer.Option("--passwd", help="The mosquitto password file to write.")],
    acl: Annotated[Path, typer.Option("--acl", help="The mosquitto ACL file to write.")],
    registry: RegistryOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Write mosquitto's password file and ACL (bridge password: CITYHEART_MQTT_PASSWORD)."""

    def action(settings: Settings, path: Path) -> None:
        devices = load_registry(settings, path)
        export_from_env(settings, devices, passwd=passwd, acl=acl, env=os.environ)
        typer.echo(f"{len(devices.active())} devices exported to {passwd} and {acl}; "
                   "reload mosquitto (SIGHUP) to apply")

    _run(config, registry, verbose, action)
