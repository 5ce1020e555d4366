"""``cityheart bridge``: the MQTT-to-Kafka bridge as one process or as several sharing the work.

    run_bridges(settings, config_path=Path("config.yaml"))                 # mqtt.bridge_processes
    run_bridges(settings, config_path=..., processes=2)                    # a parent of 2 members
    run_bridges(settings, config_path=..., processes=2, index=1)           # member 1 of 2 only

With one process this is :func:`connectors.bridge.run_bridge` (plus its ``/metrics``). With
``processes`` > 1 (MQTT 5 only: the members share an MQTT 5 shared subscription, see
:mod:`connectors.bridge`) the parent starts that many children, ``cityheart bridge --config
<same file> --processes N --index I``, with its own environment (secrets stay out of files),
and until SIGINT or SIGTERM watches them; it stops all of them together on a signal or when one
exits (``cityheart up`` then restarts the whole bridge; nothing is lost, every member's session
keeps its share meanwhile). On other machines run ``cityheart bridge --processes N --index I``
for each member yourself. Member ``I`` serves ``/metrics`` on the bridge's port + I.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from cityheart.metrics import component_metrics
from cityheart.runtime.members import run_members
from connectors.bridge import member_client_id, run_bridge
from connectors.kafka import create_topics
from connectors.notify import Notifier
from models.errors import ConfigError
from settings.config import MqttSettings, Settings

__all__ = ["run_bridges", "with_processes"]

log = logging.getLogger(__name__)



def with_processes(settings: Settings, processes: int | None) -> Settings:
    """``settings`` with ``mqtt.bridge_processes`` set to ``processes`` (None: as they are),
    validated as config.yaml would be (ConfigError naming the key, e.g. under MQTT 3.1.1)."""
    if processes is None:
        return settings
    try:
        mqtt = MqttSettings.model_validate(
            {**settings.mqtt.model_dump(), "bridge_processes": processes}
        )
    except ValidationError as exc:
        reason = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ConfigError("--processes", "mqtt.bridge_processes", reason) from None
    return settings.model_copy(update={"mqtt": mqtt})


def run_bridges(
    settings: Settings,
    *,
    config_path: Path,
    processes: int | None = None,
    index: int | None = None,
) -> int:
    """Run the bridge, its member ``index``, or a parent of ``mqtt.bridge_processes`` members
    (``processes`` overrides it) until SIGINT or SIGTERM; return the exit code."""
    settings = with_processes(settings, processes)
    count = settings.mqtt.bridge_processes
    if index is None and count > 1:
        return _run_members(settings, config_path, count)
    member_client_id(settings.mqtt, index or 0)  # refuses an index out of range at once
    with component_metrics(settings, "bridge", index=index or 0):
        run_bridge(settings, index=index or 0, notifier=Notifier.from_environ(os.environ))
    return 0


def _run_members(settings: Settings, config_path: Path, count: int) -> int:
    """Start ``count`` member processes and watch them; stop them all together."""
    topics = settings.kafka.topics
    create_topics(  # once, before the members race to
        settings.kafka.bootstrap, [topics.readings, topics.dead_letter, topics.rejected],
        settings.kafka.partitions,
    )
    log.info("bridge: %d processes sharing $share/%s/%s/+/+/+ and $share/%s/%s/gateway/+",
             count, settings.mqtt.bridge_group, settings.mqtt.topic_prefix,
             settings.mqtt.bridge_group, settings.mqtt.topic_prefix)
    members = [
        (f"bridge member {member}",
         [sys.executable, "-m", "cityheart", "bridge", "--config", str(config_path),
          "--processes", str(count), "--index", str(member)])
        for member in range(count)
    ]
    return run_members("bridge", members, always_running=True)  # a member never exits normally
