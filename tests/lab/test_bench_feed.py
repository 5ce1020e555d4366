"""``cityheart bench --feed-clients``: the pieces that decide its figures.

The load clients parse frames by hand, so they must read exactly what the feed's fan-out
writes (every length encoding, frames split across reads); and "missing" must count a message
one client got and another did not.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.feed.fanout import text_frame
from lab.bench_feed import _missing, run_feed_bench
from lab.feed_load import _count, _frames, _Tally, data_fields


def test_the_load_clients_read_every_frame_the_fan_out_writes_even_split_across_reads() -> None:
    payloads = [b"{}", b"x" * 125, b"y" * 126, b"z" * 70_000, b'{"type":"vital","seq":7}']
    stream = b"".join(text_frame(p) for p in payloads)
    buffer, got = bytearray(), []
    for start in range(0, len(stream), 1000):  # as reads of 1,000 bytes deliver it
        buffer += stream[start : start + 1000]
        got += _frames(buffer)
    assert got == [(1, p) for p in payloads]
    assert buffer == bytearray()


def test_missing_counts_what_one_client_got_and_another_did_not() -> None:
    assert _missing([[1, 2, 3, 4], [2, 3, 4, 5]]) == 0  # windows differ only at their edges
    assert _missing([[1, 2, 3, 4], [1, 3, 4], [1, 2, 4]]) == 2
    assert _missing([[1, 2], []]) == 1  # a client that got nothing in the window


def test_the_bench_refuses_a_feed_off_loopback_and_unbounded_runs() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run_feed_bench("ws://192.0.2.1:8765/feed", clients=[10])
    with pytest.raises(ValueError, match="clients must be"):
        run_feed_bench("ws://127.0.0.1:8765/feed", clients=[100_000])


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["vital", "indicator", "alert", "hello", "error", "heartbeat"]),
    seq=st.integers(min_value=0, max_value=10**12),
    extra=st.dictionaries(st.text(min_size=1, max_size=12), st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=False),
        st.text(max_size=20),
        st.dictionaries(st.sampled_from(["emitted_at", "seq", "value"]), st.text(max_size=8)),
    ), max_size=6),
    emitted=st.one_of(st.none(), st.just("2026-12-07T17:23:11.012Z")),
)
def test_the_load_clients_read_type_seq_and_emitted_at_as_json_would(
    kind: str, seq: int, extra: dict[str, object], emitted: str | None
) -> None:
    message: dict[str, object] = {"type": kind, "seq": seq}
    message.update({k: v for k, v in extra.items() if k not in ("type", "seq", "emitted_at")})
    if emitted is not None:
        message["emitted_at"] = emitted
    payload = orjson.dumps(message)
    fields = data_fields(payload)
    parsed = orjson.loads(payload)
    if fields is None:  # the clients parse it as JSON instead: nothing is read wrongly
        return
    own = parsed.get("emitted_at")
    assert fields == (parsed["type"], parsed["seq"], own if isinstance(own, str) else None)
    assert parsed["type"] in ("vital", "indicator", "alert")


def test_the_load_clients_read_the_feeds_own_messages_without_parsing_json() -> None:
    vital = (b'{"type":"vital","seq":1315,"time":"2026-12-07T17:23:11.080Z","district":"harbour",'
             b'"kind":"o3","mean":75.0,"emitted_at":"2026-12-07T17:23:11.012Z"}')
    assert data_fields(vital) == ("vital", 1315, "2026-12-07T17:23:11.012Z")
    assert data_fields(b'{"type":"heartbeat","time":"2026-12-07T17:23:11.080Z"}') is None


def test_a_counting_client_and_a_lag_reader_count_the_same_seqs_from_a_shared_buffer() -> None:
    messages = [{"type": "vital", "seq": 5, "emitted_at": "2026-12-07T17:23:11.012Z"},
                {"type": "alert", "seq": 6, "value": {"emitted_at": "x"}},  # parsed as JSON
                {"type": "heartbeat", "last_seq": 6}, {"type": "error", "error": "resync"},
                {"type": "indicator", "seq": 3, "emitted_at": "2026-12-07T17:23:11.000Z"}]
    buffer = bytearray(b"".join(text_frame(orjson.dumps(m)) for m in messages))
    spans, pos = [], 0
    for m in messages:  # each payload's place in the buffer, after its 2-byte header
        size = len(orjson.dumps(m))
        spans.append((pos + 2, pos + 2 + size))
        pos += 2 + size
    counted, read = _Tally(), _Tally()
    lags: list[float] = []
    errors: dict[str, int] = {}
    for start, end in spans:
        _count(buffer, start, end, 0.0, 4, counted, None, {}, errors)
        _count(buffer, start, end, 0.0, 4, read, lags, {}, errors)
    assert counted.seqs == read.seqs == [5, 6]  # seq 3 came before the subscription's live_from
    assert len(lags) == 1  # only the vital had its emitted_at last
    assert errors == {"resync": 2}


def test_a_batch_counts_as_the_messages_it_holds_for_counting_clients_and_lag_readers() -> None:
    from connectors.feed.protocol import batch_frame
    from lab.feed_load import _count_batch

    messages = [{"type": "vital", "seq": 4, "emitted_at": "2026-12-07T17:23:11.012Z"},
                {"type": "vital", "seq": 5, "emitted_at": "2026-12-07T17:23:11.012Z"},
                {"type": "alert", "seq": 6, "value": {"seq": 1},
                 "emitted_at": "2026-12-07T17:23:12.000Z"}]
    frame = batch_frame([orjson.dumps(m) for m in messages])
    buffer = bytearray(frame)
    start = 4 if frame[1] & 0x7F == 126 else 2
    counted, read = _Tally(), _Tally()
    lags: list[float] = []
    _count_batch(buffer, start, len(buffer), 0.0, 4, counted, None, {})
    _count_batch(buffer, start, len(buffer), 0.0, 4, read, lags, {})
    assert counted.seqs == []  # a counting client reads its batches after the window
    counted.settle()
    assert counted.seqs == read.seqs == [5, 6]  # seq 4 is not after the subscription's live_from
    assert len(lags) == 2
