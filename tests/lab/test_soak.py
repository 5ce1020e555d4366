"""`cityheart soak`, short: the whole pipeline under SIGKILLs loses, doubles and skips nothing.

The command publishes 40 s of readings while it kills and restarts, one at a time, the bridge,
a flow process (Bytewax recovery on), the feed, PostgreSQL and mosquitto, then reconciles what
the broker acknowledged with what PostgreSQL stored and what a feed client connected throughout
received. Deselect with ``-m "not soak"``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from tests.support import shipped_config

pytestmark = [pytest.mark.soak, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ("bridge", "flow", "feed", "database", "mqtt")


def test_soak_under_faults_loses_and_doubles_nothing(tmp_path: Path) -> None:
    config = shipped_config()
    config["flow"]["window_s"] = 2  # the restarted flow shows a vital sign soon
    config["flow"]["snapshot_interval_s"] = 2
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    report_path = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, "-m", "cityheart", "soak", "--duration", "40", "--rate", "200",
         "--faults", ",".join(FAULTS), "--fault-interval", "2", "--seed", "3",
         "--report", str(report_path), "--workdir", str(tmp_path / "work"),
         "--config", str(path)],
        capture_output=True, text=True, timeout=280, cwd=tmp_path,
    )
    assert report_path.exists(), result.stderr[-3000:]
    report = orjson.loads(report_path.read_bytes())
    assert "readings lost: 0" not in result.stdout  # the text names only what failed
    assert report["acknowledged"] == report["published"] > 7000, result.stdout
    assert report["lost"] == 0, result.stdout
    assert report["duplicated"] == 0, result.stdout
    assert report["feed_seq_gaps"] == 0, result.stdout
    assert report["alerts_stored"] > 0
    assert report["alerts_missed_by_feed"] == 0, result.stdout
    assert report["duplicate_groups"] == {"alerts": 0, "incidents": 0, "incident_events": 0}
    injected = {fault["component"] for fault in report["faults"]}
    assert injected == set(FAULTS), result.stdout
    assert all(fault["recovered_s"] is not None for fault in report["faults"]), result.stdout
    assert report["feed_epochs"] >= 2, "the feed restarted and the client followed it"
    assert report["unexpected_restarts"] == {}, result.stdout


def test_feed_audit_counts_what_the_feed_skipped() -> None:
    """The zero above means something: the audit sees a skipped seq, live or in a heartbeat."""
    from lab.soak_watch import FeedAudit

    audit = FeedAudit("ws://127.0.0.1:9/feed")  # never started: frames are shown to it directly

    def data(seq: int, type_: str = "vital") -> dict[str, object]:
        return {"type": type_, "seq": seq, "id": f"a{seq}"}

    audit.observe({"type": "subscribed", "since": 0, "last_seq": 0, "replay": 0}, "e1")
    for seq in (1, 2, 4):
        audit.observe(data(seq), "e1")
    assert audit.gaps == 1
    audit.observe({"type": "heartbeat", "last_seq": 6}, "e1")  # 5 and 6 never came
    assert audit.gaps == 3
    # the feed restarted: a snapshot of 2 scattered messages up to seq 9, then live from 10
    audit.observe({"type": "subscribed", "since": None, "last_seq": 9, "replay": 2}, "e2")
    for seq in (3, 8):
        audit.observe(data(seq, "alert"), "e2")
    audit.observe(data(10), "e2")
    assert audit.gaps == 3
    audit.observe(data(12), "e2")
    assert (audit.gaps, audit.epochs, audit.alert_ids >= {"a3", "a8"}) == (4, ["e1", "e2"], True)
