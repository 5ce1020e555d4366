"""``cityheart bench --feed-clients``: the pieces that decide its figures.

The load clients parse frames by hand, so they must read exactly what the feed's fan-out
writes (every length encoding, frames split across reads); and "missing" must count a message
one client got and another did not.
"""

from __future__ import annotations

import pytest

from connectors.feed.fanout import text_frame
from lab.bench_feed import _missing, run_feed_bench
from lab.feed_load import _frames


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
