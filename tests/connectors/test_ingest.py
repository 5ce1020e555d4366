"""HTTP ingest against real servers: readings POSTed with a source's key reach Kafka and, through
the recorder, PostgreSQL; refused ones are listed and dead-lettered; a retry stores nothing twice;
413, 429 and 401 are clear."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import psycopg
import pytest

from cityheart.runtime.servers import spawn
from connectors.ingest.keys import new_key, save_keys
from connectors.ingest.server import IngestServer
from connectors.storage import Storage
from connectors.storage.options import StorageOptions
from models.timefmt import iso
from settings.config import Settings
from tests.support.config import write_config
from tests.support.kafka import consume_all, consume_until
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)


def post(url: str, body: bytes, token: str | None, content_type: str = "application/json",
         **headers: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, orjson.loads(answer.read()), _lower(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), _lower(exc.headers)


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def reading(n: int, *, device: str = "det-1", kind: str = "traffic_speed", value: float = 50.0,
            unit: str = "km/h", district: str = "harbour", seq: int | None = None) -> dict:
    record = {"device_id": device, "district": district, "kind": kind, "value": value,
              "unit": unit, "ts": iso(time.time() - 60 + n)}
    if seq is not None:
        record["seq"] = seq
    return record


@pytest.fixture
def ingest(settings: Settings, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The ingest server on a free port, with one key for devices det-* sending traffic_speed."""
    limits = settings.ingest.model_copy(update={
        "port": 0, "max_body_bytes": 20_000, "max_records": 50, "per_source_per_s": 1.0,
        "burst": 60})
    settings = settings.model_copy(update={"ingest": limits})
    key, token = new_key("traffic-authority", devices=["det-*"], kinds=["traffic_speed"])
    path = tmp_path / "ingest-keys.yaml"
    save_keys(path, [key])
    with IngestServer(settings, keys_path=path) as server:
        yield SimpleNamespace(url=server.url, token=token, settings=settings, keys=path)


def test_readings_posted_reach_postgres_through_kafka_and_the_recorder_once(
    ingest: SimpleNamespace, database_url: str, tmp_path: Path,
) -> None:
    settings, url = ingest.settings, ingest.url
    Storage.open(StorageOptions(url=database_url)).close()
    config = write_config(settings, tmp_path / "config.yaml")
    recorder = spawn("recorder", [sys.executable, "-m", "cityheart", "recorder", "--config",
                                  str(config)],
                     env={**os.environ, "CITYHEART_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
                          "CITYHEART_DATABASE_URL": database_url},
                     log_path=tmp_path / "recorder.log")
    try:
        body = orjson.dumps([
            reading(0, seq=1), reading(1, seq=2), reading(2, value=30.0, unit="mph"),
            reading(3, value=900.0),                      # out of range
            reading(4, kind="pm25", unit="ug/m3"),        # a kind this key may not send
            reading(5, device="cam-9"),                   # a device this key may not send
            {"device_id": "det-1"},                       # fields missing
        ])
        status, answer, _ = post(url, body, ingest.token, Idempotency_Key="batch-1")
        assert status == 202, answer
        assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (3, 0, 4)
        assert [(r["index"], r["reason"]) for r in answer["rejections"]] == [
            (3, "out_of_range"), (4, "not_allowed"), (5, "not_allowed"), (6, "missing_field")]
        assert "pm25" in answer["rejections"][1]["detail"]

        # answered after Kafka confirmed: the records are there when the answer is
        topics = settings.kafka.topics
        readings = consume_all(settings.kafka.bootstrap, topics.readings, 3, timeout=10)
        letters = consume_all(settings.kafka.bootstrap, topics.dead_letter, 4, timeout=10)
        assert len(readings) == 3
        assert sorted(dict(m.headers())["reason"].decode() for m in letters) == [
            "missing_field", "not_allowed", "not_allowed", "out_of_range"]
        assert {dict(m.headers())["source"] for m in letters} == {b"ingest"}
        assert {m.key() for m in letters} == {b"ingest/traffic-authority"}
        values = sorted(orjson.loads(m.value())["value"] for m in readings)
        assert values == [pytest.approx(30 * 1.609344), 50.0, 50.0]  # mph converted

        # a retry with the same key gets the same answer and produces nothing
        again, replayed, headers = post(url, body, ingest.token, Idempotency_Key="batch-1")
        assert (again, replayed) == (status, answer)
        assert headers.get("idempotent-replayed") == "true"
        # the same readings under another key: the (device, seq) ones are duplicates
        status, second, _ = post(url, orjson.dumps([reading(0, seq=1), reading(1, seq=2)]),
                                 ingest.token)
        assert (status, second["accepted"], second["duplicates"]) == (202, 0, 2)

        def stored() -> int:
            with psycopg.connect(database_url) as conn:
                return conn.execute("SELECT count(*) FROM readings").fetchone()[0]

        wait_until(lambda: stored() == 3, 60, lambda: f"3 readings stored, not {stored()}",
                   every=0.2)
        later = consume_until(settings.kafka.bootstrap, topics.readings,
                              lambda records: len(records) > 3, timeout=2)
        assert len(later) == 3, "a retried request produced again"
    finally:
        recorder.stop()


def test_no_key_an_unknown_key_or_a_revoked_key_is_refused(ingest: SimpleNamespace) -> None:
    body = orjson.dumps(reading(0))
    status, answer, headers = post(ingest.url, body, None)
    assert (status, answer["error"], headers.get("www-authenticate")) == (
        401, "unauthorized", "Bearer")
    assert post(ingest.url, body, ingest.token + "x")[0] == 401
    assert post(ingest.url, body, "chk_00000000_nope")[0] == 401
    assert post(ingest.url, body, ingest.token)[0] == 202
    save_keys(ingest.keys, [])  # revoked: the server reads the file again within a second
    wait_until(lambda: post(ingest.url, body, ingest.token)[0] == 401, 10,
               "the revoked key refused", every=0.3)


def test_limits_answer_413_and_429_and_store_nothing(ingest: SimpleNamespace) -> None:
    url, token = ingest.url, ingest.token
    status, answer, _ = post(url, b"[" + b" " * 20_001 + b"]", token)
    assert (status, answer["error"]) == (413, "too_large")
    assert "ingest.max_body_bytes" in answer["detail"]
    status, answer, _ = post(url, orjson.dumps([reading(n) for n in range(51)]), token)
    assert (status, answer["error"]) == (413, "too_many_records")
    # burst 60 readings, then 1 a second: 50 pass, the next 50 do not
    assert post(url, orjson.dumps([reading(n) for n in range(50)]), token)[0] == 202
    status, answer, headers = post(url, orjson.dumps([reading(n) for n in range(50)]), token)
    assert (status, answer["error"]) == (429, "rate_limited")
    assert int(headers["retry-after"]) >= 1
    status, answer, _ = post(url, b"device_id,value\n", token, "text/plain")
    assert (status, answer["error"]) == (415, "unsupported_media_type")
    topics = ingest.settings.kafka.topics
    readings = consume_until(ingest.settings.kafka.bootstrap, topics.readings,
                             lambda records: len(records) > 50, timeout=3)
    assert len(readings) == 50


def test_csv_senml_and_bodies_that_are_no_json_are_answered_per_record(
    ingest: SimpleNamespace,
) -> None:
    now = time.time() - 30
    csv = (f"device_id,district,kind,value,unit,ts\n"
           f"det-2,harbour,traffic_speed,42.5,km/h,{iso(now)}\n"
           f"det-2,harbour,traffic_speed,fast,km/h,{iso(now + 1)}\n"
           f"det-2,harbour,traffic_speed\n"
           f"det-2,atlantis,traffic_speed,40,km/h,{iso(now + 2)}\n").encode()
    status, answer, _ = post(ingest.url, csv, ingest.token, "text/csv")
    assert status == 202, answer
    assert answer["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in answer["rejections"]] == [
        (1, "wrong_type"), (2, "bad_row"), (3, "unknown_district")]
    status, answer, _ = post(ingest.url, b"{not json", ingest.token)
    assert (status, answer["error"], answer["rejected"]) == (400, "invalid_json", 1)
    pack = orjson.dumps([
        {"bn": "harbour/traffic_speed/", "bt": now, "bu": "km/h", "n": "det-3", "v": 61.0},
        {"n": "det-4", "t": 1, "v": 20.0, "u": "m/s"},
        {"n": "det-5", "t": 2, "v": 1e6},
        {"n": "cam-1", "t": 3, "v": 40.0},
    ])
    status, answer, _ = post(ingest.url, pack, ingest.token, "application/senml+json")
    assert status == 202, answer
    assert answer["accepted"] == 2
    assert [(r["index"], r["reason"]) for r in answer["rejections"]] == [
        (2, "out_of_range"), (3, "not_allowed")]
    letters = consume_all(ingest.settings.kafka.bootstrap,
                          ingest.settings.kafka.topics.dead_letter, 6, timeout=10)
    assert b"{not json" in [m.value() for m in letters]
    readings = consume_all(ingest.settings.kafka.bootstrap,
                           ingest.settings.kafka.topics.readings, 3, timeout=10)
    assert sorted(orjson.loads(m.value())["value"] for m in readings) == [42.5, 61.0, 72.0]


@pytest.mark.services
def test_kafka_away_is_a_503_and_the_same_idempotency_key_may_be_tried_again(
    base_settings: Settings, tmp_path: Path,
) -> None:
    from cityheart.runtime.servers import free_port

    nowhere = base_settings.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})
    limits = base_settings.ingest.model_copy(update={"port": 0, "delivery_timeout_s": 1.5})
    settings = base_settings.model_copy(update={"kafka": nowhere, "ingest": limits})
    key, token = new_key("lab")
    save_keys(tmp_path / "keys.yaml", [key])
    with IngestServer(settings, keys_path=tmp_path / "keys.yaml") as server:
        body = orjson.dumps(reading(0))
        for _ in range(2):  # a 503 is not kept: the retry is tried, and answered 503 again
            status, answer, headers = post(server.url, body, token, Idempotency_Key="k")
            assert (status, answer["error"], headers.get("retry-after")) == (
                503, "unavailable", "5")
            assert "retry with the same Idempotency-Key" in answer["detail"]
