"""The raw paho ceiling: one paho publisher -> mosquitto -> one paho subscriber at QoS 1.

The most one-reading MQTT messages a second this machine moves, which no pipeline built on paho
and mosquitto can beat; ``cityheart bench`` prints it beside the sustained figure::

    rate = measure_ceiling(messages=100_000)        # messages/s, on a mosquitto of its own

The broker is a fresh embedded mosquitto on a free loopback port. The publisher runs as a
process of its own (``python -m lab.paho_ceiling URL TOPIC MESSAGES``), so the two clients do
not share one interpreter lock; it keeps at most :data:`IN_FLIGHT` messages unacknowledged (a
semaphore released on PUBACK), as the simulator does. The subscriber (this process) counts what
it receives at QoS 1; the rate is the messages over the time from the first to the last.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cityheart.runtime.servers import start_mqtt_broker
from connectors.mqtt import new_client

__all__ = ["IN_FLIGHT", "PAYLOAD", "measure_ceiling"]

IN_FLIGHT = 1000
"""QoS 1 messages the publisher may have unacknowledged at once."""

PAYLOAD = (b'{"device_id":"pm25-old-town-001","kind":"pm25","value":17.25,"unit":"ug/m3",'
           b'"ts":"2026-11-26T08:00:00.125Z","seq":42}')
"""A message the size of one simulated reading."""


def measure_ceiling(messages: int = 100_000, timeout: float = 120.0) -> float:
    """Messages a second from one paho publisher to one paho subscriber through a mosquitto of
    their own, at QoS 1 (0.0 if fewer than two arrived within ``timeout`` seconds)."""
    log = Path(tempfile.mkdtemp(prefix="cityheart-ceiling-")) / "mosquitto.log"
    broker = start_mqtt_broker(prefer="mosquitto", log_path=log)
    try:
        return _measure(broker.url, messages, timeout)
    finally:
        broker.stop()


def _measure(url: str, messages: int, timeout: float) -> float:
    topic = "ceiling/readings"
    lock = threading.Lock()
    times: list[float] = []  # first and latest arrival
    count = [0]
    done = threading.Event()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        now = time.perf_counter()
        with lock:
            count[0] += 1
            if not times:
                times.append(now)
            times[1:] = [now]
            if count[0] >= messages:
                done.set()

    subscribed = threading.Event()
    subscriber = new_client(url, f"ceiling-sub-{time.monotonic_ns()}")
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.start()
    try:
        subscriber.subscribe(topic, qos=1)
        if not subscribed.wait(10):
            return 0.0
        publisher = subprocess.Popen(
            [sys.executable, "-m", "lab.paho_ceiling", url, topic, str(messages)],
        )
        try:
            done.wait(timeout)
        finally:
            if not done.is_set():
                publisher.kill()
            publisher.wait(10)
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()
    with lock:
        if count[0] < 2 or len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (count[0] - 1) / (times[-1] - times[0])


def _publish(url: str, topic: str, messages: int) -> None:
    """Publish ``messages`` at QoS 1, at most IN_FLIGHT unacknowledged, then disconnect."""
    room = threading.Semaphore(IN_FLIGHT)
    acked = [0]
    all_acked = threading.Event()

    def on_publish(*args: Any) -> None:
        room.release()
        acked[0] += 1  # paho's network thread only
        if acked[0] == messages:
            all_acked.set()

    client = new_client(url, f"ceiling-pub-{time.monotonic_ns()}", max_inflight=0)
    client.on_publish = on_publish
    client.start()
    for _ in range(messages):
        room.acquire()
        client.publish(topic, PAYLOAD, qos=1)
    all_acked.wait(30)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    _publish(sys.argv[1], sys.argv[2], int(sys.argv[3]))
