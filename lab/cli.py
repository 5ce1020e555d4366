"""The lab's commands on the ``cityheart`` CLI: ``cityheart bench`` and ``cityheart soak``.

Registered through the ``cityheart.commands`` entry point of the lab's own distribution
(``pip install ./lab``), so the product's CLI gains them without importing the lab::

    cityheart bench --json
    cityheart soak --readings 300000 --rate 2500 --faults bridge,flow,mqtt
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cityheart.cli import ConfigOption, VerboseOption, run_command
from settings.config import Settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``bench`` and ``soak`` to ``app``."""
    app.command()(bench)
    app.command()(soak)


def bench(
    as_json: Annotated[bool, typer.Option("--json", help="End with JSON result lines.")] = False,
    rates: Annotated[
        str, typer.Option(help="Comma-separated offered rates, readings/s.")
    ] = "1000,2500,5000,7500",
    step_seconds: Annotated[
        float, typer.Option(help="Seconds at each rate (several flow windows).")
    ] = 25.0,
    pack_rates: Annotated[
        str, typer.Option(help="Then gateways' SenML packs at these offered rates, readings/s "
                          "(empty: skip).")
    ] = "15000,30000,60000",
    gateways: Annotated[int, typer.Option(min=1, help="Gateways sending the packs.")] = 20,
    pack_size: Annotated[int, typer.Option(min=1, help="Readings per SenML pack.")] = 50,
    ceiling_messages: Annotated[
        int, typer.Option(min=0, help="Messages for the raw paho ceiling, measured first "
                          "(0: skip).")
    ] = 100_000,
    flow_processes: Annotated[
        str | None,
        typer.Option(help="Instead: the flow alone with these process counts (1,2) over a "
                     "backlog in 2 partitions; prints the throughput ratio."),
    ] = None,
    backlog: Annotated[
        int, typer.Option(help="Readings in the backlog of --flow-processes or "
                          "--bridge-processes.")
    ] = 200_000,
    backlog_devices: Annotated[
        int, typer.Option(min=1, help="Devices in the --flow-processes backlog.")
    ] = 192,
    backlog_every: Annotated[
        float, typer.Option(min=0.001, help="Seconds of event time between a device's "
                            "readings in the --flow-processes backlog.")
    ] = 5.0,
    bridge_processes: Annotated[
        str | None,
        typer.Option(help="Instead: mosquitto -> bridge -> Kafka alone with these bridge "
                     "process counts (1,2) over a backlog; prints the throughput ratio."),
    ] = None,
    feed_clients: Annotated[
        str | None,
        typer.Option(help="Instead: this many feed clients at a time (10,300,1000) on the "
                     "running city's feed (start `cityheart up` first); prints delivery lag, "
                     "messages per client and refusals."),
    ] = None,
    feed_url: Annotated[
        str | None, typer.Option(help="With --feed-clients: this feed instead of the "
                                 "config's (loopback only).")
    ] = None,
    feed_seconds: Annotated[
        float, typer.Option(help="Seconds each --feed-clients step counts.")
    ] = 40.0,
    feed_batch: Annotated[
        bool, typer.Option(help="With --feed-clients: the clients subscribe with batch: true "
                           "(live messages that leave together come in one frame).")
    ] = False,
    record: Annotated[
        Path | None, typer.Option(help="With --feed-clients: append the figures, the "
                                  "command and the machine to this file (BENCHMARKS.md).")
    ] = None,
    http: Annotated[
        int | None,
        typer.Option(help="Instead: HTTP ingest alone, this many readings POSTed in batches "
                     "(--http-batch) by --http-clients; prints readings/s to Kafka."),
    ] = None,
    http_batch: Annotated[int, typer.Option(help="Readings a request with --http.")] = 1000,
    http_clients: Annotated[int, typer.Option(help="Parallel clients with --http.")] = 4,
    config: ConfigOption = Path("config.yaml"),
    api_requests: Annotated[
        int | None, typer.Option(help="Instead: ask the running city's read API (NGSI-LD "
                                 "entity and geo-query, a day of hourly history) this many "
                                 "times each; prints p50/p99/max.")
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(help="Instead: the memory (RSS, peak, PSS) of every process with this many "
                     "simulated devices (10000,100000; a fresh stack each), and the anomaly "
                     "state per series."),
    ] = None,
    device_rate: Annotated[
        float, typer.Option(min=1, help="Readings/s the simulator offers with --devices.")
    ] = 5000.0,
    reports: Annotated[
        int, typer.Option(min=1, help="Readings each device sends with --devices.")
    ] = 3,
    verbose: VerboseOption = False,
) -> None:
    """Benchmark the whole pipeline on the embedded stack at increasing rates."""
    from lab.bench import PackWorkload, run_bench

    if devices is not None:
        from lab.bench_memory import run_memory_bench

        fleets = device_counts(devices)
        run_command(config, verbose, lambda settings: run_memory_bench(
            settings, devices=fleets, rate=device_rate, reports=reports, as_json=as_json))
        return

    if api_requests is not None:
        import os

        from lab.bench_api import run_api_bench

        def ask(settings: Settings) -> None:
            district = settings.districts[0]
            run_api_bench(settings.dashboard.url, district=district.id,
                          point=tuple(district.centroid), requests=api_requests,
                          token=os.environ.get("CITYHEART_TOKEN"), as_json=as_json)

        run_command(config, verbose, ask)
        return

    if http is not None:
        from lab.bench_ingest import run_ingest_bench

        run_command(config, verbose, lambda settings: run_ingest_bench(
            settings, readings=http, batch=http_batch, clients=http_clients, as_json=as_json))
        return

    if feed_clients is not None:
        from lab.bench_feed import run_feed_bench

        counts = [int(n) for n in feed_clients.split(",") if n.strip()]

        def measure(settings: Settings) -> None:
            run_feed_bench(feed_url or settings.feed.url, clients=counts, seconds=feed_seconds,
                           batch=feed_batch, record=record, as_json=as_json)

        run_command(config, verbose, measure)
        return

    if bridge_processes is not None:
        from lab.bench_bridge import run_bridge_bench

        members = [int(p) for p in bridge_processes.split(",") if p.strip()]
        run_command(config, verbose, lambda settings: run_bridge_bench(
            settings, processes=members, readings=backlog, as_json=as_json))
        return

    if flow_processes is not None:
        from lab.bench_scale import run_scale_bench

        counts = [int(p) for p in flow_processes.split(",") if p.strip()]
        run_command(config, verbose, lambda settings: run_scale_bench(
            settings, processes=counts, readings=backlog, as_json=as_json,
            devices=backlog_devices, every_s=backlog_every))
        return

    offered = [float(r) for r in rates.split(",") if r.strip()]
    packs = PackWorkload(tuple(float(r) for r in pack_rates.split(",") if r.strip()),
                         gateways=gateways, pack_size=pack_size)
    run_command(config, verbose, lambda settings: run_bench(
        settings, rates=offered, step_s=step_seconds, as_json=as_json, packs=packs,
        ceiling_messages=ceiling_messages,
    ))


def device_counts(text: str) -> list[int]:
    """The fleet sizes of ``--devices`` (``"10000,100000"``), refused unless whole numbers of at
    least 1, in increasing order."""
    counts: list[int] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            count = int(part.replace("_", "").strip())
        except ValueError:
            count = 0
        if count < 1:
            msg = f"{part.strip()!r} is not a device count (a whole number of at least 1)"
            raise typer.BadParameter(msg, param_hint="--devices")
        counts.append(count)
    if not counts:
        msg = f"{text!r} names no device count (e.g. 10000,100000)"
        raise typer.BadParameter(msg, param_hint="--devices")
    if counts != sorted(set(counts)):
        msg = f"{text!r}: give each device count once, in increasing order"
        raise typer.BadParameter(msg, param_hint="--devices")
    return counts


def soak(
    readings: Annotated[
        int | None, typer.Option(min=1, help="Readings to publish (or --duration).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=1, help="Seconds to publish (or --readings).")
    ] = None,
    rate: Annotated[float, typer.Option(min=1, help="Readings per second.")] = 1000.0,
    faults: Annotated[
        str, typer.Option(help="What to kill and restart, comma-separated (empty: nothing).")
    ] = "bridge,flow,feed,database,mqtt",
    fault_interval: Annotated[
        float, typer.Option(min=0, help="Mean seconds between one recovery and the next fault.")
    ] = 30.0,
    seed: Annotated[int, typer.Option(help="Seeds the fault schedule and the simulator.")] = 1,
    flow_processes: Annotated[
        int, typer.Option(min=1, help="Flow processes (a flow fault kills one of them).")
    ] = 1,
    report: Annotated[
        Path | None, typer.Option(help="Write the report here as JSON (and .txt beside it).")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Keep data and logs here (default: a temporary dir, "
                                  "removed after a passing run).")
    ] = None,
    config: ConfigOption = Path("config.yaml"),
    verbose: VerboseOption = False,
) -> None:
    """Run the pipeline under faults (SIGKILL and restart) and reconcile: exit 1 on any loss."""
    from lab.soak import SoakOptions, run_soak

    if readings is None and duration is None:
        readings = 300_000
    options = SoakOptions(
        readings=readings, duration_s=duration, rate=rate,
        faults=tuple(f.strip() for f in faults.split(",") if f.strip()),
        fault_interval_s=fault_interval, seed=seed, flow_processes=flow_processes,
        report=report, workdir=workdir,
    )

    def action(settings: Settings) -> int:
        result = run_soak(settings, options)
        typer.echo(result.text(), nl=False)
        return 1 if result.failures() else 0

    run_command(config, verbose, action)
