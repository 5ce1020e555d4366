"""``cityheart open-data keys``: a key is shown once, stored hashed, listed and revoked."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from cityheart.cli import app
from connectors.open_data_keys import KeyGate
from settings.config import Settings
from tests.support import write_config


def test_a_key_is_shown_once_stored_hashed_and_refused_once_revoked(
    base_settings: Settings, tmp_path: Path
) -> None:
    config = write_config(base_settings, tmp_path / "config.yaml")
    runner = CliRunner()
    made = runner.invoke(app, ["open-data", "keys", "add", "River app", "--config", str(config),
                               "--json"])
    assert made.exit_code == 0, made.output
    key = orjson.loads(made.stdout)
    stored = (tmp_path / "open-data-keys.yaml").read_text()
    secret = key["key"].split(".", 1)[1]
    assert secret not in stored and key["id"] in stored
    gate = KeyGate(tmp_path / "open-data-keys.yaml", rate_per_minute=60, daily_quota=10)
    assert gate.check(key["key"], now=0.0).ok
    listed = runner.invoke(app, ["open-data", "keys", "list", "--config", str(config), "--json"])
    assert [(k["id"], k["name"], k["revoked"]) for k in orjson.loads(listed.stdout)] == [
        (key["id"], "River app", None)]
    revoked = runner.invoke(app, ["open-data", "keys", "revoke", key["id"], "--config",
                                  str(config)])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    verdict = gate.check(key["key"], now=1.0)  # the same gate: it reads the changed file
    assert not verdict.ok and verdict.status == 403
    unknown = runner.invoke(app, ["open-data", "keys", "revoke", "nope", "--config", str(config)])
    assert unknown.exit_code == 1 and key["id"] in unknown.output
