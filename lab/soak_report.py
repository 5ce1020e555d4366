"""What a soak run found, as numbers, a readable text and a JSON file.

    report = SoakReport(...)              # filled by lab.soak.run_soak
    report.failures()                     # ["readings lost: 3", ...]; [] when it passed
    print(report.text())
    report.write(Path("soak.json"))       # the JSON, and soak.txt next to it
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lab.soak_faults import FaultResult

__all__ = ["SoakReport", "machine"]


def machine() -> str:
    """This machine in one line: architecture, cores, Python, kernel."""
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


@dataclass
class SoakReport:
    """Every figure of one soak run; :meth:`failures` says which break a promise."""

    command: str
    options: dict[str, Any]
    machine: str
    started_at: str
    publish_s: float = 0.0
    published: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    resent: int = 0
    """Readings the publisher published again after a reconnection: those the broker had
    acknowledged in its unsaved window (see :data:`lab.soak_watch.RESEND_ACKED_S`)."""
    lost_before_kafka: int | None = None
    """Of the lost readings, those that never reached the readings topic (None: not checked)."""
    duplicated: int = 0
    """Extra rows of readings stored more than once (by device and seq)."""
    dead_letters: int = 0
    alerts_stored: int = 0
    alerts_missed_by_feed: int = 0
    duplicate_groups: dict[str, int] = field(default_factory=dict)
    incident_events: dict[str, int] = field(default_factory=dict)
    incidents_stored: int = 0
    feed_messages: int = 0
    feed_connections: int = 0
    feed_epochs: int = 0
    feed_seq_gaps: int = 0
    feed_out_of_order: int = 0
    faults: list[FaultResult] = field(default_factory=list)
    unexpected_restarts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    workdir: str = ""

    def recovery(self) -> dict[str, dict[str, float | int | None]]:
        """Per component: faults, and the worst and mean time to recover, seconds."""
        summary: dict[str, dict[str, float | int | None]] = {}
        for component in dict.fromkeys(f.component for f in self.faults):
            times = [f.recovered_s for f in self.faults if f.component == component]
            done = [t for t in times if t is not None]
            summary[component] = {
                "faults": len(times),
                "not_recovered": len(times) - len(done),
                "max_s": max(done) if done else None,
                "mean_s": round(sum(done) / len(done), 2) if done else None,
            }
        return summary

    def failures(self) -> list[str]:
        """What broke a promise (empty: the run passed)."""
        checks = {
            "readings lost": self.lost,
            "readings duplicated in storage": self.duplicated,
            "alerts missed by the feed client": self.alerts_missed_by_feed,
            "feed seq gaps": self.feed_seq_gaps,
            "incidents duplicated": self.duplicate_groups.get("incidents", 0),
            "incident events duplicated": self.duplicate_groups.get("incident_events", 0),
            "alerts duplicated": self.duplicate_groups.get("alerts", 0),
            "incident events conflicting on replay": self.incident_events.get("conflicting", 0),
            "components not recovered": sum(1 for f in self.faults if f.recovered_s is None),
        }
        found = [f"{name}: {count}" for name, count in checks.items() if count]
        return found + self.errors

    def to_json(self) -> dict[str, Any]:
        """Everything, plus the recovery summary and the verdict."""
        data = asdict(self)
        data["recovery"] = self.recovery()
        data["failures"] = self.failures()
        data["passed"] = not data["failures"]
        return data

    def write(self, path: Path) -> None:
        """Write the JSON to ``path`` and the text next to it (same name, ``.txt``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        path.with_suffix(".txt").write_text(self.text(), encoding="utf-8")

    def text(self) -> str:
        """The report as people read it."""
        lines = [
            f"cityheart soak on {self.machine}, started {self.started_at}",
            f"  {self.command}",
            f"readings: {self.published:,} published in {self.publish_s:.0f} s, "
            f"{self.acknowledged:,} acknowledged by the broker, {self.stored:,} stored",
            f"  lost (acknowledged, never stored): {self.lost:,}"
            + (f" ({self.lost_before_kafka:,} never reached Kafka)"
               if self.lost and self.lost_before_kafka is not None else ""),
            f"  published again after a broker restart (acknowledged in its unsaved window): "
            f"{self.resent:,}",
            f"  duplicated in storage: {self.duplicated:,}; dead-lettered: {self.dead_letters:,}",
            f"alerts: {self.alerts_stored:,} stored, {self.alerts_missed_by_feed:,} never reached "
            f"the feed client; duplicate groups: {self.duplicate_groups}",
            f"incidents: {self.incidents_stored:,} stored; events in the topic: "
            f"{self.incident_events}",
            f"feed client: {self.feed_messages:,} messages over {self.feed_connections} "
            f"connections and {self.feed_epochs} feed runs; seq gaps {self.feed_seq_gaps}, out "
            f"of order {self.feed_out_of_order}",
            f"faults ({len(self.faults)}, SIGKILL then restart):",
        ]
        for fault in self.faults:
            recovered = (
                "NOT RECOVERED" if fault.recovered_s is None else f"{fault.recovered_s:.2f} s"
            )
            lines.append(
                f"  at {fault.at_s:7.1f} s  {fault.component:<9} pid {fault.killed_pid:<7} "
                f"running again {fault.restarted_s:6.2f} s  recovered {recovered}  "
                f"({fault.detail})"
            )
        for component, summary in self.recovery().items():
            lines.append(f"  {component}: {summary['faults']} faults, recovery max "
                         f"{summary['max_s']} s, mean {summary['mean_s']} s")
        lines.append(f"unexpected restarts: {self.unexpected_restarts or 'none'}")
        failures = self.failures()
        lines.append("result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
        return "\n".join(lines) + "\n"
