"""Device accounts on the MQTT side: the registry, ``cityheart devices`` and a real mosquitto.

What a city relies on: a device publishes only with its own credentials and only on its own
topic; anything else (no password, a wrong one, another device's topic, a revoked device) is
refused by the broker itself, and the bridge's account still reads every device.
"""

from __future__ import annotations

import base64
import os
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import yaml
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr
from typer.testing import CliRunner

from cityheart.cli import app
from cityheart.devices import (
    BRIDGE_ACCOUNT,
    add_device,
    export_files,
    load_registry,
    revoke_device,
    rotate_device,
    start_authenticated_broker,
)
from cityheart.runtime.servers import free_port, reload_mqtt_auth, start_mqtt_broker
from cityheart.runtime.up import Supervisor
from connectors.bridge import Bridge
from connectors.mqtt import MqttClient, new_client
from connectors.mqtt_accounts import acl_file, check_password, hash_password
from models.devices import parse_registry
from models.errors import ConfigError, ConnectorError
from models.timefmt import iso
from settings.config import Settings
from tests.support import CONFIG, wait_until
from tests.support.kafka import consume_readings

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
NOT_AUTHORIZED = 135

# written by `mosquitto_passwd -b pw.txt alice s3cret` (mosquitto 2.0.11)
MOSQUITTO_LINE = ("alice:$7$101$Uwovmdgkc99sI7GH$M+9KGvxD7c8xkVMRMqK9kRL4LhsUhz+1Alw6t6UXiAu1+kM2yv"
                  "iNpKyEqw1njEp/PtAkYldm73DwVDV3I4ujnQ==")


# --- the registry and the files (pure, no broker) -------------------------------------------


def test_hashes_are_the_format_mosquitto_passwd_writes() -> None:
    hashed = MOSQUITTO_LINE.split(":", 1)[1]
    assert check_password("s3cret", hashed)
    assert not check_password("s3cret ", hashed)
    salt = base64.b64decode(hashed.split("$")[3])
    assert hash_password("s3cret", salt) == hashed


def device_entry(**fields: Any) -> dict[str, Any]:
    entry = {"id": "pm25-old-town-001", "district": "old-town", "kind": "pm25",
             "password_hash": hash_password("x", b"0" * 12), "added_at": "2026-11-26T08:00:00Z"}
    return {**entry, **fields}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([device_entry(district="atlantis")],
         "devices.yaml: devices[0].district: 'atlantis' is not a district id"),
        ([device_entry(), device_entry(id="b", kind="radon")],
         "devices.yaml: devices[1].kind: 'radon' is not a kind id"),
        ([device_entry(), device_entry()],
         "devices.yaml: devices[1].id: 'pm25-old-town-001' is repeated"),
        ([device_entry(id="city/#")], "devices.yaml: devices[0].id: String should match"),
        ([device_entry(password_hash="hunter2")],
         "devices.yaml: devices[0].password_hash: String should match"),
        ([device_entry(colour="red")], "devices.yaml: devices[0].colour: unknown key"),
        ([{"id": "x"}], "devices.yaml: devices[0].district: required key is missing"),
    ],
)
def test_a_bad_registry_is_refused_naming_the_key(
    base_settings: Settings, entries: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_registry({"devices": entries}, source="devices.yaml",
                       district_ids=base_settings.district_ids(), kind_ids=base_settings.kinds)
    assert str(caught.value).startswith(message)


def test_add_keeps_only_a_hash_and_refuses_unknown_places(
    base_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "devices.yaml"
    password = add_device(base_settings, path, "pm25-old-town-001",
                          district="old-town", kind="pm25", clock=lambda: 1_800_000_000.0)
    text = path.read_text()
    assert password not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [device] = load_registry(base_settings, path).devices
    assert check_password(password, device.password_hash)
    assert device.added_at == iso(1_800_000_000.0)
    assert device.topic("city") == "city/old-town/pm25/pm25-old-town-001"

    with pytest.raises(ConfigError, match="'pm25-old-town-001' is already registered"):
        add_device(base_settings, path, "pm25-old-town-001", district="old-town", kind="pm25")
    with pytest.raises(ConfigError, match=r"devices\[1\]\.district: 'atlantis' is not a district"):
        add_device(base_settings, path, "pm25-x", district="atlantis", kind="pm25")
    with pytest.raises(ConfigError, match=r"devices.yaml: id: String should match .*'a b'"):
        add_device(base_settings, path, "a b", district="old-town", kind="pm25")
    assert len(load_registry(base_settings, path).devices) == 1


def test_revoke_and_rotate(base_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    first = add_device(base_settings, path, "noise-1", district="harbour", kind="noise")
    second = rotate_device(base_settings, path, "noise-1")
    device = load_registry(base_settings, path).get("noise-1")
    assert device is not None
    assert check_password(second, device.password_hash)
    assert not check_password(first, device.password_hash)

    revoked = revoke_device(base_settings, path, "noise-1", clock=lambda: 1_800_000_000.0)
    assert revoked.revoked_at == iso(1_800_000_000.0)
    registry = load_registry(base_settings, path)
    assert registry.active() == []
    assert "noise-1" not in acl_file(registry, "city", reader=BRIDGE_ACCOUNT)
    with pytest.raises(ConfigError, match="'noise-1' was revoked"):
        revoke_device(base_settings, path, "noise-1")
    with pytest.raises(ConfigError, match="'noise-1' is already revoked"):
        add_device(base_settings, path, "noise-1", district="harbour", kind="noise")
    with pytest.raises(ConfigError, match="'ghost' is not a registered device"):
        rotate_device(base_settings, path, "ghost")


def test_the_acl_grants_each_device_its_own_topic_only(base_settings: Settings,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    add_device(base_settings, path, "a", district="old-town", kind="pm25")
    add_device(base_settings, path, "b", district="harbour", kind="noise")
    text = acl_file(load_registry(base_settings, path), "city", reader="br", gateway="gw")
    blocks = [block.splitlines() for block in text.split("\n\n")[1:]]
    assert blocks == [
        ["user br", "topic read city/#"],
        ["user gw", "topic write city/#"],
        ["user a", "topic write city/old-town/pm25/a", "topic write city/-/pm25/a"],
        ["user b", "topic write city/harbour/noise/b", "topic write city/-/noise/b"],
    ]
    with pytest.raises(ValueError, match="'a' is also the name of a service account"):
        acl_file(load_registry(base_settings, path), "city", reader="a")


def test_cli_add_list_revoke_export(tmp_path: Path) -> None:
    registry = tmp_path / "devices.yaml"
    common = ["--config", str(CONFIG), "--registry", str(registry)]
    runner = CliRunner()
    added = runner.invoke(app, ["devices", "add", "pm25-ot-1", "--district", "old-town",
                                "--kind", "pm25", "--json", *common])
    assert added.exit_code == 0, added.output
    secret = orjson.loads(added.stdout)
    assert secret["topic"] == "city/old-town/pm25/pm25-ot-1"
    assert secret["password"] not in registry.read_text()

    bad = runner.invoke(app, ["devices", "add", "x", "--district", "nowhere", "--kind", "pm25",
                              *common])
    assert bad.exit_code == 1
    assert "devices[1].district: 'nowhere' is not a district id" in bad.stderr

    assert runner.invoke(app, ["devices", "revoke", "pm25-ot-1", *common]).exit_code == 0
    listed = runner.invoke(app, ["devices", "list", "--json", *common])
    [row] = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["state"]) == ("pm25-ot-1", "revoked")

    files = ["--passwd", str(tmp_path / "passwd"), "--acl", str(tmp_path / "acl")]
    refused = runner.invoke(app, ["devices", "export", *files, *common], env={
        "CITYHEART_MQTT_PASSWORD": None})
    assert refused.exit_code == 1
    assert "CITYHEART_MQTT_PASSWORD" in refused.stderr
    exported = runner.invoke(app, ["devices", "export", *files, *common], env={
        "CITYHEART_MQTT_PASSWORD": "bridge-secret", "CITYHEART_MQTT_GATEWAY_PASSWORD": None})
    assert exported.exit_code == 0, exported.output
    [line] = (tmp_path / "passwd").read_text().splitlines()  # the revoked device is left out
    user, hashed = line.split(":", 1)
    assert user == BRIDGE_ACCOUNT and check_password("bridge-secret", hashed)


# --- a real mosquitto with the generated files ----------------------------------------------


class Probe:
    """A real MQTT v5 client logged in as ``user``; keeps PUBACK/SUBACK codes and messages."""

    def __init__(self, url: str, user: str | None, password: str | None) -> None:
        self.client: MqttClient = new_client(url, f"{user}-{uuid.uuid4().hex[:6]}",
                                             username=user, password=password)
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.disconnected = threading.Event()
        self._changed = threading.Condition()
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.start(timeout=10)  # ConnectorError if the broker refuses us

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: ReasonCode,
                    props: Any) -> None:
        with self._changed:
            self.acks[mid] = reason
            self._changed.notify_all()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: list[ReasonCode],
                      props: Any) -> None:
        with self._changed:
            self.subacks[mid] = reasons
            self._changed.notify_all()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._changed:
            self.messages.append((message.topic, message.payload))
            self._changed.notify_all()

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(ready, timeout), f"no {what} within {timeout} s"

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1; the PUBACK's reason code."""
        mid = self.client.publish(topic, payload, qos=1).mid
        self._wait(lambda: mid in self.acks, f"PUBACK for {topic}")
        return self.acks[mid].value

    def subscribe(self, pattern: str) -> int:
        """Subscribe at QoS 1; the SUBACK's reason code."""
        _, mid = self.client.subscribe(pattern, qos=1)
        self._wait(lambda: mid in self.subacks, f"SUBACK for {pattern}")
        return self.subacks[mid][0].value

    def wait_for(self, payload: bytes) -> list[tuple[str, bytes]]:
        """Every message received up to and including ``payload``."""
        self._wait(lambda: any(p == payload for _, p in self.messages), f"message {payload!r}")
        return list(self.messages)

    def close(self) -> None:
        self.client.stop()


def refused(url: str, user: str | None, password: str | None) -> str:
    """The broker's reason for refusing this login (the test fails if it accepts it)."""
    with pytest.raises(ConnectorError, match="refused the connection") as caught:
        Probe(url, user, password).close()
    return str(caught.value)


@pytest.fixture
def city(base_settings: Settings, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """mosquitto started with the password file and ACL exported from a two-device registry."""
    registry = tmp_path / "devices.yaml"
    passwords = {
        "pm25-a": add_device(base_settings, registry, "pm25-a", district="old-town", kind="pm25"),
        "noise-b": add_device(base_settings, registry, "noise-b", district="harbour",
                              kind="noise"),
        BRIDGE_ACCOUNT: "bridge-secret",
    }
    files = {"passwd": tmp_path / "passwd", "acl": tmp_path / "acl"}
    export_files(base_settings, load_registry(base_settings, registry),
                 bridge_password="bridge-secret", **files)
    server = start_mqtt_broker(prefer="mosquitto", log_path=tmp_path / "mosquitto.log",
                               password_file=files["passwd"], acl_file=files["acl"])
    probes: list[Probe] = []

    def login(user: str | None, password: str | None = None) -> Probe:
        probe = Probe(server.url, user, passwords.get(user or "") if password is None else password)
        probes.append(probe)
        return probe

    try:
        yield SimpleNamespace(server=server, url=server.url, registry=registry, files=files,
                              passwords=passwords, login=login)
    finally:
        for probe in probes:
            probe.close()
        server.stop()


@pytest.mark.services
def test_a_device_publishes_on_its_own_topic_and_the_bridge_account_reads_it(
    city: SimpleNamespace,
) -> None:
    bridge = city.login(BRIDGE_ACCOUNT)
    assert bridge.subscribe("city/+/+/+") == 1  # granted QoS 1
    device = city.login("pm25-a")
    assert device.publish("city/old-town/pm25/pm25-a", b"17.2") == 0
    assert bridge.wait_for(b"17.2") == [("city/old-town/pm25/pm25-a", b"17.2")]


@pytest.mark.services
def test_a_device_cannot_publish_on_another_devices_topic_nor_read(
    city: SimpleNamespace,
) -> None:
    bridge = city.login(BRIDGE_ACCOUNT)
    assert bridge.subscribe("city/#") == 1
    device = city.login("pm25-a")
    assert device.publish("city/harbour/noise/noise-b", b"forged") == NOT_AUTHORIZED
    assert device.publish("city/old-town/pm25/pm25-x", b"made-up device") == NOT_AUTHORIZED
    device.subscribe("city/#")  # mosquitto grants it, then checks read access per message
    assert city.login("noise-b").publish("city/harbour/noise/noise-b", b"62") == 0
    assert device.publish("city/old-town/pm25/pm25-a", b"after") == 0  # still connected
    # in order from one publisher: once "after" arrived, the refused ones never will
    assert bridge.wait_for(b"after") == [
        ("city/harbour/noise/noise-b", b"62"), ("city/old-town/pm25/pm25-a", b"after")
    ]
    # "62" was routed before the device's PUBACK for "after" was sent: it would be here by now
    assert device.messages == []
    assert not device.disconnected.is_set()
    assert city.login(BRIDGE_ACCOUNT).publish("city/old-town/pm25/pm25-a", b"x") \
        == NOT_AUTHORIZED  # the bridge's account only reads


@pytest.mark.services
def test_logins_without_valid_credentials_are_refused_at_connect(city: SimpleNamespace) -> None:
    assert "Not authorized" in refused(city.url, None, None)
    assert "Not authorized" in refused(city.url, "pm25-a", "wrong")
    assert "Not authorized" in refused(city.url, "pm25-a", city.passwords["noise-b"])
    assert "Not authorized" in refused(city.url, "ghost", "anything")


@pytest.mark.services
def test_a_revoked_device_is_refused_after_export_and_reload(
    base_settings: Settings, city: SimpleNamespace
) -> None:
    bridge = city.login(BRIDGE_ACCOUNT)
    assert bridge.subscribe("city/#") == 1
    connected = city.login("pm25-a")  # works before
    revoke_device(base_settings, city.registry, "pm25-a")
    export_files(base_settings, load_registry(base_settings, city.registry),
                 bridge_password="bridge-secret", **city.files)
    reload_mqtt_auth(city.server, password_file=city.files["passwd"],
                     acl_file=city.files["acl"])
    def refused() -> bool:
        try:
            Probe(city.url, "pm25-a", city.passwords["pm25-a"]).close()
        except ConnectorError as exc:
            assert "Not authorized" in str(exc)
            return True
        return False

    # mosquitto reloads on SIGHUP shortly after
    wait_until(refused, 15, "the broker to refuse the revoked device (it still connects)")
    assert connected.disconnected.wait(10), "the revoked device's connection stays open"
    assert city.login("noise-b").publish("city/harbour/noise/noise-b", b"62") == 0
    assert bridge.wait_for(b"62")[-1] == ("city/harbour/noise/noise-b", b"62")


@pytest.mark.services
def test_up_starts_mosquitto_with_the_registry_and_logins_for_bridge_and_simulator(
    base_settings: Settings, tmp_path: Path
) -> None:
    mqtt = base_settings.mqtt
    settings = base_settings.model_copy(update={"mqtt": mqtt.model_copy(update={
        "url": f"mqtt://127.0.0.1:{free_port()}", "embedded_broker": "mosquitto",
        "device_auth": mqtt.device_auth.model_copy(update={"enabled": True}),
    })})
    config = tmp_path / "config.yaml"  # the registry is found next to it
    password = add_device(settings, tmp_path / "devices.yaml", "pm25-a",
                          district="old-town", kind="pm25")
    server, logins = start_authenticated_broker(settings, config)
    probes: list[Probe] = []
    try:
        def login(env: dict[str, str]) -> Probe:
            probes.append(Probe(server.url, env["CITYHEART_MQTT_USERNAME"],
                                env["CITYHEART_MQTT_PASSWORD"]))
            return probes[-1]

        bridge = login(logins["bridge"])
        assert logins["bridge"]["CITYHEART_MQTT_USERNAME"] == BRIDGE_ACCOUNT
        assert bridge.subscribe("city/+/+/+") == 1
        gateway = login(logins["simulate"])
        assert gateway.publish("city/harbour/noise/noise-harbour-001", b"sim") == 0
        device = login({"CITYHEART_MQTT_USERNAME": "pm25-a", "CITYHEART_MQTT_PASSWORD": password})
        assert device.publish("city/old-town/pm25/pm25-a", b"real") == 0
        assert [p for _, p in bridge.wait_for(b"real")] == [b"sim", b"real"]
        assert "Not authorized" in refused(server.url, None, None)
    finally:
        for probe in probes:
            probe.close()
        server.stop()


@pytest.mark.timeout(120)
def test_the_bridge_logs_in_with_its_account_and_forwards_a_devices_reading(
    settings: Settings, city: SimpleNamespace
) -> None:
    mine = settings.model_copy(update={"mqtt": settings.mqtt.model_copy(update={
        "url": city.url, "topic_prefix": "city", "username": BRIDGE_ACCOUNT,
        "password": SecretStr("bridge-secret")})})
    bridge = Bridge(mine)
    stop = threading.Event()
    bridge.start()
    server = threading.Thread(target=bridge.serve, args=(stop,), daemon=True)
    server.start()
    try:
        payload = orjson.dumps({"device_id": "pm25-a", "kind": "pm25", "value": 17.5,
                                "unit": "ug/m3", "ts": iso(time.time()), "seq": 1})
        assert city.login("pm25-a").publish("city/old-town/pm25/pm25-a", payload) == 0
        [reading] = consume_readings(mine.kafka.bootstrap, mine.kafka.topics.readings, 1)
        assert (reading.device_id, reading.value) == ("pm25-a", 17.5)
    finally:
        stop.set()
        server.join(10)
        bridge.stop()
    no_password = mine.model_copy(update={"mqtt": mine.mqtt.model_copy(update={
        "username": None, "password": None})})
    with pytest.raises(ConnectorError, match="Not authorized"):
        Bridge(no_password).start(timeout=5)


def test_up_gives_each_component_its_own_login(tmp_path: Path) -> None:
    supervisor = Supervisor(env={**os.environ, "CITYHEART_MQTT_USERNAME": "shared"},
                            log_dir=tmp_path)
    supervisor.component_env["bridge"] = {"CITYHEART_MQTT_USERNAME": BRIDGE_ACCOUNT}
    show = "import os; print(os.environ['CITYHEART_MQTT_USERNAME'])"
    for name in ("bridge", "flow"):
        supervisor.add(name, [sys.executable, "-c", show])
    for component in supervisor.components:
        assert component.child is not None
        assert component.child.process.wait(30) == 0
    assert (tmp_path / "bridge.log").read_text().strip() == BRIDGE_ACCOUNT
    assert (tmp_path / "flow.log").read_text().strip() == "shared"


def test_registry_file_is_plain_yaml(base_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    add_device(base_settings, path, "co-1", district="airport-west", kind="co")
    [entry] = yaml.safe_load(path.read_text())["devices"]
    assert set(entry) == {"id", "district", "kind", "password_hash", "added_at", "revoked_at"}
    assert entry["password_hash"].startswith("$7$101$")
