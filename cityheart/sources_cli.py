"""Pulled sources as commands: the registry of external services and its poller.

    cityheart sources add air-net --url https://air.example/latest --interval 60 \\
        --map air-net.map.yaml [--auth bearer --token-env AIR_NET_TOKEN]
    cityheart sources add --file air-net.yaml         # one source's YAML (name, url, mapping...)
    cityheart sources list [--json]                   # each source and its health
    cityheart sources test air-net                    # fetch once, show what would go in
    cityheart sources remove air-net
    cityheart sources run                             # poll until SIGINT/SIGTERM (``up`` runs it)

The registry is ``sources.file`` next to config.yaml; a running poller takes a change within
``sources.check_s``, without a restart. The work is done by :mod:`connectors.sources`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from pydantic import ValidationError

from cityheart.ingest_cli import ConfigOption, VerboseOption, _run
from connectors.sources.fetch import FetchError, Preview, auth_headers, fetch_json, mapper_for
from connectors.sources.registry import load_health, load_sources, save_sources
from models.errors import ConfigError
from models.timefmt import iso
from settings.config import Settings
from settings.params import reading_parser
from settings.sources import SourceSpec

__all__ = ["health_path", "sources_app", "sources_path"]

sources_app = typer.Typer(
    no_args_is_help=True,
    help="External services cityheart polls for readings (add, list, test, remove, run).",
)


def sources_path(settings: Settings, config_path: Path) -> Path:
    """The registry: ``sources.file``, relative to config.yaml's directory."""
    return config_path.resolve().parent / settings.sources.file


def health_path(settings: Settings, config_path: Path) -> Path:
    """Where the poller writes each source's health: ``sources.health_file``."""
    return config_path.resolve().parent / settings.sources.health_file


def _yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), what, f"cannot read it: {exc}") from None


def _spec(entry: dict[str, Any], where: str) -> SourceSpec:
    try:
        return SourceSpec.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(where, key or "source", first["msg"]) from None


def _check_kinds(settings: Settings, spec: SourceSpec) -> None:
    for number, value in enumerate(spec.mapping.values):
        if not value.kind.startswith("$") and value.kind not in settings.kinds:
            where, reason = f"source {spec.name!r}", (f"{value.kind!r} is not one of "
                                                       f"{sorted(settings.kinds)}")
            raise ConfigError(where, f"mapping.values[{number}].kind", reason)


@sources_app.command("add")
def add(
    name: Annotated[str | None, typer.Argument(help="The source's name (e.g. air-net).")] = None,
    url: Annotated[str | None, typer.Option(help="The JSON API's URL.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 60.0,
    mapping: Annotated[Path | None, typer.Option(
        "--map", help="YAML: from the answer to readings (items, device_id, time, place, "
        "values).")] = None,
    auth: Annotated[str, typer.Option(help="none, bearer, header or basic.")] = "none",
    token_env: Annotated[str | None, typer.Option(
        help="bearer/header: the environment variable holding the token.")] = None,
    header: Annotated[str | None, typer.Option(help="header: its name, e.g. X-API-Key.")]
    = None,
    username_env: Annotated[str | None, typer.Option(help="basic: the user's variable.")]
    = None,
    password_env: Annotated[str | None, typer.Option(help="basic: the password's variable.")]
    = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="One source's YAML instead of the options.")] = None,
    replace: Annotated[bool, typer.Option(help="Replace a source of that name.")] = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Add an external service; a running poller starts polling it within a second."""

    def action(settings: Settings) -> None:
        if file is not None:
            entry = _yaml(file, "source")
            if not isinstance(entry, dict):
                raise ConfigError(str(file), "source", "must be a mapping (name, url, mapping)")
            if name:
                entry["name"] = name
        else:
            if not name or not url or mapping is None:
                raise ConfigError("cityheart sources add", "NAME/--url/--map",
                                  "give a name, --url and --map FILE.yaml (or --file)")
            entry = {"name": name, "url": url, "interval_s": interval,
                     "mapping": _yaml(mapping, "mapping"),
                     "auth": {k: v for k, v in {
                         "type": auth, "token_env": token_env, "header": header,
                         "username_env": username_env, "password_env": password_env,
                     }.items() if v is not None}}
        entry["added_at"] = iso(time.time())
        spec = _spec(entry, str(file or "cityheart sources add"))
        _check_kinds(settings, spec)
        path = sources_path(settings, config)
        specs = load_sources(path)
        if any(s.name == spec.name for s in specs) and not replace:
            raise ConfigError(str(path), spec.name, "a source of that name is registered "
                              "(--replace, or remove it first)")
        save_sources(path, [*(s for s in specs if s.name != spec.name), spec])
        typer.echo(f"source {spec.name!r}: {spec.url} every {spec.interval_s:g} s (in {path})")

    _run(config, verbose, action)


@sources_app.command("list")
def list_sources(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """List the sources and their health as the poller last saw it."""

    def action(settings: Settings) -> None:
        health = load_health(health_path(settings, config))
        for spec in load_sources(sources_path(settings, config)):
            seen = health.get(spec.name) or {}
            if as_json:
                record = {"name": spec.name, "url": spec.url, "interval_s": spec.interval_s,
                          "health": seen or None}
                typer.echo(orjson.dumps(record).decode())
                continue
            if not seen:
                typer.echo(f"{spec.name}  {spec.url}  every {spec.interval_s:g} s  not polled yet")
                continue
            lag = f"{seen['lag_s']:.0f} s" if seen.get("lag_s") is not None else "-"
            line = (f"{spec.name}  {spec.url}  every {spec.interval_s:g} s  breaker "
                    f"{seen['state']}  errors {seen['consecutive_errors']}  last success "
                    f"{seen.get('last_success') or 'never'}  lag {lag}  readings "
                    f"{seen['readings']}")
            if seen.get("last_error"):
                line += f"  last error: {seen['last_error']}"
            typer.echo(line)

    _run(config, verbose, action)


@sources_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The source's name (list).")],
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Remove a source: a running poller stops polling it within a second."""

    def action(settings: Settings) -> None:
        path = sources_path(settings, config)
        specs = load_sources(path)
        kept = [spec for spec in specs if spec.name != name]
        if len(kept) == len(specs):
            raise ConfigError(str(path), "NAME", f"no source {name!r}; sources: "
                              f"{[spec.name for spec in specs]}")
        save_sources(path, kept)
        typer.echo(f"removed {name}")

    _run(config, verbose, action)


@sources_app.command("test")
def test(
    name: Annotated[str, typer.Argument(help="The source's name (list).")],
    limit: Annotated[int, typer.Option(help="Readings to show.")] = 20,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Fetch a source once and show what would be ingested; nothing is produced."""

    def action(settings: Settings) -> int:
        path = sources_path(settings, config)
        specs = {spec.name: spec for spec in load_sources(path)}
        spec = specs.get(name)
        if spec is None:
            raise ConfigError(str(path), "NAME", f"no source {name!r}; sources: {sorted(specs)}")
        try:
            document = fetch_json(spec, auth_headers(spec, os.environ),
                                  timeout_s=settings.sources.timeout_s,
                                  max_bytes=settings.sources.max_response_bytes)
        except FetchError as exc:
            typer.echo(f"error: {exc}", err=True)
            return 1
        preview = Preview.of(document, reading_parser(settings), mapper_for(settings, spec),
                             time.time())
        typer.echo(f"{spec.name}: {preview.items} items, {len(preview.readings)} readings "
                   f"would be ingested, {len(preview.refused)} refused (nothing was produced)")
        for reading in preview.readings[:limit]:
            typer.echo(f"  {reading.device_id}  {reading.district}  {reading.kind}  "
                       f"{reading.value:g} {reading.unit}  {iso(reading.ts)}")
        for index, error in preview.refused[:limit]:
            typer.echo(f"  refused item {index}: {error.reason}: {error.detail}")
        return 0 if preview.readings else 1

    _run(config, verbose, action)


@sources_app.command("run")
def run(
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Poll the registered sources until SIGINT/SIGTERM (``cityheart up`` runs this)."""
    from cityheart.metrics import component_metrics
    from connectors.notify import Notifier
    from connectors.sources.runner import run_poller

    def action(settings: Settings) -> None:
        logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with component_metrics(settings, "sources"):
                run_poller(settings, sources_path(settings, config),
                           health_path=health_path(settings, config),
                           environ=dict(os.environ), stop=stop,
                           notifier=Notifier.from_environ(os.environ))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    _run(config, verbose, action)
