"""Helpers the tests share: config files for child processes, reading whole topics."""

from __future__ import annotations

from pathlib import Path

from models.config import Settings


def write_config(settings: Settings, path: Path) -> Path:
    """Write ``settings`` as a config.yaml a child process (``cityheart ... --config``) can load."""
    import yaml

    data = settings.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list:
    """Read ``topic`` from the beginning until ``expected`` records arrived or ``timeout`` passed."""
    import time

    from connectors.kafka import tail_consumer

    consumer = tail_consumer(bootstrap, [topic])
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.1):
                if message.error() is None:
                    records.append(message)
    finally:
        consumer.close()
    return records
