"""The wheel a user or the image installs runs the whole city, not only the source tree.

Builds the wheel from what ``deploy/Dockerfile`` copies into the image, installs it (with its
dependencies, from pip's cache after the first run) into a fresh virtual environment outside
the source tree, and from a directory outside the tree runs ``cityheart --help``, imports
every module of the installed packages and serves the dashboard's page from the installed
copy. An editable install (``pip install -e``, what scripts/setup.sh does) hides a package
left out of the wheel; this test does not. About a minute; ``-m 'not packaging'`` skips it.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.support import ROOT

# about a minute alone; the install takes several when the machine is shared and loaded
pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

PACKAGES = ("cityheart", "flows", "connectors", "models", "alerts", "settings")

# run by the installed interpreter: import every module of PACKAGES, print where each came from
IMPORT_ALL = """
import importlib, json, pkgutil, sys
found = {}
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    found[name] = package.__file__
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue  # runs the command line when imported; `python -m cityheart` covers it
        found[info.name] = importlib.import_module(info.name).__file__
print(json.dumps(found))
"""


def _image_sources() -> list[tuple[str, str]]:
    """``(source, destination)`` of each file the Dockerfile copies before ``pip install .``."""
    copies: list[tuple[str, str]] = []
    for line in (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("RUN pip install"):
            return copies
        if line.startswith("COPY "):
            *sources, destination = line.split()[1:]
            copies += [(source, destination) for source in sources]
    pytest.fail("deploy/Dockerfile has no `RUN pip install` line")


def _source_modules() -> set[str]:
    """Every module of PACKAGES in the source tree, as a dotted name."""
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names - {"cityheart.__main__"}


def _clean_env() -> dict[str, str]:
    """This process's environment without what would point Python or cityheart elsewhere."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "CITYHEART_")) and key != "VIRTUAL_ENV"}
    # metrics would bind config.yaml's fixed port; the tests use free ports only
    return {**env, "PYTHONUNBUFFERED": "1", "CITYHEART_METRICS_ENABLED": "false"}


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(argv, cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel installed; its directory (outside the source tree)."""
    base = tmp_path_factory.mktemp("wheel")
    context = base / "context"  # the image's build context, as the Dockerfile lays it out
    for source, destination in _image_sources():
        target = context / destination
        if destination.endswith("/"):
            target = target / Path(source).name
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "*.egg-info", "node_modules"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / source, target)
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
          str(context)], cwd=base)
    (wheel,) = dist.glob("cityheart-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=base)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile",
          "--disable-pip-version-check", str(wheel)], cwd=base)
    return venv


def test_the_installed_command_answers_help(installed: Path, tmp_path: Path) -> None:
    for argv in ([str(installed / "bin" / "cityheart"), "--help"],
                 [str(installed / "bin" / "python"), "-m", "cityheart", "--help"]):
        out = _run(argv, cwd=tmp_path)
        assert "Usage:" in out
        for command in ("up", "flow", "dashboard", "recorder"):
            assert re.search(rf"^\W*{command}\s", out, re.MULTILINE), (command, out)


def test_every_module_is_installed_and_imports(installed: Path, tmp_path: Path) -> None:
    out = _run([str(installed / "bin" / "python"), "-c", IMPORT_ALL, *PACKAGES], cwd=tmp_path)
    found = json.loads(out)
    outside = {name: path for name, path in found.items()
               if not Path(path).resolve().is_relative_to(installed.resolve())}
    assert not outside, f"imported from outside the venv: {outside}"
    assert sorted(_source_modules() - found.keys()) == [], "modules left out of the wheel"


def test_the_installed_dashboard_serves_its_page(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    shutil.copyfile(ROOT / "config.yaml", config)
    shutil.copyfile(ROOT / "city.yaml", tmp_path / "city.yaml")  # the city file it names
    geo = tmp_path / "cityheart" / "data" / "geo"  # and the boundaries file that names
    geo.mkdir(parents=True)
    shutil.copyfile(ROOT / "cityheart" / "data" / "geo" / "san-francisco.geojson",
                    geo / "san-francisco.geojson")
    log = tmp_path / "dashboard.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(installed / "bin" / "cityheart"), "dashboard", "--config", str(config),
             "--host", "127.0.0.1", "--port", "0"],
            cwd=tmp_path, env=_clean_env(), stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    assert process.stdout is not None
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            line = ""
        match = re.fullmatch(r"dashboard: (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, f"dashboard printed {line!r}; its log:\n{log.read_text()[-3000:]}"
        web = ROOT / "cityheart" / "web"
        vendored = ["vendor/leaflet/leaflet.js", "vendor/leaflet/images/layers.png",
                    "vendor/leaflet/LICENSE.txt",
                    "vendor/leaflet.markercluster/leaflet.markercluster.js",
                    "vendor/leaflet.markercluster/LICENSE.txt"]
        for path, source in [("", "index.html"), ("js/main.js", "js/main.js"),
                             ("css/app.css", "css/app.css"), ("favicon.svg", "favicon.svg"),
                             *((name, name) for name in vendored)]:
            with urllib.request.urlopen(match[1] + path, timeout=30) as response:
                assert response.status == 200
                assert response.read() == (web / source).read_bytes(), path
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
