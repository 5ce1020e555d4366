"""The ``cityheart open-data`` command group: API keys for the public and the catalogue.

    cityheart open-data keys add "River app"      # prints the key once: ohk_<id>.<secret>
    cityheart open-data keys list [--json]
    cityheart open-data keys revoke ID            # refused at once by the running dashboard
    cityheart open-data datasets [--json]         # what is published, each file's path

The key file is ``open_data.keys_file`` (relative to config.yaml's directory); the work is
done by :mod:`connectors.open_data_keys`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import orjson
import typer

from connectors.open_data_keys import add_key, list_keys, revoke_key
from models.errors import CityheartError
from models.open_data import DATASETS, FORMATS
from settings.config import Settings
from settings.loader import load

__all__ = ["keys_path", "open_data_app"]

open_data_app = typer.Typer(no_args_is_help=True,
                            help="Open data: the public datasets and their API keys.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys for open-data downloads.")
open_data_app.add_typer(keys_app, name="keys")

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The city's config.yaml.", envvar="CITYHEART_CONFIG")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def keys_path(settings: Settings, config_path: Path) -> Path:
    """The key file: ``open_data.keys_file``, relative to config.yaml's directory."""
    return config_path.resolve().parent / settings.open_data.keys_file


def _settings(config: Path) -> Settings:
    try:
        return load(config)
    except CityheartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@keys_app.command("add")
def add(name: Annotated[str, typer.Argument(help="Who the key is for.")],
        config: ConfigOption = Path("config.yaml"), as_json: JsonOption = False) -> None:
    """Make a key and print it (only now: the file keeps its hash)."""
    path = keys_path(_settings(config), config)
    try:
        key = add_key(path, name, now=time.time())
    except (ValueError, CityheartError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    key_id = key.removeprefix("ohk_").split(".", 1)[0]
    if as_json:
        typer.echo(orjson.dumps({"id": key_id, "name": name, "key": key}).decode())
    else:
        typer.echo(f"key {key_id} for {name}: {key}\n(shown once; send it as X-API-Key)")


@keys_app.command("list")
def list_(config: ConfigOption = Path("config.yaml"), as_json: JsonOption = False) -> None:
    """The keys: id, name, made, revoked."""
    try:
        keys = list_keys(keys_path(_settings(config), config))
    except CityheartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(orjson.dumps([{"id": k.id, "name": k.name, "created": k.created,
                                  "revoked": k.revoked} for k in keys]).decode())
        return
    for k in keys:
        typer.echo(f"{k.id}  {k.name}  made {k.created}"
                   + (f"  REVOKED {k.revoked}" if k.revoked else ""))


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(metavar="ID")],
           config: ConfigOption = Path("config.yaml")) -> None:
    """Revoke a key: the running dashboard refuses it from its next request."""
    try:
        key = revoke_key(keys_path(_settings(config), config), key_id, now=time.time())
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {key.id} ({key.name}) at {key.revoked}")


@open_data_app.command("datasets")
def datasets(as_json: JsonOption = False) -> None:
    """The published datasets and their download paths under the dashboard."""
    items = [{"id": d.id, "title": d.title, "period": d.period,
              "files": [f"/open-data/datasets/{d.id}.{f}" for f in FORMATS]} for d in DATASETS]
    if as_json:
        typer.echo(orjson.dumps(items).decode())
        return
    for item in items:
        typer.echo(f"{item['id']}  ({item['period']})  {item['title']}")
        for path in item["files"]:
            typer.echo(f"    {path}")
