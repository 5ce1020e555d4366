"""The ``cityheart`` command: run the whole city, or any one component, from config.yaml.

    cityheart up                      # everything on this machine, embedded servers, a simulator
    cityheart simulate --devices 200 --rate 100 --scenario pollution-episode
    cityheart watch [--json] [--district D] [--kind K]
    cityheart bridge | flow | feed    # one long-running component each, for production
    cityheart bench [--json]          # with the lab installed (pip install ./lab)
    cityheart token --role viewer     # a signed feed token (CITYHEART_TOKEN_SECRET)
    cityheart locate --boundaries city.geojson 37.8024,-122.4058   # which district
    cityheart ingest | ingest-keys add SOURCE  # HTTP ingest and its sources' keys
    cityheart sources add|list|test|remove|run   # external services polled for readings
    cityheart import day.csv --time ts --value v=traffic_speed:mph --device D --district X
    cityheart oncall                  # who is on call now and next, per department
    cityheart notify dead-letters     # notifications that never arrived (notify replay)

Every command reads the configuration once (``--config``, default ./config.yaml, with
environment overrides) and passes the frozen settings in.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Collection
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from cityheart.aqi import EXAMPLE as AQI_EXAMPLE
from cityheart.devices_cli import devices_app
from cityheart.ingest_cli import import_command, ingest_command, ingest_keys_app
from cityheart.notify_cli import register as register_notify
from cityheart.open_data_cli import open_data_app
from cityheart.sources_cli import sources_app
from cityheart.spatial_cli import BboxOption, NearOption, RadiusOption, WithinOption
from models.choices import check_choices
from models.errors import CityheartError
from settings.config import Settings
from settings.loader import load

__all__ = ["ConfigOption", "VerboseOption", "app", "run_command"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="cityheart: live vital signs, anomalies and incidents of a city.",
)
app.add_typer(devices_app, name="devices")
app.add_typer(open_data_app, name="open-data")
app.add_typer(ingest_keys_app, name="ingest-keys")
app.add_typer(sources_app, name="sources")

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The city's config.yaml.", envvar="CITYHEART_CONFIG")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")]
JsonLinesOption = Annotated[bool, typer.Option("--json", help="One JSON object a line.")]
TokenOption = Annotated[
    str | None, typer.Option(help="Your token (cityheart token).", envvar="CITYHEART_TOKEN")
]
ApiOption = Annotated[
    str | None, typer.Option(help="The dispatch API's URL (default: the dashboard's).")
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(help="PostgreSQL URL (default: config).", envvar="CITYHEART_DATABASE_URL"),
]


def _settings(config: Path, verbose: bool) -> Settings:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return load(config)
    except CityheartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _refuse_unknown(values: list[str], known: Collection[str], option: str) -> None:
    """Exit 2 naming ``option`` and the valid values if one of ``values`` is not ``known``."""
    try:
        check_choices(values, known, option)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def run_command(config: Path, verbose: bool, action: Callable[[Settings], int | None]) -> None:
    """Load the settings once, run ``action`` on them and exit with its code (an error: 1)."""
    settings = _settings(config, verbose)
    try:
        code = action(settings)
    except CityheartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code or 0)


@app.command()
def up(config: ConfigOption = Path("config.yaml"), verbose: VerboseOption = False) -> None:
    """Run the whole city on this machine until Ctrl-C: servers, bridge, flow, feed, simulator."""
    from cityheart.runtime.up import run_city

    run_command(config, verbose, lambda settings: run_city(settings, config_path=config.resolve()))


@app.command()
def simulate(
    devices: Annotated[int | None, typer.Option(help="Devices across the city.")] = None,
    rate: Annotated[float | None, typer.Option(help="Readings per second, city-wide.")] = None,
    scenario: Annotated[str | None, typer.Option(help="Scripted events (config.yaml).")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many readings.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    gateways: Annotated[int, typer.Option(
        min=0, help="Act as this many gateways publishing SenML packs (0: one reading a message)."
    )] = 0,
    pack_size: Annotated[int, typer.Option(min=1, help="Readings per gateway pack.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with a JSON summary line on stdout.")
    ] = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Publish realistic telemetry for the city over MQTT (QoS 1), as devices or gateways."""
    import dataclasses

    import orjson

    from cityheart.simulate import run_simulator

    def simulate_city(settings: Settings) -> None:
        report = run_simulator(
            settings,
            devices=devices,
            rate=rate,
            scenario=scenario,
            duration_s=duration,
            count=count,
            seed=seed,
            gateways=gateways,
            pack_size=pack_size,
        )
        if as_json:
            summary = {**dataclasses.asdict(report), "rate": report.rate}
            typer.echo(orjson.dumps(summary).decode())

    run_command(config, verbose, simulate_city)


@app.command()
def watch(
    as_json: JsonLinesOption = False,
    district: Annotated[list[str] | None, typer.Option(help="Only these districts.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only these sensor kinds.")] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(help="Channels: vitals, alerts, incidents, kpis (default: vitals, alerts)."),
    ] = None,
    url: Annotated[str | None, typer.Option(help="Feed URL (default: from config).")] = None,
    count: Annotated[int | None, typer.Option(help="Exit after this many messages.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Exit after this many seconds.")] = None,
    token: Annotated[
        str | None,
        typer.Option(help="A feed token (cityheart token).", envvar="CITYHEART_TOKEN",
                     show_default=False),
    ] = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Print live vital signs, alerts, incidents or department KPIs from the push feed."""
    from cityheart.watch import run_watch
    from connectors.feed.protocol import CHANNELS

    _refuse_unknown(channel or [], CHANNELS, "--channel")

    run_command(config, verbose, lambda settings: run_watch(
        url or settings.feed.url,
        channels=channel or ["vitals", "alerts"],
        districts=district or [],
        kinds=kind or [],
        as_json=as_json,
        count=count,
        timeout_s=timeout,
        token=token,
        fit_channels=not channel,
    ))


@app.command()
def bridge(
    processes: Annotated[
        int | None,
        typer.Option(min=1, help="Bridge processes sharing the subscription, MQTT 5 "
                     "(mqtt.bridge_processes)."),
    ] = None,
    index: Annotated[
        int | None, typer.Option(min=0, help="Run only this member (0..processes-1).")
    ] = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Run the MQTT-to-Kafka bridge until SIGINT/SIGTERM."""
    from cityheart.bridge import run_bridges

    run_command(config, verbose, lambda settings: run_bridges(
        settings, config_path=config.resolve(), processes=processes, index=index))


@app.command()
def flow(
    recovery_dir: Annotated[
        str | None, typer.Option(help="Bytewax recovery directory (default: flow.recovery_dir).")
    ] = None,
    processes: Annotated[
        int | None, typer.Option(min=1, help="Flow processes on this machine (flow.processes).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Workers in each process (flow.workers).")
    ] = None,
    process_id: Annotated[
        int | None, typer.Option(min=0, help="This process's index in a cluster (--addresses).")
    ] = None,
    addresses: Annotated[
        str | None, typer.Option(help='Every cluster process\'s host:port: "h0:2101;h1:2101".')
    ] = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Run the Bytewax dataflow (readings -> vitals, alerts) until SIGINT."""
    from cityheart.devices import registry_path
    from cityheart.flow import run_flow
    from cityheart.metrics import flow_metrics
    from connectors.notify import Notifier

    if (process_id is None) != (addresses is None):
        typer.echo("error: --process-id and --addresses go together", err=True)
        raise typer.Exit(2)
    overrides = {"recovery_dir": recovery_dir, "processes": processes, "workers": workers}
    overrides = {key: value for key, value in overrides.items() if value is not None}

    def run(settings: Settings) -> int:
        settings = settings.model_copy(
            update={"flow": settings.flow.model_copy(update=overrides)}
        )
        members = [a.strip() for a in addresses.split(";") if a.strip()] if addresses else []
        with flow_metrics(settings, process_id):
            return run_flow(settings, process_id=process_id, addresses=members,
                            notifier=Notifier.from_environ(os.environ),
                            registry=registry_path(settings, config))

    run_command(config, verbose, run)


@app.command()
def recorder(config: ConfigOption = Path("config.yaml"), verbose: VerboseOption = False) -> None:
    """Keep history: Kafka readings, vital signs and alerts into PostgreSQL, until a signal."""
    from cityheart.metrics import with_metrics
    from cityheart.recorder import run_recorder

    run_command(config, verbose, with_metrics("recorder", run_recorder))


@app.command()
def replay(
    since: Annotated[str, typer.Option("--from", help="Start: ISO 8601 time or a duration ago.")],
    until: Annotated[str, typer.Option("--to", help="End: ISO 8601 time, 'now' or a duration ago.")]
    = "now",
    district: Annotated[list[str] | None, typer.Option(help="Only these districts.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only these sensor kinds.")] = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Re-run the indicator and alert logic over stored readings (backfill, no duplicates)."""
    from cityheart.replay import run_replay

    run_command(config, verbose, lambda settings: run_replay(
        settings, since=since, until=until, districts=district or [], kinds=kind or []
    ))


@app.command()
def feed(config: ConfigOption = Path("config.yaml"), verbose: VerboseOption = False) -> None:
    """Run the websocket push feed until SIGINT/SIGTERM."""
    from cityheart.metrics import with_metrics
    from cityheart.token import audit_path, revoked_path, run_feed_with_auth

    run_command(config, verbose, with_metrics("feed", lambda settings: run_feed_with_auth(
        settings, revoked=revoked_path(settings, config),
        audit_dir=audit_path(settings, config))))


@app.command()
def aqi(
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NAME=VALUE[:UNIT]...",
            help="Concentrations, in the standard's units unless a UNIT is given "
            "(ug/m3, mg/m3, ppb, ppm): " + AQI_EXAMPLE,
        ),
    ] = None,
    standard: Annotated[
        str | None,
        typer.Option(help="hj633 (China HJ 633-2012) or epa (US EPA AQI, 2024 PM2.5); "
                     "default: indicators.aqi.standard of the config."),
    ] = None,
    batch: Annotated[
        bool, typer.Option("--batch", help="Read one JSON object of NAME: VALUE a line from stdin.")
    ] = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Air quality index of some concentrations, computed as the flow computes it (JSON)."""
    from dataclasses import replace

    from cityheart.aqi import run_aqi
    from settings.params import air_params

    params = air_params(_settings(config, verbose))
    if standard is not None:
        params = replace(params, standard=standard)
    raise typer.Exit(run_aqi(params, pairs or [], batch=batch))


@app.command()
def locate(
    boundaries: Annotated[
        Path, typer.Option(help="District boundaries: a GeoJSON FeatureCollection.")
    ],
    points: Annotated[
        list[str] | None,
        typer.Argument(metavar="LAT,LON...", help="Points in WGS84 degrees: 37.8024,-122.4058"),
    ] = None,
    id_property: Annotated[
        str, typer.Option(help="The feature property that holds the district id.")
    ] = "id",
    batch: Annotated[
        bool, typer.Option("--batch", help='Read {"lat": .., "lon": ..} lines from stdin.')
    ] = False,
) -> None:
    """Print each point's district as a JSON line (null outside every district)."""
    from cityheart.locate import run_locate

    raise typer.Exit(run_locate(boundaries, points or [], id_property=id_property, batch=batch))


@app.command()
def history(
    what: Annotated[
        str, typer.Argument(help="series (default), latest, alerts, incidents, events or readings.")
    ] = "series",
    district: Annotated[
        list[str] | None, typer.Option(help="District(s); a series takes exactly one.")
    ] = None,
    indicator: Annotated[str | None, typer.Option(help="Series of this indicator (aqi).")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Series of this sensor kind (pm25); filters alerts.")
    ] = None,
    since: Annotated[
        str, typer.Option(help="From: a duration ago (15m, 1h, 7d) or ISO 8601 time.")
    ] = "1h",
    until: Annotated[str, typer.Option(help="To: 'now', a duration ago or ISO 8601.")] = "now",
    resolution: Annotated[
        str | None, typer.Option(help="raw, 1m, 1h or 1d (default: from the range).")
    ] = None,
    severity: Annotated[list[str] | None, typer.Option(help="Only these severities.")] = None,
    state: Annotated[list[str] | None, typer.Option(help="Only incidents in these states.")] = None,
    incident: Annotated[str | None, typer.Option(help="Events of this incident id.")] = None,
    limit: Annotated[
        int, typer.Option(help="At most this many readings/alerts/incidents/events.")
    ] = 1000,
    near: NearOption = None,
    radius: RadiusOption = None,
    within: WithinOption = None,
    bbox: BboxOption = None,
    as_json: JsonLinesOption = False,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Print stored history: a series, latest values, alerts, incidents, incident events or raw
    readings (readings, alerts and incidents: near a point, within a district or in a box)."""
    from cityheart.history import run_history

    run_command(config, verbose, lambda settings: run_history(
        settings,
        what=what,
        districts=district or [],
        indicator=indicator,
        kind=kind,
        since=since,
        until=until,
        resolution=resolution,
        severities=severity or [],
        states=state or [],
        incident=incident,
        limit=limit,
        as_json=as_json,
        url=database_url,
        spatial=(near, radius, within, bbox),
    ))


@app.command()
def dashboard(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: from config).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port, 0 for any free one (default: from config).")
    ] = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Serve the command-centre web page (live map, vital signs, alerts) until SIGINT/SIGTERM."""
    from cityheart.dashboard import run_dashboard
    from cityheart.devices import registry_path
    from cityheart.metrics import with_metrics
    from cityheart.open_data_cli import keys_path
    from cityheart.token import audit_path, revoked_path

    run_command(config, verbose, with_metrics("dashboard", lambda settings: run_dashboard(
        settings,
        host=settings.dashboard.host if host is None else host,
        port=settings.dashboard.port if port is None else port,
        open_data_keys=keys_path(settings, config),
        revoked=revoked_path(settings, config),
        audit_dir=audit_path(settings, config),
        registry=registry_path(settings, config),
    )))



@app.command()
def token(
    role: Annotated[str, typer.Option(help="operator, dispatcher, viewer or consumer.")],
    department: Annotated[str | None, typer.Option(help="A dispatcher's department.")] = None,
    grant: Annotated[str | None, typer.Option(help="A consumer's grant (auth.grants).")] = None,
    sub: Annotated[str | None, typer.Option(help="Who it is for (default: the role).")] = None,
    ttl: Annotated[float | None, typer.Option(help="Lifetime in s (auth.token_ttl_s).")] = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Print a signed feed token; the secret comes from CITYHEART_TOKEN_SECRET."""
    from cityheart.token import issue

    def print_token(settings: Settings) -> None:
        typer.echo(issue(settings, role=role, department=department, sub=sub, ttl_s=ttl,
                         grant=grant))

    run_command(config, verbose, print_token)


@app.command()
def audit(
    district: Annotated[str, typer.Option(help="Whose data: a district id.")],
    since: Annotated[str, typer.Option(help="From: a duration ago (7d) or ISO 8601.")] = "7d",
    until: Annotated[str, typer.Option(help="To: now, a duration ago or ISO 8601.")] = "now",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per reader.")] = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Who read a district's data (API, feed, open data): reads, records, when, through what."""
    import time

    from cityheart.audit import run_audit
    from cityheart.token import audit_path

    run_command(config, verbose, lambda settings: run_audit(
        audit_path(settings, config), district=district, since=since, until=until,
        as_json=as_json, now=time.time()))


@app.command()
def revoke(
    token_text: Annotated[str, typer.Argument(metavar="TOKEN", help="The token to revoke.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the entry).")] = "",
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Revoke a token before it expires: the feed and the dashboard refuse it from now on."""
    from cityheart.token import revoke_token

    def revoke_it(settings: Settings) -> None:
        entry = revoke_token(settings, token_text, config_path=config, reason=reason)
        typer.echo(f"revoked token {entry['jti']} of {entry['sub']!r} ({entry['role']}) at "
                   f"{entry['at']}; it would have expired at {entry['exp']}")

    run_command(config, verbose, revoke_it)


@app.command()
def incidents(
    state: Annotated[
        list[str] | None,
        typer.Option(help="Only these states: open, acknowledged, dispatched, resolved, closed."),
    ] = None,
    district: Annotated[list[str] | None, typer.Option(help="Only these districts.")] = None,
    since: Annotated[
        str, typer.Option(help="Open at some time since: a duration ago (24h) or ISO 8601.")
    ] = "24h",
    limit: Annotated[int, typer.Option(help="At most this many incidents.")] = 1000,
    near: NearOption = None,
    radius: RadiusOption = None,
    within: WithinOption = None,
    bbox: BboxOption = None,
    as_json: JsonLinesOption = False,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """List the stored incidents (the recorder keeps them from the incidents topic), or those
    whose centre is near a point, within a district or in a box."""
    from cityheart.incidents import run_incidents

    run_command(config, verbose, lambda settings: run_incidents(
        settings, states=state or [], districts=district or [], since=since, limit=limit,
        as_json=as_json, url=database_url, spatial=(near, radius, within, bbox),
    ))


@app.command()
def incident(
    incident_id: Annotated[
        str, typer.Argument(help="The incident's id (inc-...), or create to open one.")
    ],
    action: Annotated[
        str | None,
        typer.Argument(help="ack, dispatch, comment, resolve, close, reopen, assign, transfer, "
                       "add_department, link, merge, show, cap or devices."),
    ] = None,
    comment: Annotated[
        str | None, typer.Option("--comment", "--reason", help="A comment (a reason).")
    ] = None,
    team: Annotated[str | None, typer.Option(help="dispatch: the team or unit sent.")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="resolve: confirmed or false_alarm.")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="assign: the person.")] = None,
    department: Annotated[
        str | None, typer.Option(help="transfer, add_department: the department.")
    ] = None,
    from_department: Annotated[
        str | None, typer.Option(help="transfer: from this department (default: yours, or "
                                 "the incident's owner).")
    ] = None,
    other: Annotated[
        str | None, typer.Option("--with", help="link, merge: the other incident's id.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="create: what it is (a kind).")] = None,
    title: Annotated[str | None, typer.Option(help="create: a short title.")] = None,
    severity: Annotated[
        str | None, typer.Option(help="create: warning, critical or emergency.")
    ] = None,
    district: Annotated[str | None, typer.Option(help="create: where (a district id).")] = None,
    lat: Annotated[float | None, typer.Option(help="create: where (latitude).")] = None,
    lon: Annotated[float | None, typer.Option(help="create: where (longitude).")] = None,
    description: Annotated[str | None, typer.Option(help="create: what was reported.")] = None,
    reporter: Annotated[str | None, typer.Option(help="create: who reported it.")] = None,
    radius: Annotated[
        str | None, typer.Option(help="devices: how far from its centre, 500m or 2km "
                                 "(default: the incident's own radius).")
    ] = None,
    token: TokenOption = None,
    api: ApiOption = None,
    as_json: JsonLinesOption = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Open an incident (create), act on one or hand it over, as your token's role."""
    from cityheart.incident import run_create, run_incident

    if incident_id == "create" and action is None:
        if (district is None) == (lat is None or lon is None):
            typer.echo("error: create takes --district D or --lat LAT --lon LON", err=True)
            raise typer.Exit(2)
        report = {"kind": kind, "title": title, "severity": severity, "district": district,
                  "lat": lat, "lon": lon, "description": description, "reporter": reporter}
        run_command(config, verbose, lambda settings: run_create(
            settings, report, token=token, api=api, as_json=as_json))
    if action is None:
        typer.echo("error: give an action after the incident id (or: incident create ...)",
                   err=True)
        raise typer.Exit(2)
    target = to if action == "assign" else other if action in ("link", "merge") else department
    run_command(config, verbose, lambda settings: run_incident(
        settings, incident_id, action, token=token, api=api, comment=comment, team=team,
        outcome=outcome, target=target, from_department=from_department, as_json=as_json,
        radius=radius,
    ))


@app.command()
def suppress(
    what: Annotated[str, typer.Argument(help="add, list or end.")],
    window_id: Annotated[
        str | None, typer.Argument(help="end: the window's id; add: an id (default: made up).")
    ] = None,
    district: Annotated[list[str] | None, typer.Option(help="add: a district it covers.")] = None,
    device: Annotated[list[str] | None, typer.Option(help="add: only these devices.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="add: only these kinds.")] = None,
    start: Annotated[
        str | None, typer.Option(help="add: from (ISO 8601; default now).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="add: until (ISO 8601).")] = None,
    duration: Annotated[
        str | None, typer.Option("--for", help="add: for this long from its start (2h).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="add: why (shown on the board).")] = None,
    token: TokenOption = None,
    api: ApiOption = None,
    as_json: JsonLinesOption = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Add, list or end maintenance windows while the city runs (no restart)."""
    from cityheart.suppress import run_suppress

    run_command(config, verbose, lambda settings: run_suppress(
        settings, what, window_id, token=token, api=api, districts=district or [],
        devices=device or [], kinds=kind or [], start=start, until=until, duration=duration,
        reason=reason, as_json=as_json,
    ))


@app.command()
def kpi(
    since: Annotated[
        str, typer.Option(help="Incidents opened since: a duration ago (7d) or ISO 8601.")
    ] = "7d",
    period: Annotated[
        str | None, typer.Option(help="One row per department and period (1d); default: one.")
    ] = None,
    as_json: JsonLinesOption = False,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Print department KPIs (time to acknowledge and resolve, SLA shares, backlog)."""
    from cityheart.incidents import run_kpi

    run_command(config, verbose, lambda settings: run_kpi(
        settings, since=since, period=period, as_json=as_json, url=database_url,
    ))


@app.command()
def dispatch(
    department: Annotated[str, typer.Option(help="The department whose queue to read.")],
    checkpoint: Annotated[
        Path | None, typer.Option(help="Position file (default var/dispatch/<department>.json).")
    ] = None,
    as_json: JsonLinesOption = False,
    once: Annotated[bool, typer.Option("--once", help="Exit when caught up.")] = False,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Print a department's dispatch queue (its incident events) from where it left off."""
    from cityheart.dispatch import run_dispatch

    run_command(config, verbose, lambda settings: run_dispatch(
        settings, department=department, checkpoint=checkpoint, as_json=as_json, once=once,
    ))


if __name__ == "__main__":
    app()


@app.command("config")
def show_config(config: ConfigOption = Path("config.yaml"), verbose: VerboseOption = False) -> None:
    """Print the effective settings as YAML: both files, environment overrides and every default
    (secrets masked)."""
    import yaml

    def action(settings: Settings) -> None:
        typer.echo(yaml.safe_dump(settings.model_dump(mode="json", by_alias=True),
                                  sort_keys=False, allow_unicode=True), nl=False)

    run_command(config, verbose, action)


app.command("ingest")(ingest_command)
app.command("import")(import_command)


def _load_plugins() -> None:
    """Add the commands of installed plugins (entry point group ``cityheart.commands``).

    Each entry point names a ``register(app)`` callable; the lab (``pip install ./lab``) adds
    ``cityheart bench`` and ``cityheart soak`` this way, so the product never imports it.
    """
    for entry in entry_points(group="cityheart.commands"):
        entry.load()(app)


register_notify(app)
_load_plugins()
