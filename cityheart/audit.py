"""``cityheart audit``: who read a district's data, when, through what and how much.

    cityheart audit --district harbour --since 7d            # last week's readers, a line each
    cityheart audit --district harbour --since 7d --json     # one JSON object per reader

It reads the read audit every component writes (``auth.audit_dir``: the dashboard's API and
open-data downloads, the push feed) and answers with one row per reader (subject, role,
grant): how many reads, how many records of that district, first and last, and through which
interfaces and routes.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from connectors.audit_log import read_audit
from models.audit import readers
from models.history import parse_time
from models.timefmt import iso

__all__ = ["run_audit"]


def run_audit(directory: Path, *, district: str, since: str, until: str, as_json: bool,
              now: float) -> int:
    """Print the readers of ``district`` in [since, until); 1 on a bad time, else 0."""
    try:
        start, end = parse_time(since, now=now), parse_time(until, now=now)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    rows = readers(read_audit(directory, since=start, until=end), district=district,
                   since=start, until=end)
    if as_json:
        for row in rows:
            typer.echo(orjson.dumps(row.to_record()).decode())
        return 0
    if not rows:
        typer.echo(f"nobody read {district}'s data between {iso(start)} and {iso(end)} "
                   f"(audit in {directory})")
        return 0
    typer.echo(f"who read {district}'s data between {iso(start)} and {iso(end)}:")
    for row in rows:
        grant = f", grant {row.grant}" if row.grant else ""
        typer.echo(f"  {row.sub} ({row.role}{grant}): {row.records} records in {row.reads} "
                   f"reads, {iso(row.first)} .. {iso(row.last)}, via "
                   f"{', '.join(sorted(row.interfaces))}: {', '.join(sorted(row.what))}")
    return 0
