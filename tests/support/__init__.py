"""Helpers the tests share, one of each, by what they help with:

- ``config``: the test city (Riverton) or the shipped one (SF) as one mapping, config files
  for child processes, fresh names;
- ``waiting``: ``wait_until``, the one deadline poll;
- ``kafka``: writing into and reading a test's topics;
- ``bridge``: a real MQTT-to-Kafka bridge on a thread;
- ``feed``: the push feed on a thread and a websocket client that records what it gets;
- ``relay``: a TCP relay a test can cut, as a network failure would;
- ``flow``: the city flow on bytewax's testing source and sinks;
- ``dispatch``: the incident/dispatch stack; ``browser``: chromium for the dashboard;
  ``storage``: deterministic history and its expected answers.

The most used are importable from here too: ``from tests.support import shipped_config``.
"""

from tests.support.bridge import serving_bridge
from tests.support.config import CONFIG, ROOT, SHIPPED, shipped_config, unique, write_config
from tests.support.feed import FeedRecorder
from tests.support.kafka import consume_all
from tests.support.waiting import wait_until

__all__ = ["CONFIG", "ROOT", "SHIPPED", "FeedRecorder", "consume_all", "serving_bridge",
           "shipped_config", "unique", "wait_until", "write_config"]
