"""``cityheart flow``: run the Bytewax dataflow on Kafka until SIGINT or SIGTERM.

    run_flow(settings)      # creates missing topics, then runs readings -> vitals, alerts
                            # (vitals: window records and indicator records)

or under bytewax's own runner, with the CITYHEART_* environment overrides applied
(:func:`flows.city.build_from_config`, also importable from here)::

    python -m bytewax.run "cityheart.flow:build_from_config('config.yaml')"

SIGINT and SIGTERM stop the dataflow and :func:`run_flow` returns normally (exit code 0). Every
batch the sinks took was confirmed by Kafka before that.

Recovery (``flow.recovery_dir``, off by default): Bytewax snapshots every step's state (open
windows, rule memories, anomaly detectors) and the Kafka positions every
``flow.snapshot_interval_s`` into the recovery partitions there (made on first use, see
:func:`recovery_config`). A restart resumes from the last snapshot and replays the input read
since, which yields the same records again (alerts keep their ids), so nothing downstream
changes. Without recovery a restart reads the topics again from the beginning and windows still
open at the stop are not emitted.

Incidents (:mod:`cityheart.services.reconcile`): before the dataflow starts, the incidents
history still has to act on are compared with the ``incidents`` topic; those the log lost (a
broker that kept its topics in memory restarted) are restored from history with a ``restore``
event, so every incident listed as open can still be acted on. New incident ids hash the topic's
id, so a new log never reuses an id history holds.

Scale-out (``flow.processes`` > 1): :func:`run_flow` starts that many flow processes as one
Bytewax cluster on loopback (:func:`run_local_cluster`; Bytewax's own ``process_id`` and
``addresses``), which share the readings' partitions and exchange the districts' state.
Across machines each runs ``cityheart flow --process-id I --addresses "h0:p;h1:p"``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from bytewax.errors import BytewaxRuntimeError
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main

from cityheart.devices import load_registry
from cityheart.runtime.members import run_members
from cityheart.runtime.servers import free_port
from cityheart.services.reconcile import reconcile_incidents
from connectors.kafka import create_topics
from connectors.notify import Notifier
from flows.city import build_from_config, build_kafka_flow
from models.errors import CityheartError, ConfigError
from settings.config import FlowSettings, Settings
from settings.loader import dump

__all__ = [
    "build_from_config",
    "recovery_config",
    "run_dataflow",
    "run_flow",
    "run_local_cluster",
]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def recovery_config(flow: FlowSettings) -> RecoveryConfig | None:
    """Bytewax's recovery settings for ``flow.recovery_dir`` (None: recovery is off).

    The directory and its ``flow.recovery_partitions`` partitions are made if missing
    (``python -m bytewax.recovery DIR N`` does the same); existing ones are used as they are.
    """
    if flow.recovery_dir is None:
        return None
    directory = Path(flow.recovery_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create the recovery directory {str(directory)!r}: {exc.strerror}"
        raise ConfigError("flow", "flow.recovery_dir", msg) from exc
    if not any(directory.glob("part-*.sqlite3")):
        init_db_dir(directory, flow.recovery_partitions)
        log.info("made %d recovery partition(s) in %s", flow.recovery_partitions, directory)
    backup = timedelta(seconds=flow.backup_interval_s)
    return RecoveryConfig(str(directory), backup_interval=backup)


def run_flow(
    settings: Settings, *, process_id: int | None = None, addresses: Sequence[str] = (),
    notifier: Notifier | None = None, registry: Path | None = None,
) -> int:
    """Create the topics if missing and run the dataflow until SIGINT or SIGTERM.

    With ``process_id`` and ``addresses`` (every process's ``host:port``, this one's at
    ``process_id``) this process is one member of a Bytewax cluster; otherwise
    ``flow.processes`` > 1 starts a cluster of that many on loopback. Returns the exit code.
    ``notifier`` hears ``READY=1`` once the incidents are reconciled with history and the
    dataflow is built, right before it runs (each member of a cluster says it for itself).
    ``registry`` is the device registry file: its devices' positions place the readings that
    carry none of their own, and its devices that never report are ``missing`` in device
    health (a missing file: an empty registry).
    """
    kafka = settings.kafka
    topics = kafka.topics
    flow_settings = settings.flow
    create_topics(kafka.bootstrap, settings.kafka_topic_names(), kafka.partitions)
    recovery = recovery_config(flow_settings)  # made before any member of a cluster starts
    if registry is not None:  # a cluster's members (a config copy elsewhere) find it too
        auth = settings.mqtt.device_auth.model_copy(update={"registry": str(registry.resolve())})
        settings = settings.model_copy(
            update={"mqtt": settings.mqtt.model_copy(update={"device_auth": auth})})
    if process_id is None and flow_settings.processes > 1:
        return run_local_cluster(settings, flow_settings.processes)
    restored = reconcile_incidents(settings, write=not process_id)
    devices = load_registry(settings, registry) if registry else None
    flow = build_kafka_flow(settings, restored=restored, registry=devices,
                            recovery=recovery is not None)
    if notifier is not None:
        notifier.status("incidents reconciled with history; running")
        notifier.ready()
    log.info(
        "flow: %s (and the bridge's rejections, %s) -> %s (windows and indicators), %s "
        "(dead letters %s) at %s, %d worker(s), %g s windows, AQI %s, recovery %s",
        topics.readings, topics.rejected, topics.vitals, topics.alerts, topics.dead_letter,
        kafka.bootstrap,
        flow_settings.workers, flow_settings.window_s, settings.indicators.aqi.standard,
        flow_settings.recovery_dir or "off",
    )
    run_dataflow(
        flow,
        workers=flow_settings.workers,
        name="flow" if process_id is None else f"flow process {process_id}",
        process_id=process_id or 0,
        addresses=addresses,
        epoch_interval=timedelta(seconds=flow_settings.snapshot_interval_s),
        recovery=recovery,
    )
    return 0


def run_local_cluster(settings: Settings, processes: int) -> int:
    """Run the flow as ``processes`` child processes forming one Bytewax cluster on loopback.

    Each child is ``cityheart flow --process-id I --addresses ...`` on a copy of ``settings``
    (written to a private file). Until SIGINT or SIGTERM, which stop every child; if one child
    exits, the others are stopped too (a Bytewax cluster cannot go on without a member).
    Returns 0 when every child stopped cleanly, else the first non-zero exit code.
    """
    addresses = [f"{LOOPBACK}:{free_port()}" for _ in range(processes)]
    with tempfile.TemporaryDirectory(prefix="cityheart-flow-") as tmp:
        config = Path(tmp) / "config.yaml"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT, 0o600)  # secrets are written in clear
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yaml.safe_dump(dump(settings), out, sort_keys=False)
        log.info("flow: %d processes on %s", processes, ";".join(addresses))
        members = [
            (f"flow process {index}",
             [sys.executable, "-m", "cityheart", "flow", "--config", str(config),
              "--process-id", str(index), "--addresses", ";".join(addresses)])
            for index in range(processes)
        ]
        return run_members("flow", members, signals=(signal.SIGTERM,))


def run_dataflow(
    flow: Any,
    *,
    workers: int,
    name: str,
    process_id: int = 0,
    addresses: Sequence[str] = (),
    epoch_interval: timedelta | None = None,
    recovery: RecoveryConfig | None = None,
) -> None:
    """Run a Bytewax dataflow in this process until SIGINT or SIGTERM (then return quietly).

    ``process_id`` and ``addresses`` make it a member of a cluster; ``epoch_interval`` is
    Bytewax's (default 10 s), the snapshot interval under ``recovery``. Raises the
    CityheartError that stopped the flow (e.g. Kafka refused a record) as itself.
    """
    # bytewax stops on KeyboardInterrupt (it checks Python's signal handlers as it runs):
    # make SIGTERM raise one too (handlers can only be set on the main thread)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if on_main_thread else None
    try:
        # process_id and addresses: run as a one-process cluster even with one worker; bytewax's
        # single-worker path reports Ctrl-C as a Rust panic instead of a KeyboardInterrupt
        cli_main(
            flow,
            workers_per_process=workers,
            process_id=process_id,
            addresses=list(addresses),
            epoch_interval=epoch_interval,
            recovery_config=recovery,
        )
    except KeyboardInterrupt:
        log.info("%s stopped by signal", name)
    except BytewaxRuntimeError as exc:
        cause = _cause(exc, (KeyboardInterrupt, CityheartError))
        if isinstance(cause, KeyboardInterrupt):
            log.info("%s stopped by signal", name)
            return
        if isinstance(cause, CityheartError):  # e.g. Kafka refused a record: name it plainly
            log.debug("dataflow failed", exc_info=exc)
            raise cause from None
        raise
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _cause(
    exc: BaseException, kinds: tuple[type[BaseException], ...]
) -> BaseException | None:
    """The first exception of one of ``kinds`` in ``exc``'s cause chain (bytewax wraps errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None
