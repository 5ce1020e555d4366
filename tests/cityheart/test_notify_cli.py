"""``cityheart oncall`` and ``cityheart notify dead-letters|replay`` on a config with schedules."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from typer.testing import CliRunner

from cityheart.cli import app
from cityheart.runtime.up import COMPONENTS, components_of
from connectors.notifications.channels import Message
from connectors.notifications.outbox import DeadLetters, Delivery
from settings.loader import load
from tests.support import shipped_config


def config_with_schedules(tmp_path: Path) -> Path:
    config = shipped_config()
    config["notifications"] = {
        "state_dir": str(tmp_path / "notify"),
        "people": [{"id": "ana"}, {"id": "ben"}, {"id": "chen"}]}
    config["oncall"] = [
        {"department": "water-authority", "rotation": ["ana", "ben"], "timezone": "Europe/Lisbon",
         "handoff": "08:00", "shift_days": 7, "start": "2026-12-07",
         "overrides": [{"person": "chen", "start": "2026-12-24T18:00:00Z",
                        "end": "2026-12-26T08:00:00Z"}]},
        {"department": "grid-operator", "rotation": ["ben"]}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(config: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--config", str(config)])


def test_oncall_shows_who_is_on_call_now_and_next_per_department(tmp_path: Path) -> None:
    config = config_with_schedules(tmp_path)
    result = run(config, "oncall", "--at", "2026-12-10T12:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "water-authority: ana until 2026-12-14T08:00:00.000Z, then ben",
        "grid-operator: ben (nobody else is scheduled)",
    ]
    result = run(config, "oncall", "--json", "--department", "water-authority",
                 "--at", "2026-12-25T00:00:00Z")
    [line] = result.stdout.splitlines()
    record = orjson.loads(line)
    assert record["now"] == {"person": "chen", "since": "2026-12-24T18:00:00.000Z",
                             "until": "2026-12-26T08:00:00.000Z", "override": True}
    assert record["next"]["person"] == "ana"      # back to the rotation: ana's week


def test_oncall_refuses_an_unknown_department_naming_the_known_ones(tmp_path: Path) -> None:
    result = run(config_with_schedules(tmp_path), "oncall", "--department", "water")
    assert result.exit_code == 2
    assert "--department 'water' is not one of ['grid-operator', 'water-authority']" in \
        result.output


def test_dead_letters_are_listed_and_replayed(tmp_path: Path) -> None:
    config = config_with_schedules(tmp_path)
    dead = DeadLetters(tmp_path / "notify")
    dead.add(Delivery(Message("ntf-1", "mail", "ana@city.example", "s", "t"), 1_796_000_000.0,
                      attempts=8, last_error="no answer"))
    listed = run(config, "notify", "dead-letters")
    assert "ntf-1" in listed.stdout and "8 attempts" in listed.stdout
    assert run(config, "notify", "replay", "ntf-2").exit_code == 1
    replayed = run(config, "notify", "replay")
    assert replayed.exit_code == 0 and "1 dead letters queued" in replayed.stdout
    assert dead.list() == [] and (tmp_path / "notify" / "pending" / "ntf-1.json").exists()


def test_up_runs_the_notifier_only_when_notifications_are_enabled(tmp_path: Path) -> None:
    config = config_with_schedules(tmp_path)
    assert components_of(load(config, env={})) == COMPONENTS
    raw = yaml.safe_load(config.read_text())
    raw["notifications"]["enabled"] = True
    config.write_text(yaml.safe_dump(raw))
    components = components_of(load(config, env={}))
    assert components.index("notifier") == components.index("flow") + 1
