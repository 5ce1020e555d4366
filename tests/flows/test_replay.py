"""`cityheart replay` re-runs the flow's logic over stored readings without duplicating alerts."""

from __future__ import annotations

import psycopg
import pytest
from pydantic import SecretStr

from cityheart.replay import run_replay
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from connectors.storage.rows import reading_row
from models.readings import Reading
from models.timefmt import iso
from settings.config import Settings

pytestmark = pytest.mark.timeout(120)

T0 = 1_795_669_200.0  # 2026-11-26T05:00:00Z, a window boundary


def test_replay_backfills_vitals_and_alerts_once(base_settings: Settings,
                                                 database_url: str) -> None:
    settings = base_settings.model_copy(update={"database": base_settings.database.model_copy(
        update={"url": SecretStr(database_url), "embedded": False})})
    readings = [
        Reading(f"pm25-harbour-{n}", "harbour", "pm25", 300.0, "ug/m3", T0 + n, n)
        for n in range(6)
    ] + [
        Reading(f"pm25-old-town-{n}", "old-town", "pm25", 12.0, "ug/m3", T0 + n, n)
        for n in range(6)
    ]
    with Storage.open(StorageOptions(url=database_url)) as storage:
        storage.writer("readings").write([reading_row(r) for r in readings])

    for _ in range(2):  # the second replay must change nothing
        code = run_replay(settings, since=iso(T0 - 60), until=iso(T0 + 60), now=T0 + 3600)
        assert code == 0

    with psycopg.connect(database_url) as conn:
        alerts = conn.execute(
            "SELECT district, kind, severity FROM alerts WHERE kind = 'pm25' ORDER BY id"
        ).fetchall()
        vitals = conn.execute(
            "SELECT district, count, mean FROM vitals WHERE kind = 'pm25' ORDER BY district"
        ).fetchall()
    assert alerts == [("harbour", "pm25", "critical")], "one alert, not one per replay"
    assert vitals == [("harbour", 6, 300.0), ("old-town", 6, 12.0)]
