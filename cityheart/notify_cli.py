"""The notification and on-call commands of ``cityheart``.

    cityheart notifier                      # the notifier service (cityheart up runs it)
    cityheart notify dead-letters [--json]  # deliveries that never succeeded
    cityheart notify replay [ID ...]        # put them (or these) back for the notifier to retry
    cityheart oncall [--department D] [--at 2026-12-24T20:00:00Z] [--json]

``oncall`` prints, per department with a schedule, who is on call now (since when, until when)
and who is next.
"""


import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from settings.config import Settings

__all__ = ["notify_app", "register", "run_dead_letters", "run_oncall", "run_replay"]

notify_app = typer.Typer(no_args_is_help=True,
                         help="Notification deliveries: the dead-letter list and its replay.")


def register(app: typer.Typer) -> None:
    """Add ``notifier``, ``notify`` and ``oncall`` to the ``cityheart`` command."""
    from cityheart.cli import ConfigOption, VerboseOption, run_command

    @app.command()
    def notifier(config: ConfigOption = Path("config.yaml"),
                 verbose: VerboseOption = False) -> None:
        """Run the notifier: incident events to e-mail and webhooks, on-call pages."""
        from cityheart.services.notifier import run_notifier

        run_command(config, verbose, run_notifier)

    @app.command()
    def oncall(
        department: Annotated[list[str] | None, typer.Option(help="Only these departments.")]
        = None,
        at: Annotated[str, typer.Option(help="When: now, or an ISO 8601 time.")] = "now",
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
        config: ConfigOption = Path("config.yaml"),
        verbose: VerboseOption = False,
    ) -> None:
        """Who is on call now and next, per department."""
        run_command(config, verbose, lambda settings: run_oncall(
            settings, departments=department or [], at=at, as_json=as_json))

    @notify_app.command("dead-letters")
    def dead_letters(
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
        config: ConfigOption = Path("config.yaml"),
        verbose: VerboseOption = False,
    ) -> None:
        """List the deliveries that never succeeded."""
        run_command(config, verbose, lambda s: run_dead_letters(s, as_json=as_json))

    @notify_app.command()
    def replay(
        ids: Annotated[list[str] | None, typer.Argument(help="Notification ids (default: all).")]
        = None,
        config: ConfigOption = Path("config.yaml"),
        verbose: VerboseOption = False,
    ) -> None:
        """Put dead letters back for the notifier to deliver (it retries them at once)."""
        run_command(config, verbose, lambda s: run_replay(s, ids or []))

    app.add_typer(notify_app, name="notify")


def run_dead_letters(settings: Settings, *, as_json: bool = False) -> int:
    """Print the dead-letter list; 0."""
    from connectors.notifications.outbox import DeadLetters

    for delivery in DeadLetters(Path(settings.notifications.state_dir)).list():
        record = delivery.to_record()
        if as_json:
            print(orjson.dumps(record).decode())
            continue
        message = record["message"]
        print(f"{message['id']}  {record['submitted_at']}  {message['channel']}  "
              f"{message['address'] or '-'}  {record['attempts']} attempts  "
              f"{record['last_error']}")
    return 0


def run_replay(settings: Settings, ids: list[str]) -> int:
    """Put dead letters back in the pending list; 1 if some named id is not a dead letter."""
    from connectors.notifications.outbox import DeadLetters

    done = DeadLetters(Path(settings.notifications.state_dir)).replay(ids)
    print(f"{len(done)} dead letters queued for delivery again")
    missing = sorted(set(ids) - set(done))
    if missing:
        print(f"error: not dead letters: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def run_oncall(
    settings: Settings, *, departments: list[str], at: str = "now", as_json: bool = False,
) -> int:
    """Print who is on call at ``at`` and next, per scheduled department; 2 on a bad option."""
    from alerts.oncall import now_and_next
    from models.choices import refusal
    from models.history import parse_time
    from models.timefmt import iso

    known = [s.department for s in settings.oncall]
    if departments and (reason := refusal(departments, known, "--department")):
        print(f"error: {reason}", file=sys.stderr)
        return 2
    try:
        when = parse_time(at, now=time.time())
    except ValueError as exc:
        print(f"error: --at: {exc}", file=sys.stderr)
        return 2
    for schedule in settings.oncall:
        if departments and schedule.department not in departments:
            continue
        current, following = now_and_next(schedule, at=when)
        until = None if following is None else iso(current.end)
        record: dict[str, Any] = {
            "department": schedule.department, "at": iso(when),
            "now": {"person": current.person, "since": iso(current.start),
                    "until": until, "override": current.override},
            "next": None if following is None else {
                "person": following.person, "since": iso(following.start),
                "until": iso(following.end), "override": following.override},
        }
        if as_json:
            print(orjson.dumps(record).decode())
            continue
        line = f"{schedule.department}: {current.person}"
        line += " (override)" if current.override else ""
        if following is None:
            line += " (nobody else is scheduled)"
        else:
            line += f" until {until}, then {following.person}"
        print(line)
    if not settings.oncall:
        print("no on-call schedules (oncall: in config.yaml)")
    return 0
