"""The ``cityheart devices`` command group (registered in ``cityheart.cli``).

    cityheart devices add pm25-old-town-001 --district old-town --kind pm25   # password, once
    cityheart devices list [--json]
    cityheart devices rotate pm25-old-town-001                               # a new password
    cityheart devices revoke pm25-old-town-001
    cityheart devices export --passwd /etc/mosquitto/passwd --acl /etc/mosquitto/acl

The work is done by :mod:`cityheart.devices`; this module parses options and prints.
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
    load_registry,
    registry_path,
    revoke_device,
    rotate_device,
)
from models.errors import CityheartError
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
    district: Annotated[str, typer.Option(help="Its district id (config.yaml).")],
    kind: Annotated[str, typer.Option(help="Its sensor kind (config.yaml).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    registry: RegistryOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Register a device and print its generated password (shown once, never stored)."""

    def action(settings: Settings, path: Path) -> None:
        password = add_device(settings, path, device_id, district=district, kind=kind)
        _print_password(settings, path, device_id, password, as_json)

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
    registry: RegistryOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """List the registered devices, their topics and whether they are revoked (none: says so)."""

    def action(settings: Settings, path: Path) -> None:
        prefix = settings.mqtt.topic_prefix
        devices = load_registry(settings, path).devices
        if not devices:
            typer.echo(f"no devices registered in {path} (add one with: cityheart devices add "
                       "ID --district D --kind K)", err=True)
        for device in devices:
            state = "active" if device.active else "revoked"
            if as_json:
                record = {"id": device.id, "district": device.district, "kind": device.kind,
                          "topic": device.topic(prefix), "state": state,
                          "added_at": device.added_at, "revoked_at": device.revoked_at}
                typer.echo(orjson.dumps(record).decode())
            else:
                typer.echo(f"{device.id:32} {state:8} {device.topic(prefix)}")

    _run(config, registry, verbose, action)


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
