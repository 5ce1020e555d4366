"""Every read is audited (issue 23): the feed, the dashboard's API and open-data downloads write
the audit, and ``cityheart audit`` answers "who read district X's data last week".

Real Tansu, the real feed and dashboard servers, the real CLI.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from cityheart.cli import app
from cityheart.dashboard import web_root
from cityheart.token import feed_auth, issue
from connectors.audit_log import AuditLog
from connectors.feed.server import FeedServer
from connectors.web_server import DashboardSettings, WebServer
from settings.config import Settings
from tests.connectors.test_feed import aread_until_heartbeat, vital
from tests.connectors.test_feed_auth import ENV, connect
from tests.support import write_config
from tests.support.feed import produce

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


class _Incidents:
    """A dispatch API holding two incidents, one in the harbour and one in the old town."""

    def incidents(self, claims, *, states, limit):  # noqa: ANN001, ANN201
        return {"incidents": [{"id": "i1", "district": "harbour", "state": "open"},
                              {"id": "i2", "district": "old-town", "state": "open"}]}


def test_the_audit_answers_who_read_a_districts_data(settings: Settings,
                                                      tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    settings = settings.model_copy(update={"auth": settings.auth.model_copy(
        update={"required": True, "audit_dir": str(audit_dir)})})
    authenticate, view = feed_auth(settings, env=ENV, revoked=tmp_path / "revoked.yaml")
    viewer = issue(settings, role="viewer", sub="wall-display", env=ENV)
    dispatcher = issue(settings, role="dispatcher", department="water-authority", sub="ana",
                       env=ENV)

    async def feed_reads() -> list[dict]:
        async with FeedServer(settings, heartbeat_s=0.2, authenticate=authenticate, view=view,
                              audit=AuditLog(audit_dir, "feed")) as server:
            ws = await connect(server.url, viewer)
            await asyncio.to_thread(produce, settings, [vital("harbour", "pm25", 10),
                                                        vital("harbour", "noise", 10),
                                                        vital("old-town", "pm25", 10)])
            got = await aread_until_heartbeat(ws, 3)
            await ws.close()
        return got

    assert len(asyncio.run(feed_reads())) == 3
    with WebServer(settings, DashboardSettings(port=0), static_dir=web_root(),
                   api=_Incidents(), authenticate=authenticate,
                   audit=AuditLog(audit_dir, "dashboard")) as web:
        request = urllib.request.Request(f"{web.url}api/incidents",
                                         headers={"Authorization": f"Bearer {dispatcher}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert len(orjson.loads(response.read())["incidents"]) == 2

    config = write_config(settings, tmp_path / "config.yaml")
    result = CliRunner().invoke(app, ["audit", "--district", "harbour", "--since", "7d",
                                      "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    rows = {r["sub"]: r for r in map(orjson.loads, result.stdout.splitlines())}
    assert set(rows) == {"wall-display", "ana"}
    assert (rows["wall-display"]["records"], rows["wall-display"]["interfaces"]) == (2, ["feed"])
    assert (rows["ana"]["records"], rows["ana"]["what"]) == (1, ["/api/incidents"])
    assert rows["ana"]["first"] <= time.time()
    text = CliRunner().invoke(app, ["audit", "--district", "north-hills", "--config",
                                    str(config)])
    assert text.exit_code == 0 and "nobody read north-hills" in text.stdout
