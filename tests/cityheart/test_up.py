"""`cityheart up`: the whole city from one command, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml

from cityheart.runtime.servers import free_port
from connectors.ingest.keys import new_key, save_keys
from tests.support import SHIPPED, FeedRecorder, shipped_config, wait_until

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for our purposes once reaped or defunct
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def stored_alert(url: str, alert_id: str) -> tuple | None:
    """The (district, kind) of the stored alert, or None while the recorder has not written it."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT district, kind FROM alerts WHERE id = %s", (alert_id,)
            ).fetchone()
    except psycopg.Error:
        return None  # the schema may not exist yet
    return None if row is None else tuple(row)


def test_up_runs_the_city_shows_an_alert_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    config = shipped_config(SHIPPED)  # the demo the README promises: San Francisco
    config["mqtt"]["url"] = f"mqtt://127.0.0.1:{free_port()}"
    config["kafka"]["bootstrap"] = f"127.0.0.1:{free_port()}"
    config["feed"]["port"] = free_port()
    config["dashboard"]["port"] = free_port()
    config["ingest"]["port"] = free_port()
    config["database"]["url"] = f"postgresql://postgres@127.0.0.1:{free_port()}/cityheart"
    config["database"]["data_dir"] = str(tmp_path / "pgdata")
    config["flow"]["window_s"] = 3
    config["simulator"]["scenarios"]["demo"][0].update(start_s=1, ramp_s=2)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    key, token = new_key("city-lab")
    save_keys(tmp_path / config["ingest"]["keys_file"], [key])

    stderr_path = tmp_path / "up.err"
    process = subprocess.Popen(
        [sys.executable, "-m", "cityheart", "up", "--config", str(path)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr_path.open("wb"), text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("feed: ws://"), (line, stderr_path.read_text())
        url = line.split(" ", 1)[1].strip()
        assert url == f"ws://127.0.0.1:{config['feed']['port']}/feed"
        page = process.stdout.readline().split(" ", 1)
        assert page == ["dashboard:", f"http://127.0.0.1:{config['dashboard']['port']}/\n"]
        with urllib.request.urlopen(page[1].strip(), timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        ingest = process.stdout.readline().split(" ")
        assert ingest[:2] == ["ingest:", f"http://127.0.0.1:{config['ingest']['port']}/ingest"]
        reading = {"device_id": "lab-1", "district": "mission", "kind": "noise", "value": 50,
                   "unit": "dBA", "ts": time.time()}
        request = urllib.request.Request(ingest[1], data=json.dumps(reading).encode(), headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert (response.status, json.load(response)["accepted"]) == (202, 1)
        registry = process.stdout.readline()
        assert registry.startswith(f"sources: {tmp_path / 'sources.yaml'} "), registry
        with FeedRecorder(url) as feed:
            alert = feed.wait_for(lambda m: m["type"] == "alert", timeout=60)
            assert alert["district"] == "bayview" and alert["kind"] == "pm25"
            feed.wait_for(lambda m: m["type"] == "vital", timeout=30)
        stored = wait_until(lambda: stored_alert(config["database"]["url"], alert["id"]), 60,
                            "the recorder to store the alert", every=0.2)
        assert stored == ("bayview", "pm25"), "the recorder kept the alert in history"
    finally:
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
    assert code == 0, stderr_path.read_text()
    assert time.monotonic() - started < 30
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", stderr_path.read_text())]
    assert len(pids) >= 9, ("brokers, database, feed, flow, recorder, ingest, sources, bridge, "
                           "simulator")
    assert not [pid for pid in pids if alive(pid)], "no child outlives `cityheart up`"
