"""``cityheart up``: the whole city on one machine, until Ctrl-C.

Starts, in order: the MQTT broker and the Kafka broker (embedded ones unless config.yaml or the
environment names external servers), the topics, then one child process per component
(``cityheart feed``, ``flow``, ``ingest``, ``sources run``, ``bridge``, ``simulate``, ...),
each exactly as it would run in production. It prints ``feed: ws://...`` once the feed accepts
connections (and ``ingest: http://...``, the HTTP ingest endpoint, once it says it is ready),
restarts a component that dies (with a growing delay), and on SIGINT or SIGTERM stops every
child in reverse order and exits 0. Children die with it even if it is killed outright
(PR_SET_PDEATHSIG), so nothing is orphaned. Component logs go to ``<log dir>/<component>.log``.
The ``notifier`` runs too when ``notifications.enabled``.

What survives a restart of ``up``: PostgreSQL keeps ``database.data_dir``; with
``kafka.storage: durable`` (not the default yet: see RELIABILITY.md) the embedded Tansu keeps
its topics, records and consumer offsets in ``kafka.data_dir`` (on s3rver,
:mod:`cityheart.runtime.kafka_store`, installed with npm on first use; without node/npm
``up`` says so and falls back to memory) and the flow runs with Bytewax recovery in
``kafka.data_dir/flow-recovery`` (:func:`flow_recovery_dir`), so it resumes
its windows, rules and incidents where the last run's snapshot left them.

With ``mqtt.bridge_processes`` > 1 the ``bridge`` component is a parent of that many bridge
members sharing the MQTT subscription (:mod:`cityheart.bridge`); their logs share bridge.log.
Devices may publish once the first member subscribed: the shared subscription exists from then
on, and the broker hands later members their share as they join.

With ``mqtt.device_auth.enabled`` the embedded mosquitto refuses anonymous clients and takes the
device registry's accounts (:func:`cityheart.devices.start_authenticated_broker`); the bridge
and the simulator each get their own login through their environment
(:attr:`Supervisor.component_env`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cityheart.devices import start_authenticated_broker
from cityheart.metrics import metrics_urls
from cityheart.runtime.kafka_store import (
    TANSU_STORAGE,
    S3StoreUnavailable,
    start_s3_store,
    tansu_s3_env,
)
from cityheart.runtime.postgres import EmbeddedPostgres, start_postgres
from cityheart.runtime.readiness import ReadinessListener
from cityheart.runtime.servers import (
    ChildProcess,
    EmbeddedServer,
    ensure_port_free,
    spawn,
    start_kafka_broker,
    start_mqtt_broker,
    wait_for_port,
)
from connectors.kafka import create_topics
from settings.config import KafkaSettings, Settings

__all__ = [
    "COMPONENTS",
    "RunningCity",
    "Supervisor",
    "city_stack",
    "components_of",
    "flow_recovery_dir",
    "run_city",
]

log = logging.getLogger(__name__)

COMPONENTS = ("feed", "dashboard", "flow", "recorder", "ingest", "sources", "bridge", "simulate")
"""The components ``up`` runs, in start order (stopped in reverse)."""
NOTIFIER = "notifier"
"""The component ``up`` adds after the flow when ``notifications.enabled``."""


def components_of(settings: Settings) -> tuple[str, ...]:
    """The components ``up`` runs for ``settings``: :data:`COMPONENTS`, with the notifier
    (after the flow, whose events it reads) when notifications are enabled."""
    if not settings.notifications.enabled:
        return COMPONENTS
    at = COMPONENTS.index("flow") + 1
    return (*COMPONENTS[:at], NOTIFIER, *COMPONENTS[at:])


@dataclass
class _Component:
    name: str
    argv: list[str]
    child: ChildProcess | None = None
    restarts: int = 0
    next_start: float = 0.0


@dataclass
class Supervisor:
    """Start components as child processes, restart those that die, stop them in reverse order."""

    env: dict[str, str]
    log_dir: Path
    components: list[_Component] = field(default_factory=list)
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Extra environment by component name (the MQTT login of each under device auth)."""
    readiness: dict[str, ReadinessListener] = field(default_factory=dict)
    """Each component's READY notices (systemd's notify protocol), by component name."""
    _sockets: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cityheart-")))

    def add(self, name: str, argv: list[str]) -> None:
        """Start ``argv`` as component ``name``."""
        component = _Component(name, argv)
        self.components.append(component)
        (self.log_dir / f"{name}.log").write_bytes(b"")  # a new run, a new log; restarts append
        # a short path of its own: a Unix socket's path may not exceed 107 bytes
        self.readiness[name] = ReadinessListener(self._sockets / f"{name}.notify")
        self._start(component)

    def _start(self, component: _Component) -> None:
        component.child = spawn(
            component.name,
            component.argv,
            env={**self.env, **self.component_env.get(component.name, {}),
                 **self.readiness[component.name].environ()},
            log_path=self.log_dir / f"{component.name}.log",
        )

    def check(self, now: float) -> None:
        """Restart any component that exited, waiting longer after each restart (max 30 s)."""
        for component in self.components:
            child = component.child
            if child is None or child.running:
                continue
            if component.next_start == 0.0:
                delay = min(30.0, 2.0**component.restarts)
                component.next_start = now + delay
                log.error(
                    "%s exited with code %s; restarting in %g s (see %s)",
                    component.name,
                    child.process.returncode,
                    delay,
                    child.log_path,
                )
            elif now >= component.next_start:
                component.restarts += 1
                component.next_start = 0.0
                self._start(component)

    def child(self, name: str) -> ChildProcess | None:
        """The child process of component ``name`` (KeyError if no component has that name)."""
        return self._component(name).child

    def restart_now(self, name: str) -> None:
        """Start component ``name`` again at once if it has exited (no backoff: a fault test's
        restart); the previous run must have exited."""
        component = self._component(name)
        if component.child is not None and component.child.running:
            msg = f"component {name!r} is still running (pid {component.child.process.pid})"
            raise RuntimeError(msg)
        component.restarts += 1
        component.next_start = 0.0
        self._start(component)

    def _component(self, name: str) -> _Component:
        for component in self.components:
            if component.name == name:
                return component
        msg = f"no component named {name!r}; running: {[c.name for c in self.components]}"
        raise KeyError(msg)

    def stop(self) -> None:
        """Stop every component, last started first."""
        for component in reversed(self.components):
            if component.child is not None:
                code = component.child.stop(signal.SIGTERM, timeout=15)
                log.info("%s stopped (exit code %s)", component.name, code)
        for listener in self.readiness.values():
            listener.close()
        shutil.rmtree(self._sockets, ignore_errors=True)


@dataclass
class RunningCity:
    """What :func:`city_stack` started: the supervisor of components and the servers' addresses."""

    supervisor: Supervisor
    mqtt_url: str
    kafka_bootstrap: str
    feed_url: str
    dashboard_url: str
    servers: list[EmbeddedServer | EmbeddedPostgres]
    kafka_storage: str = "external"
    """What the embedded Kafka stores in: durable or memory (external: not embedded)."""
    flow_recovery: Path | None = None
    """The flow's Bytewax recovery directory, or None when recovery is off."""
    ingest_url: str | None = None
    """The HTTP ingest endpoint, when ``ingest`` is one of the components."""

    def pids(self) -> dict[str, int]:
        """Process id of each running embedded server and component, by name."""
        found = {
            getattr(server, "kind", "postgres"): server.child.process.pid
            for server in self.servers
        }
        for component in self.supervisor.components:
            if component.child is not None and component.child.running:
                found[component.name] = component.child.process.pid
        return found


@contextlib.contextmanager
def city_stack(
    settings: Settings,
    *,
    config_path: Path,
    log_dir: Path,
    components: tuple[str, ...] = COMPONENTS,
    mqtt_persistence: Path | None = None,
) -> Iterator[RunningCity]:
    """Start servers, topics and ``components`` (as child processes); stop them all on exit.

    ``mqtt_persistence``: a directory where the embedded mosquitto keeps its state (persistent
    sessions and their queued messages) across a restart of the broker (``cityheart soak``).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    servers: list[EmbeddedServer | EmbeddedPostgres] = []
    supervisor = Supervisor(env=dict(os.environ), log_dir=log_dir)
    try:
        env, kafka_storage = _start_servers(
            settings, servers, log_dir, components, config_path=config_path,
            logins=supervisor.component_env, mqtt_persistence=mqtt_persistence)
        supervisor.env.update(env)
        recovery = flow_recovery_dir(settings, kafka_storage)
        extra_args = {"flow": ["--recovery-dir", str(recovery)]} if recovery else {}
        create_topics(
            env["CITYHEART_KAFKA_BOOTSTRAP"],
            settings.kafka_topic_names(),
            settings.kafka.partitions,
        )
        if "feed" in components:
            ensure_port_free(settings.feed.port, "feed")
        if "dashboard" in components:
            ensure_port_free(settings.dashboard.port, "dashboard")
        if "ingest" in components:
            ensure_port_free(settings.ingest.port, "ingest")
        base = [sys.executable, "-m", "cityheart"]
        for name in components:
            command = ["sources", "run"] if name == "sources" else [name]
            supervisor.add(name, [*base, *command, "--config", str(config_path),
                                  *extra_args.get(name, [])])
            child = supervisor.components[-1].child
            assert child is not None
            if name == "feed":
                wait_for_port(settings.feed.host, settings.feed.port, 30, child.process)
            elif name == "dashboard":
                wait_for_port(settings.dashboard.host, settings.dashboard.port, 30, child.process)
            elif name == "flow":
                # the flow reconciles incidents with history before it runs: readings
                # published meanwhile would wait, and the first alerts with them
                supervisor.readiness[name].wait_ready(timeout=60, process=child.process)
            elif name in ("ingest", "sources", NOTIFIER):
                # the notifier reads the incidents topic from its checkpoint: ready once there
                supervisor.readiness[name].wait_ready(timeout=30, process=child.process)
            elif name == "bridge":
                # devices may publish only once the bridge's session subscribes, or the broker
                # has nobody to keep their readings for: the bridge says READY=1 then
                supervisor.readiness[name].wait_ready(timeout=30, process=child.process)
        yield RunningCity(
            supervisor,
            env["CITYHEART_MQTT_URL"],
            env["CITYHEART_KAFKA_BOOTSTRAP"],
            settings.feed.url,
            settings.dashboard.url,
            servers,
            kafka_storage,
            recovery or _configured_recovery(settings),
            settings.ingest.url if "ingest" in components else None,
        )
    finally:
        supervisor.stop()
        for server in reversed(servers):
            server.stop()


def run_city(settings: Settings, *, config_path: Path, log_dir: Path | None = None) -> int:
    """Run the whole city until SIGINT or SIGTERM; return the exit code (0 on a clean stop)."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    log_dir = log_dir or Path("var") / "log"
    try:
        with city_stack(settings, config_path=config_path, log_dir=log_dir,
                        components=components_of(settings)) as city:
            print(f"feed: {city.feed_url}", flush=True)
            print(f"dashboard: {city.dashboard_url}", flush=True)
            if city.ingest_url:
                print(f"ingest: {city.ingest_url} (keys: cityheart ingest-keys add SOURCE)",
                      flush=True)
            if city.supervisor.readiness.get("sources") is not None:
                registry = config_path.resolve().parent / settings.sources.file
                print(f"sources: {registry} (cityheart sources add NAME --url URL --map "
                      "FILE.yaml)", flush=True)
            print(f"logs: {log_dir.resolve()}", flush=True)
            if city.kafka_storage != "external":
                where = f" in {Path(settings.kafka.data_dir).resolve()}" \
                    if city.kafka_storage == "durable" else " (gone when `up` stops)"
                print(f"kafka: {city.kafka_storage}{where}", flush=True)
            recovery = city.flow_recovery.resolve() if city.flow_recovery else "off"
            print(f"flow recovery: {recovery}", flush=True)
            for name, url in metrics_urls(settings, COMPONENTS).items():
                print(f"metrics: {name} {url}", flush=True)
            while not stop.wait(0.5):
                city.supervisor.check(time.monotonic())
        return 0
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)


def _start_servers(
    settings: Settings,
    servers: list[EmbeddedServer | EmbeddedPostgres],
    log_dir: Path,
    components: tuple[str, ...],
    *,
    config_path: Path | None = None,
    logins: dict[str, dict[str, str]] | None = None,
    mqtt_persistence: Path | None = None,
) -> tuple[dict[str, str], str]:
    """Start the embedded servers config asks for; return the env that points children at them
    and what the Kafka broker stores in (durable, memory, or external when not embedded)."""
    env = {}
    kafka_storage = "external"
    if settings.mqtt.embedded:
        if settings.mqtt.device_auth.enabled:  # the bridge and the simulator log in
            mqtt, component_logins = start_authenticated_broker(
                settings, config_path or Path("config.yaml"),
                log_path=log_dir / "mqtt-broker.log",
            )
            (logins if logins is not None else {}).update(component_logins)
        else:
            mqtt = start_mqtt_broker(
                settings.mqtt.port,
                prefer=settings.mqtt.embedded_broker,
                log_path=log_dir / "mqtt-broker.log",
                persistence_dir=mqtt_persistence,
            )
        servers.append(mqtt)
        log.info("embedded MQTT broker (%s) at %s", mqtt.kind, mqtt.url)
        env["CITYHEART_MQTT_URL"] = mqtt.url
        if mqtt.kind == "amqtt":
            env["CITYHEART_MQTT_PROTOCOL"] = "3.1.1"  # amqtt does not speak MQTT 5
    else:
        env["CITYHEART_MQTT_URL"] = settings.mqtt.url
    if settings.kafka.embedded:
        kafka, kafka_storage = _start_kafka(settings.kafka, servers, log_dir)
        log.info("embedded Kafka broker (Tansu, %s) at %s", kafka_storage, kafka.bootstrap)
        env["CITYHEART_KAFKA_BOOTSTRAP"] = kafka.bootstrap
    else:
        env["CITYHEART_KAFKA_BOOTSTRAP"] = settings.kafka.bootstrap
    database = settings.database
    if database.embedded and "recorder" in components:  # only the recorder uses the database
        postgres = start_postgres(
            Path(database.data_dir),
            database.port,
            database=database.name,
            log_path=log_dir / "postgres.log",
        )
        servers.append(postgres)
        log.info("embedded PostgreSQL at 127.0.0.1:%d, data in %s", postgres.port,
                 postgres.data_dir)
        env["CITYHEART_DATABASE_URL"] = postgres.url(database.name)
    else:
        env["CITYHEART_DATABASE_URL"] = database.url.get_secret_value()
    return env, kafka_storage


def _tell(message: str) -> None:
    """Tell the person running ``up`` something they should know (on stderr)."""
    print(f"kafka: {message}", file=sys.stderr, flush=True)


def _start_kafka(
    kafka: KafkaSettings, servers: list[EmbeddedServer | EmbeddedPostgres], log_dir: Path
) -> tuple[EmbeddedServer, str]:
    """Start Tansu (durable: on s3rver, its files in ``kafka.data_dir``; memory where s3rver
    cannot run, saying so); return it and its storage (durable or memory)."""
    storage, storage_env = "memory://tansu/", None
    if kafka.storage == "durable":
        try:
            store = start_s3_store(Path(kafka.data_dir) / "s3", log_path=log_dir / "s3rver.log",
                                   install=True, notify=_tell)
        except S3StoreUnavailable as exc:
            _tell(f"durable storage is unavailable: {exc.reason}. Falling back to memory "
                  "(kafka.storage: memory): topics and the flow's state will not survive a "
                  "restart of `cityheart up`")
        else:
            servers.append(store)
            storage, storage_env = TANSU_STORAGE, tansu_s3_env(store)
    server = start_kafka_broker(kafka.port, log_path=log_dir / "kafka-broker.log",
                                storage=storage, storage_env=storage_env)
    servers.append(server)  # stopped before its store
    return server, "durable" if storage_env else "memory"


def flow_recovery_dir(settings: Settings, kafka_storage: str) -> Path | None:
    """Where ``up`` tells the flow to keep its Bytewax recovery: in the durable embedded Kafka's
    data directory, beside the topics its snapshots point into, unless ``flow.recovery_dir``
    names a place (the flow then reads it from config) or the topics do not outlive ``up``."""
    if settings.flow.recovery_dir is not None or kafka_storage != "durable":
        return None
    return (Path(settings.kafka.data_dir) / "flow-recovery").resolve()


def _configured_recovery(settings: Settings) -> Path | None:
    return Path(settings.flow.recovery_dir) if settings.flow.recovery_dir else None
