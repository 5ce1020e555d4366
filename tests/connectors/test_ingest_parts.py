"""The HTTP ingest's pure parts: source keys, request bodies and the idempotency memories."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from connectors.ingest.bodies import BodyError, decode_body
from connectors.ingest.intake import AnswerMemory, SeqMemory
from connectors.ingest.keys import KeyRing, KeysFile, load_keys, new_key, save_keys


def test_a_token_is_checked_against_its_hash_and_its_scope(tmp_path: Path) -> None:
    key, token = new_key("traffic", devices=["det-*"], kinds=["traffic_speed"])
    path = tmp_path / "keys.yaml"
    save_keys(path, [key])
    assert token not in path.read_text()  # only the hash is kept
    assert path.stat().st_mode & 0o777 == 0o600
    ring = KeyRing(load_keys(path))
    assert ring.authenticate(token) == key
    for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), token.split("_")[0],
                   "", "Bearer " + token, "chk_ffffffff_" + token.rsplit("_", 1)[1]):
        assert ring.authenticate(forged) is None, forged
    assert key.refusal("det-4", "traffic_speed", "harbour") is None
    assert "device 'cam-1'" in (key.refusal("cam-1", "traffic_speed", "harbour") or "")
    assert "kind 'pm25'" in (key.refusal("det-4", "pm25", "harbour") or "")


def test_the_keys_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    first, first_token = new_key("a")
    save_keys(path, [first])
    keys = KeysFile(path, check_s=1.0)
    assert keys.current(0.0).authenticate(first_token) == first
    second, second_token = new_key("b")
    save_keys(path, [second])
    assert keys.current(0.5).authenticate(second_token) is None  # checked at most once a second
    ring = keys.current(10.0)
    assert ring.authenticate(second_token) == second
    assert ring.authenticate(first_token) is None
    path.write_text("keys: [{id: x}]\n")  # broken: the keys in force stay
    assert keys.current(20.0).authenticate(second_token) == second


def test_json_and_csv_bodies_give_one_item_a_record() -> None:
    items = decode_body("application/json; charset=utf-8", b'[{"a": 1}, 7, {"b": 2}]')
    assert [(i.index, i.error.reason if i.error else None) for i in items] == [
        (0, None), (1, "not_an_object"), (2, None)]
    assert len(decode_body(None, b'{"device_id": "x"}')) == 1
    csv = b"device_id,value,seq\nd-1,4.5,3\nd-2,x\nd-3,,\n"
    items = decode_body("text/csv", csv)
    assert orjson.loads(items[0].payload) == {"device_id": "d-1", "value": 4.5, "seq": 3}
    assert (items[1].error.reason, items[1].payload) == ("bad_row", b"d-2,x")
    assert orjson.loads(items[2].payload) == {"device_id": "d-3"}  # empty cells are missing


@pytest.mark.parametrize(("content_type", "body", "status", "reason"), [
    ("application/json", b"{nope", 400, "invalid_json"),
    ("application/json", b"42", 400, "not_an_object"),
    ("text/csv", b"device,colour\nx,red\n", 400, "bad_row"),
    ("application/xml", b"<r/>", 415, "unsupported_media_type"),
])
def test_a_body_that_holds_no_records_is_refused_whole(content_type: str, body: bytes,
                                                       status: int, reason: str) -> None:
    with pytest.raises(BodyError) as caught:
        decode_body(content_type, body)
    assert (caught.value.status, caught.value.reason) == (status, reason)


def test_answers_are_kept_per_source_and_key_and_refuse_another_body() -> None:
    memory = AnswerMemory(ttl_s=60, size=2)
    assert memory.begin("a", "k1", b"body", 0.0) is None
    assert memory.begin("a", "k1", b"body", 1.0)[0] == 409  # the first is under way
    assert memory.begin("b", "k1", b"body", 1.0) is None   # another source's key
    memory.finish("a", "k1", (202, {"accepted": 1}))
    assert memory.begin("a", "k1", b"body", 2.0) == (202, {"accepted": 1})
    assert memory.begin("a", "k1", b"other", 2.0)[0] == 422
    memory.finish("b", "k1", None)  # failed (503): may be tried again
    assert memory.begin("b", "k1", b"body", 3.0) is None
    assert memory.begin("a", "k1", b"body", 61.0) is None  # expired


def test_the_seq_memory_forgets_the_oldest() -> None:
    seqs = SeqMemory(2)
    for seq in (1, 2, 3):
        seqs.add(("d", "k", seq))
    assert ("d", "k", 1) not in seqs
    assert ("d", "k", 3) in seqs
