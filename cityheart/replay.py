"""``cityheart replay --from T1 --to T2``: re-run the indicator and alert logic over history.

Backfills vital signs, indicators and alerts for the stored readings of a past range (after a
rule change, say) with :func:`flows.replay.build_replay_flow`, then refreshes the rollups from
T1 on. Alerts already stored are kept, never duplicated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from cityheart.flow import run_dataflow
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from flows.replay import build_replay_flow
from models.choices import refusal
from models.errors import ConfigError
from models.history import parse_time
from models.timefmt import iso
from settings.config import Settings

__all__ = ["run_replay"]

log = logging.getLogger(__name__)


def run_replay(
    settings: Settings,
    *,
    since: str,
    until: str,
    districts: Sequence[str] = (),
    kinds: Sequence[str] = (),
    now: float | None = None,
) -> int:
    """Replay the range and return the exit code (0 done)."""
    now = time.time() if now is None else now
    try:
        start, end = parse_time(since, now=now), parse_time(until, now=now)
    except ValueError as exc:
        raise ConfigError("cityheart replay", "--from/--to", str(exc)) from None
    if start >= end:
        reason = f"--from {iso(start)} must be before --to {iso(end)}"
        raise ConfigError("cityheart replay", "--from/--to", reason)
    for option, values, known in (("--district", districts, settings.district_ids()),
                                  ("--kind", kinds, list(settings.kinds))):
        if (reason := refusal(values, known, option.lstrip("-"))) is not None:
            raise ConfigError("cityheart replay", option, reason)
    options = StorageOptions.from_database(settings.database)
    with Storage.open(options) as storage:
        log.info("replay: readings from %s to %s", iso(start), iso(end))
        run_dataflow(
            build_replay_flow(
                settings, options, since=start, until=end, districts=districts, kinds=kinds
            ),
            workers=1,
            name="replay",
        )
        storage.refresh(now=now, start=start)
    print(f"replayed {iso(start)} .. {iso(end)}", flush=True)
    return 0
