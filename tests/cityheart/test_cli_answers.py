"""What the CLI answers to a wrong filter value or option: a one-line refusal, never silence.

Each command runs through typer's CliRunner on the shipped config.yaml. The database URL names
a loopback port nothing listens on, so a command that fails to refuse its arguments before
connecting fails its test instead of quietly finding a database.
"""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from cityheart.cli import app
from tests.support import CONFIG, shipped_config

NO_DATABASE = "postgresql://postgres@127.0.0.1:9/cityheart"


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [*args, "--config", str(CONFIG)], env=env)


@pytest.mark.parametrize(
    ("args", "refusal", "valid"),
    [
        (["history", "series", "--district", "industrial-eas", "--indicator", "aqi"],
         "--district 'industrial-eas' is not one of", "industrial-east"),
        (["history", "series", "--district", "harbour", "--indicator", "aqq"],
         "--indicator 'aqq' is not one of", "'aqi'"),
        (["history", "series", "--district", "harbour", "--kind", "pm2.5"],
         "--kind 'pm2.5' is not one of", "'pm25'"),
        (["history", "latest", "--kind", "aqi"], "--kind 'aqi' is not one of", "'pm25'"),
        (["history", "alerts", "--kind", "aqq"], "--kind 'aqq' is not one of", "'aqi'"),
        (["history", "alerts", "--severity", "critcal"],
         "--severity 'critcal' is not one of", "['critical', 'warning']"),
        (["history", "incidents", "--severity", "critcal"],
         "--severity 'critcal' is not one of", "'emergency'"),
        (["history", "incidents", "--state", "opne"], "--state 'opne' is not one of",
         "'acknowledged'"),
        (["incidents", "--district", "industrial-eas"], "--district 'industrial-eas' is not one of",
         "'industrial-east'"),
        (["incidents", "--state", "opne"], "--state 'opne' is not one of", "'open'"),
    ],
)
def test_an_unknown_filter_value_is_refused_with_the_valid_ones(
    args: list[str], refusal: str, valid: str
) -> None:
    result = run(*args, "--database-url", NO_DATABASE)
    assert result.exit_code == 2, result.output
    assert refusal in result.stderr and valid in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output



@pytest.mark.parametrize(
    ("option", "value", "valid"),
    [("--district", "industrial-eas", "'industrial-east'"), ("--kind", "pm2.5", "'pm25'")],
)
def test_replay_refuses_an_unknown_district_or_kind(option: str, value: str, valid: str) -> None:
    result = run("replay", "--from", "1h", option, value,
                 env={"CITYHEART_DATABASE_URL": NO_DATABASE})
    assert result.exit_code != 0
    assert f"{option}: {option.lstrip('-')} {value!r} is not one of" in result.stderr
    assert valid in result.stderr


@pytest.mark.parametrize("period", ["0s", "0", "-1d", "soon"])
def test_kpi_refuses_a_period_that_is_not_a_positive_duration(period: str) -> None:
    result = run("kpi", f"--period={period}", "--database-url", NO_DATABASE)
    assert result.exit_code == 2, result.output
    assert "--period" in result.stderr and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_watch_refuses_an_unknown_channel_before_connecting() -> None:
    result = run("watch", "--channel", "incident", "--url", "ws://127.0.0.1:9/feed")
    assert result.exit_code == 2, result.output
    assert "--channel 'incident' is not one of ['alerts', 'incidents', 'kpis', 'vitals']" in (
        result.stderr)


def test_token_refuses_a_department_that_does_not_exist() -> None:
    env = {"CITYHEART_TOKEN_SECRET": "a-test-secret-of-enough-bytes-for-hs256"}
    result = run("token", "--role", "dispatcher", "--department", "nope", env=env)
    assert result.exit_code != 0
    assert result.stdout == "", "no token is issued"
    assert "--department: department 'nope' is not one of [" in result.stderr
    assert "'water-authority'" in result.stderr
    issued = run("token", "--role", "dispatcher", "--department", "water-authority", env=env)
    assert issued.exit_code == 0 and issued.stdout.count(".") == 2  # a JWT: header.claims.sig


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_devices_list_says_when_no_device_is_registered(tmp_path, as_json: list[str]) -> None:
    registry = tmp_path / "devices.yaml"
    result = run("devices", "list", *as_json, "--registry", str(registry))
    assert result.exit_code == 0, result.output
    assert result.stdout == "", "stdout holds devices only"
    assert f"no devices registered in {registry}" in result.stderr
    assert "cityheart devices add" in result.stderr


@pytest.mark.parametrize("command", [["incidents"], ["kpi"], ["history", "alerts"]])
def test_without_a_running_database_the_history_commands_fail_at_once_in_one_line(
    tmp_path, command: list[str]
) -> None:
    import subprocess
    import sys

    import yaml

    data = shipped_config(CONFIG)
    # nothing listens on the discard port: a pool would log a warning at each retry
    data["database"].update(url=NO_DATABASE, embedded=True, data_dir=str(tmp_path / "pgdata"))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHEART_")}
    result = subprocess.run([sys.executable, "-m", "cityheart", *command, "--config", str(config)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"error: postgresql at {NO_DATABASE}: "), (
        result.stderr)
    assert "Connection refused" in lines[0] and "`cityheart up`" in lines[0]
    assert not (tmp_path / "pgdata").exists(), "no database of its own is started"


def test_incident_refuses_an_unknown_outcome_before_calling_the_api() -> None:
    result = run("incident", "inc-1", "resolve", "--outcome", "maybe",
                 "--api", "http://127.0.0.1:9/")
    assert result.exit_code == 2, result.output
    assert "--outcome 'maybe' is not one of ['confirmed', 'false_alarm']" in result.stderr
