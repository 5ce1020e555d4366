"""The ways in besides MQTT, as commands (registered in ``cityheart.cli``).

    cityheart ingest                                   # POST /ingest until SIGINT/SIGTERM
    cityheart ingest-keys add traffic-authority --device 'det-*' --kind traffic_speed
    cityheart ingest-keys list [--json]
    cityheart ingest-keys revoke KEY_ID
    cityheart import day.csv --format csv --time timestamp --value speed=traffic_speed:mph \\
        --device det-4013 --district harbour [--missing -200] [--as-live --speed 60]

Keys live in ``ingest.keys_file`` (next to config.yaml), hashed; a new key's token is printed
once. The work is done by :mod:`connectors.ingest` and :mod:`cityheart.importer`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import typer

from connectors.ingest.keys import load_keys, new_key, save_keys
from models.choices import check_choices
from models.errors import CityheartError, ConfigError
from models.geography import Locator
from models.recorded import CsvLayout, value_column
from models.timefmt import iso
from settings.config import Settings
from settings.loader import load

__all__ = ["import_command", "ingest_command", "ingest_keys_app", "keys_path"]

ingest_keys_app = typer.Typer(
    no_args_is_help=True,
    help="Keys of the sources that POST readings to the ingest endpoint (kept hashed).",
)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The city's config.yaml.", envvar="CITYHEART_CONFIG")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")]


def keys_path(settings: Settings, config_path: Path) -> Path:
    """The keys file: ``ingest.keys_file``, relative to config.yaml's directory."""
    return config_path.resolve().parent / settings.ingest.keys_file


def _run(config: Path, verbose: bool, action: Callable[[Settings], int | None]) -> None:
    """Load the settings, run ``action``; exit 2 on bad config or options, 1 on other errors."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        settings = load(config)
    except CityheartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        code = action(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except CityheartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code or 0)


def _check(values: list[str], known: list[str], option: str) -> None:
    try:
        check_choices(values, known, option)
    except ValueError as exc:
        raise ConfigError("cityheart", f"--{option}", str(exc)) from None


@ingest_keys_app.command("add")
def add(
    source: Annotated[str, typer.Argument(help="The source's name (e.g. traffic-authority).")],
    device: Annotated[list[str] | None, typer.Option(
        help="Devices it may send (shell patterns, repeatable; default any).")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Kinds it may send (default any).")] = None,
    district: Annotated[list[str] | None, typer.Option(
        help="Districts it may send (default any).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Add a key for a source and print its token (shown once, never stored)."""

    def action(settings: Settings) -> None:
        _check(kind or [], list(settings.kinds), "kind")
        _check(district or [], settings.district_ids(), "district")
        path = keys_path(settings, config)
        key, token = new_key(source, devices=device or [], kinds=kind or [],
                             districts=district or [], added_at=iso(time.time()))
        save_keys(path, [*load_keys(path), key])
        if as_json:
            typer.echo(orjson.dumps({**key.record(), "token": token}).decode())
            return
        typer.echo(f"key {key.id} for source {source!r} (in {path}):\n{token}")
        typer.echo(f"send it as: curl -H 'Authorization: Bearer {token}' "
                   f"-H 'Content-Type: application/json' --data @readings.json "
                   f"{settings.ingest.url}", err=True)

    _run(config, verbose, action)


@ingest_keys_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """List the keys (id, source, what each may send; never the secrets)."""

    def action(settings: Settings) -> None:
        for key in load_keys(keys_path(settings, config)):
            record = {k: v for k, v in key.record().items() if k != "sha256"}
            if as_json:
                typer.echo(orjson.dumps(record).decode())
                continue
            scope = ", ".join(f"{name} {list(record[name])}"
                              for name in ("devices", "kinds", "districts") if record[name])
            typer.echo(f"{key.id}  {key.source}  {scope or 'any reading'}  {key.added_at}")

    _run(config, verbose, action)


@ingest_keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (list).")],
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Revoke a key: the ingest endpoint refuses it within a second."""

    def action(settings: Settings) -> None:
        path = keys_path(settings, config)
        keys = load_keys(path)
        kept = [key for key in keys if key.id != key_id]
        if len(kept) == len(keys):
            reason = f"no key {key_id!r}; keys: {[key.id for key in keys]}"
            raise ConfigError(str(path), "KEY_ID", reason)
        save_keys(path, kept)
        typer.echo(f"revoked {key_id}")

    _run(config, verbose, action)


def ingest_command(config: ConfigOption = Path("config.yaml"),
                   verbose: VerboseOption = False) -> None:
    """Run the HTTP ingest endpoint (POST /ingest) until SIGINT/SIGTERM."""
    from connectors.ingest.server import serve_ingest
    from connectors.notify import Notifier

    def action(settings: Settings) -> None:
        logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
        serve_ingest(settings, keys_path=keys_path(settings, config),
                     notifier=Notifier.from_environ(os.environ))

    _run(config, verbose, action)


def _layout(settings: Settings, *, time_column: str | None, time_format: str | None,
            timezone: str, values: list[str], device: str | None, device_column: str | None,
            district: str | None, district_column: str | None, lat: float | None,
            lon: float | None, unit_column: str | None, missing: list[str]) -> CsvLayout:
    """The CSV layout the options describe, checked against the city (ConfigError if not)."""
    where = "cityheart import"
    if not time_column or not values:
        raise ConfigError(where, "--time/--value", "a CSV needs --time COLUMN and at least one "
                          "--value COLUMN=KIND[:UNIT]")
    if (device is None) == (device_column is None):
        raise ConfigError(where, "--device/--device-column", "give exactly one of them")
    if lat is not None or lon is not None:
        if lat is None or lon is None or district or district_column:
            raise ConfigError(where, "--lat/--lon", "give both, and no --district")
        district = Locator(settings.geography.districts).locate(lat, lon)
        if district is None:
            raise ConfigError(where, "--lat/--lon", f"{lat},{lon} is in no district")
    if district is None and district_column is None:
        raise ConfigError(where, "--district", "give --district, --district-column or "
                          "--lat/--lon")
    try:
        columns = tuple(value_column(spec) for spec in values)
        zone = ZoneInfo(timezone)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ConfigError(where, "--value/--timezone", str(exc)) from None
    _check([c.kind for c in columns], list(settings.kinds), "value's KIND")
    if district is not None:
        _check([district], settings.district_ids(), "district")
    return CsvLayout(
        time_column, columns, device=device, device_column=device_column, district=district,
        district_column=district_column, unit_column=unit_column, time_format=time_format,
        timezone=zone, missing=frozenset(missing),
        default_units={k: kind.unit for k, kind in settings.kinds.items()},
    )


def import_command(
    file: Annotated[Path, typer.Argument(help="The recorded file.")],
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl or senml.")] = "csv",
    time_column: Annotated[str | None, typer.Option("--time", help="CSV: the time column.")]
    = None,
    time_format: Annotated[str | None, typer.Option(
        help="CSV: strptime format of the times (default ISO 8601).")] = None,
    timezone: Annotated[str, typer.Option(help="Zone of times written without one.")] = "UTC",
    value: Annotated[list[str] | None, typer.Option(
        help="CSV: COLUMN=KIND[:UNIT], repeatable.")] = None,
    device: Annotated[str | None, typer.Option(help="CSV: the one device's id.")] = None,
    device_column: Annotated[str | None, typer.Option(help="CSV: the device id column.")]
    = None,
    district: Annotated[str | None, typer.Option(help="CSV: the district.")] = None,
    district_column: Annotated[str | None, typer.Option(help="CSV: the district column.")]
    = None,
    lat: Annotated[float | None, typer.Option(help="CSV: the device's latitude.")] = None,
    lon: Annotated[float | None, typer.Option(help="CSV: the device's longitude.")] = None,
    unit_column: Annotated[str | None, typer.Option(help="CSV: a column with each row's unit.")]
    = None,
    missing: Annotated[list[str] | None, typer.Option(
        help="A missing-value marker of the file (repeatable), e.g. -200.")] = None,
    as_live: Annotated[bool, typer.Option(
        "--as-live", help="Replay shifted to now through Kafka, like live data.")] = False,
    speed: Annotated[float, typer.Option(help="--as-live: times faster than recorded.")] = 1.0,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Import recorded data: backfill history (and replay its range), or play it as live."""
    from cityheart.importer import FORMATS, backfill, play_as_live, read_file

    def action(settings: Settings) -> int:
        logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
        _check([fmt], list(FORMATS), "format")
        layout = _layout(
            settings, time_column=time_column, time_format=time_format, timezone=timezone,
            values=value or [], device=device, device_column=device_column, district=district,
            district_column=district_column, lat=lat, lon=lon, unit_column=unit_column,
            missing=missing or []) if fmt == "csv" else None
        now = time.time()
        report = read_file(settings, file, fmt, layout=layout, now=now)
        for line in report.lines():
            typer.echo(line)
        if as_live:
            played = play_as_live(settings, report, speed=speed)
            typer.echo(f"played {played} readings as live")
        else:
            backfill(settings, report, now=now)
        return 0 if report.readings else 1

    _run(config, verbose, action)
