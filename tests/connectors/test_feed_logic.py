"""The push feed's pure logic: requests, filters, numbering, backlog, resume, slow clients."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from connectors.feed.delivery import Deduper, Outbox
from connectors.feed.protocol import (
    FeedError,
    FeedLog,
    FeedMessage,
    Subscribe,
    Subscription,
    batch_frame,
    error_message,
    heartbeat_message,
    parse_request,
    text_frame,
)

T = "2026-11-26T08:00:00.000Z"
DISTRICTS = ["old-town", "riverside"]
KINDS = ["pm25", "noise"]


def vital(
    district: str = "old-town", kind: str = "pm25", end: int = 10, mean: float = 1.0
) -> bytes:
    return orjson.dumps(
        {
            "district": district,
            "kind": kind,
            "unit": "ug/m3",
            "window_start": f"2026-11-26T08:00:{end - 10:02d}.000Z",
            "window_end": f"2026-11-26T08:00:{end:02d}.000Z",
            "count": 3,
            "mean": mean,
            "min": mean,
            "max": mean,
            "last": mean,
            "devices": 2,
            "late": 0,
            "emitted_at": T,
        }
    )


def alert(alert_id: str = "a1", district: str = "old-town", kind: str = "pm25") -> bytes:
    return orjson.dumps(
        {
            "id": alert_id,
            "rule": "threshold",
            "district": district,
            "kind": kind,
            "severity": "critical",
            "value": 160.2,
            "threshold": 150.5,
            "direction": "above",
            "stat": "mean",
            "unit": "ug/m3",
            "window_start": T,
            "window_end": T,
            "ts": T,
            "emitted_at": T,
            "message": "PM2.5 is critical",
        }
    )


def body(message: FeedMessage) -> dict[str, Any]:
    return orjson.loads(message.payload)  # type: ignore[no-any-return]


# requests


def test_subscribe_op_parses_into_filters_and_since() -> None:
    request = parse_request(
        b'{"op": "subscribe", "channels": ["alerts"], "districts": ["old-town"],'
        b' "kinds": ["pm25", "noise"], "since": 41}',
        districts=DISTRICTS,
        kinds=KINDS,
    )
    assert request == Subscribe(
        Subscription(frozenset({"alerts"}), frozenset({"old-town"}), frozenset({"pm25", "noise"})),
        since=41,
    )


def test_batch_is_asked_for_and_off_by_default() -> None:
    assert parse_request('{"op": "subscribe", "batch": true}').subscription.batch is True
    assert parse_request('{"op": "subscribe"}').subscription.batch is False
    assert parse_request('{"op": "subscribe", "batch": true}').as_op()["batch"] is True


def test_a_batch_frame_holds_the_messages_as_they_were_serialised_in_seq_order() -> None:
    payloads = [orjson.dumps({"type": "vital", "seq": n, "district": "old-town"})
                for n in (7, 8, 9)]
    frame = batch_frame(payloads)
    assert frame[0] == 0x81  # one final text frame
    message = orjson.loads(frame[4:] if frame[1] & 0x7F == 126 else frame[2:])
    assert message == {"type": "batch", "messages": [orjson.loads(p) for p in payloads]}


def test_absent_or_empty_filters_mean_everything() -> None:
    assert parse_request('{"op": "subscribe"}') == Subscribe(Subscription(), None)
    request = parse_request('{"op": "subscribe", "channels": [], "districts": null, "since": null}')
    assert request == Subscribe(Subscription(), None)


@pytest.mark.parametrize(
    ("frame", "code", "named"),
    [
        ("{not json", "invalid_json", "JSON"),
        ('["subscribe"]', "not_an_object", "list"),
        ('{"op": "unsubscribe"}', "unknown_op", "'unsubscribe'"),
        ('{"channels": []}', "unknown_op", "None"),
        ('{"op": "subscribe", "district": ["old-town"]}', "unknown_field", "'district'"),
        ('{"op": "subscribe", "channels": "alerts"}', "wrong_type", "'channels'"),
        ('{"op": "subscribe", "kinds": ["pm25", 7]}', "wrong_type", "'kinds'"),
        ('{"op": "subscribe", "since": "12"}', "wrong_type", "'since'"),
        ('{"op": "subscribe", "since": -1}', "wrong_type", "'since'"),
        ('{"op": "subscribe", "since": true}', "wrong_type", "'since'"),
        ('{"op": "subscribe", "since": 1.5}', "wrong_type", "'since'"),
        ('{"op": "subscribe", "batch": "yes"}', "wrong_type", "'batch'"),
        ('{"op": "subscribe", "batch": 1}', "wrong_type", "'batch'"),
        ('{"op": "subscribe", "channels": ["vital"]}', "unknown_channel", "'vital'"),
        ('{"op": "subscribe", "districts": ["atlantis"]}', "unknown_district", "'atlantis'"),
        ('{"op": "subscribe", "kinds": ["pm26"]}', "unknown_kind", "'pm26'"),
    ],
)
def test_bad_requests_get_a_code_and_a_detail_naming_the_field(
    frame: str, code: str, named: str
) -> None:
    with pytest.raises(FeedError) as caught:
        parse_request(frame, districts=DISTRICTS, kinds=KINDS)
    assert caught.value.code == code
    assert named in caught.value.detail
    sent = orjson.loads(error_message(caught.value, time=T))
    assert sent == {"type": "error", "time": T, "error": code, "detail": caught.value.detail}


def test_ids_are_not_checked_when_no_known_ids_are_given() -> None:
    request = parse_request('{"op": "subscribe", "districts": ["atlantis"], "kinds": ["x"]}')
    assert request.subscription.districts == {"atlantis"}


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_frame_parses_or_raises_feed_error(frame: bytes | str) -> None:
    try:
        parse_request(frame, districts=DISTRICTS, kinds=KINDS)
    except FeedError:
        pass


def test_subscribe_round_trips_through_its_op() -> None:
    request = Subscribe(Subscription(frozenset({"vitals"}), frozenset(), frozenset({"pm25"})), 3)
    assert parse_request(orjson.dumps(request.as_op())) == request


# filters


@pytest.mark.parametrize(
    ("subscription", "wanted"),
    [
        (Subscription(), {"v-old-pm25", "v-old-noise", "v-river-pm25", "a-old-pm25"}),
        (Subscription(channels=frozenset({"alerts"})), {"a-old-pm25"}),
        (
            Subscription(channels=frozenset({"vitals"})),
            {"v-old-pm25", "v-old-noise", "v-river-pm25"},
        ),
        (
            Subscription(districts=frozenset({"old-town"})),
            {"v-old-pm25", "v-old-noise", "a-old-pm25"},
        ),
        (Subscription(kinds=frozenset({"pm25"})), {"v-old-pm25", "v-river-pm25", "a-old-pm25"}),
        (
            Subscription(frozenset({"vitals"}), frozenset({"old-town"}), frozenset({"pm25"})),
            {"v-old-pm25"},
        ),
        (Subscription(districts=frozenset({"harbour"})), set()),
    ],
)
def test_subscription_passes_only_what_every_filter_allows(
    subscription: Subscription, wanted: set[str]
) -> None:
    log = FeedLog(backlog=10)
    messages = {
        "v-old-pm25": log.append("vitals", vital("old-town", "pm25"), T),
        "v-old-noise": log.append("vitals", vital("old-town", "noise"), T),
        "v-river-pm25": log.append("vitals", vital("riverside", "pm25"), T),
        "a-old-pm25": log.append("alerts", alert("a1", "old-town", "pm25"), T),
    }
    assert {name for name, m in messages.items() if subscription.matches(m)} == wanted
    decoded = {name for name, m in messages.items() if subscription.matches(body(m))}
    assert decoded == wanted


# numbering and flattening


def test_records_become_numbered_flat_messages() -> None:
    log = FeedLog(backlog=10)
    first = log.append("vitals", vital(mean=18.5), "2026-11-26T08:00:11.000Z")
    second = log.append("alerts", alert("a9"), "2026-11-26T08:00:12.000Z")
    assert (first.seq, second.seq, log.last_seq) == (1, 2, 2)
    one = body(first)
    assert list(one)[:3] == ["type", "seq", "time"]
    assert one["type"] == "vital" and one["seq"] == 1 and one["time"] == "2026-11-26T08:00:11.000Z"
    assert one["district"] == "old-town" and one["kind"] == "pm25" and one["mean"] == 18.5
    assert one["window_end"] == "2026-11-26T08:00:10.000Z" and one["devices"] == 2
    two = body(second)
    assert (two["type"], two["id"], two["severity"], two["ts"]) == ("alert", "a9", "critical", T)


def test_record_fields_cannot_override_type_seq_or_time() -> None:
    log = FeedLog(backlog=10)
    value = orjson.dumps({"district": "d", "kind": "k", "type": "x", "seq": 99, "time": "then"})
    sent = body(log.append("vitals", value, T))
    assert (sent["type"], sent["seq"], sent["time"]) == ("vital", 1, T)


@pytest.mark.parametrize(
    "value",
    [b"not json", b"[1, 2]", b'{"kind": "pm25"}', b'{"district": "old-town", "kind": 7}'],
)
def test_bad_records_are_refused_without_using_a_seq(value: bytes) -> None:
    log = FeedLog(backlog=10)
    with pytest.raises(FeedError) as caught:
        log.append("vitals", value, T)
    assert caught.value.code == "invalid_record"
    assert log.append("vitals", vital(), T).seq == 1


def test_unknown_channel_is_refused() -> None:
    with pytest.raises(FeedError, match="'readings'"):
        FeedLog(backlog=10).append("readings", vital(), T)


# snapshot and resume


def test_snapshot_is_latest_vital_per_key_plus_recent_alerts_in_seq_order() -> None:
    log = FeedLog(backlog=100)
    log.append("vitals", vital("old-town", "pm25", 10), T)  # 1, superseded by 4
    log.append("vitals", vital("old-town", "noise", 10), T)  # 2
    log.append("alerts", alert("a1"), T)  # 3
    log.append("vitals", vital("old-town", "pm25", 20), T)  # 4
    log.append("alerts", alert("a2", "riverside"), T)  # 5
    assert [m.seq for m in log.replay_for(Subscription(), None)] == [2, 3, 4, 5]
    only_pm25 = Subscription(kinds=frozenset({"pm25"}))
    assert [m.seq for m in log.replay_for(only_pm25, None)] == [3, 4, 5]
    only_vitals = Subscription(channels=frozenset({"vitals"}))
    assert [m.seq for m in log.replay_for(only_vitals, None)] == [2, 4]


def indicator(district: str = "old-town", name: str = "noise", value: float = 55.0) -> bytes:
    from models.vitals.records import IndicatorRecord

    record = IndicatorRecord(district, name, value, "dBA", "within", 80.0, 1795680000.0,
                             1795680010.0, 12, 1.0, True)
    return orjson.dumps(record.record(emitted_at=1795680011.0))


def test_indicator_records_are_typed_indicator_filtered_and_snapshotted_apart() -> None:
    log = FeedLog(backlog=100)
    log.append("vitals", vital("old-town", "noise", 10), T)  # 1: the noise kind's window
    log.append("vitals", indicator("old-town", "noise", 50.0), T)  # 2, superseded by 4
    log.append("vitals", indicator("city", "aqi", 57.0), T)  # 3
    fourth = log.append("vitals", indicator("old-town", "noise", 61.0), T)  # 4
    sent = body(fourth)
    assert (sent["type"], sent["record"], sent["indicator"], sent["kind"]) == (
        "indicator", "indicator", "noise", "noise")
    assert (sent["value"], sent["level"], sent["confident"]) == (61.0, "within", True)
    assert [m.seq for m in log.replay_for(Subscription(), None)] == [1, 3, 4]
    city_aqi = Subscription(districts=frozenset({"city"}), kinds=frozenset({"aqi"}))
    assert [m.seq for m in log.replay_for(city_aqi, None)] == [3]
    assert Subscription(channels=frozenset({"vitals"})).matches(fourth)
    assert not Subscription(channels=frozenset({"alerts"})).matches(fourth)


def test_snapshot_keeps_a_quiet_key_after_it_left_the_backlog() -> None:
    log = FeedLog(backlog=3)
    log.append("vitals", vital("harbour", "rainfall"), T)  # 1: falls out of the backlog
    for n in range(5):
        log.append("alerts", alert(f"a{n}"), T)  # 2..6: only 4, 5, 6 stay
    assert [m.seq for m in log.replay_for(Subscription(), None)] == [1, 4, 5, 6]


def test_resume_returns_every_message_after_since_in_order() -> None:
    log = FeedLog(backlog=100)
    for end in range(10, 60, 10):
        log.append("vitals", vital("old-town", "pm25", end), T)  # same key: nothing coalesced
    log.append("alerts", alert(), T)
    assert [m.seq for m in log.replay_for(Subscription(), 2)] == [3, 4, 5, 6]
    assert log.replay_for(Subscription(), 6) == []
    alerts = Subscription(channels=frozenset({"alerts"}))
    assert [m.seq for m in log.replay_for(alerts, 0)] == [6]


def test_resume_at_the_edge_of_the_backlog_works_and_one_before_it_resyncs() -> None:
    log = FeedLog(backlog=4)
    for _ in range(10):
        log.append("alerts", alert(), T)  # backlog holds 7..10
    assert log.oldest_seq == 7
    assert [m.seq for m in log.replay_for(Subscription(), 6)] == [7, 8, 9, 10]
    with pytest.raises(FeedError) as caught:
        log.replay_for(Subscription(), 5)
    assert caught.value.code == "resync"
    assert "since=5" in caught.value.detail and "7" in caught.value.detail


def test_resume_from_a_seq_this_feed_never_reached_resyncs() -> None:
    log = FeedLog(backlog=10)
    log.append("alerts", alert(), T)
    with pytest.raises(FeedError) as caught:
        log.replay_for(Subscription(), 2)
    assert caught.value.code == "resync" and "ahead" in caught.value.detail


def test_empty_feed_resumes_from_zero_and_snapshots_nothing() -> None:
    log = FeedLog(backlog=10)
    assert log.replay_for(Subscription(), 0) == []
    assert log.replay_for(Subscription(), None) == []


def test_without_backlog_only_an_up_to_date_client_resumes() -> None:
    log = FeedLog(backlog=0)
    log.append("vitals", vital(), T)
    log.append("alerts", alert(), T)
    assert [m.seq for m in log.replay_for(Subscription(), None)] == [1]
    assert log.replay_for(Subscription(), 2) == []
    with pytest.raises(FeedError, match="resync"):
        log.replay_for(Subscription(), 1)


@given(
    st.integers(min_value=0, max_value=8),
    st.lists(st.sampled_from(["vitals", "alerts"]), max_size=20),
    st.integers(min_value=0, max_value=25),
)
def test_resume_is_all_or_resync(backlog: int, channels: list[str], since: int) -> None:
    log = FeedLog(backlog=backlog)
    for n, channel in enumerate(channels):
        log.append(channel, vital(end=n) if channel == "vitals" else alert(f"a{n}"), T)
    try:
        replay = log.replay_for(Subscription(), since)
    except FeedError as exc:
        assert exc.code == "resync"
        assert since > len(channels) or since < len(channels) - backlog
    else:
        assert [m.seq for m in replay] == list(range(since + 1, len(channels) + 1))


# slow clients


def live(log: FeedLog, *records: tuple[str, bytes]) -> list[FeedMessage]:
    return [log.append(channel, value, T) for channel, value in records]


def drain(outbox: Outbox) -> list[dict[str, Any]]:
    sent = []
    while (payload := outbox.pop()) is not None:
        sent.append(orjson.loads(payload))
    return sent


def test_outbox_delivers_everything_in_order_while_the_client_keeps_up() -> None:
    log, outbox = FeedLog(backlog=100), Outbox(limit=3)
    for message in live(log, *[("vitals", vital(end=e)) for e in (10, 20, 30)]):
        assert outbox.push(message)
    assert [m["seq"] for m in drain(outbox)] == [1, 2, 3]


def test_full_outbox_coalesces_vitals_to_the_latest_per_key_keeping_seq_order() -> None:
    log, outbox = FeedLog(backlog=100), Outbox(limit=3)
    messages = live(
        log,
        ("vitals", vital("old-town", "pm25", 10)),  # 1
        ("vitals", vital("old-town", "noise", 10)),  # 2
        ("alerts", alert("a1")),  # 3: full now
        ("vitals", vital("old-town", "pm25", 20)),  # 4 replaces 1
        ("vitals", vital("old-town", "pm25", 30)),  # 5 replaces 4
    )
    assert all(outbox.push(m) for m in messages)
    assert outbox.coalesced == 2
    sent = drain(outbox)
    assert [m["seq"] for m in sent] == [2, 3, 5]
    assert sent[-1]["window_end"].endswith(":30.000Z")


def test_alert_that_does_not_fit_overflows_the_outbox() -> None:
    log, outbox = FeedLog(backlog=100), Outbox(limit=2)
    first, second, third, fourth = live(
        log,
        ("alerts", alert("a1")),
        ("alerts", alert("a2")),
        ("alerts", alert("a3")),
        ("vitals", vital()),
    )
    assert outbox.push(first) and outbox.push(second)
    assert not outbox.push(third)
    assert outbox.overflowed and len(outbox) == 0
    assert not outbox.push(fourth)


def test_vital_of_a_new_key_that_does_not_fit_overflows_too() -> None:
    log, outbox = FeedLog(backlog=100), Outbox(limit=1)
    first, second = live(log, ("vitals", vital("old-town")), ("vitals", vital("riverside")))
    assert outbox.push(first)
    assert not outbox.push(second)
    assert outbox.overflowed


def test_replay_does_not_count_against_the_limit() -> None:
    log, outbox = FeedLog(backlog=100), Outbox(limit=2)
    replay = live(log, *[("alerts", alert(f"a{n}")) for n in range(5)])
    outbox.extend(replay)
    after = live(log, ("alerts", alert("b1")), ("alerts", alert("b2")))
    assert all(outbox.push(m) for m in after)
    assert [m["seq"] for m in drain(outbox)] == [1, 2, 3, 4, 5, 6, 7]
    assert not outbox.overflowed


def test_newer_heartbeat_replaces_a_queued_one_and_goes_last() -> None:
    log, outbox = FeedLog(backlog=100), Outbox(limit=10)
    outbox.push_control(heartbeat_message(last_seq=0, time=T), replace="heartbeat")
    outbox.push(live(log, ("alerts", alert()))[0])
    outbox.push_control(heartbeat_message(last_seq=1, time=T), replace="heartbeat")
    sent = drain(outbox)
    assert [(m["type"], m.get("last_seq")) for m in sent] == [("alert", None), ("heartbeat", 1)]


def unframe(stream: bytes) -> list[dict[str, Any]]:
    """The JSON of each server (unmasked) text frame in ``stream``, checked frame by frame."""
    messages, pos = [], 0
    while pos < len(stream):
        assert stream[pos] == 0x81  # FIN, text
        size, pos = stream[pos + 1], pos + 2
        if size == 126:
            size, pos = int.from_bytes(stream[pos : pos + 2], "big"), pos + 2
        messages.append(orjson.loads(stream[pos : pos + size]))
        pos += size
    return messages


def test_outbox_takes_queued_messages_as_one_write_of_frames_in_order() -> None:
    log, outbox = FeedLog(backlog=100), Outbox(limit=10)
    outbox.extend(live(log, *[("alerts", alert(f"a{n}")) for n in range(3)]))
    outbox.push_control(heartbeat_message(last_seq=3, time=T), replace="heartbeat")
    outbox.push(live(log, ("vitals", vital()))[0])
    frames, count = outbox.take(1_000_000)
    assert count == 5 and len(outbox) == 0
    assert [(m["type"], m.get("seq")) for m in unframe(frames)] == [
        ("alert", 1), ("alert", 2), ("alert", 3), ("heartbeat", None), ("vital", 4)]
    assert outbox.take(1_000_000) == (b"", 0)


def test_outbox_take_stops_at_the_byte_budget_but_always_takes_one() -> None:
    log, outbox = FeedLog(backlog=100), Outbox(limit=10)
    messages = live(log, *[("alerts", alert(f"a{n}")) for n in range(4)])
    outbox.extend(messages)
    one = len(messages[0].frame)
    first, count = outbox.take(1)
    assert count == 1 and [m["seq"] for m in unframe(first)] == [1]
    rest, count = outbox.take(2 * one)
    assert count == 2 and [m["seq"] for m in unframe(rest)] == [2, 3]
    assert len(outbox) == 1


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_text_frame_is_what_websockets_sends_for_that_text(size: int) -> None:
    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_a_message_carries_its_frame_and_a_masked_copy_its_own() -> None:
    message = FeedLog(backlog=10).append("alerts", alert(), T)
    assert message.frame == text_frame(message.payload)
    masked = dataclasses.replace(message, payload=b'{"type":"alert","seq":1}')
    assert masked.frame == text_frame(b'{"type":"alert","seq":1}')


def test_outbox_needs_room_for_one_message() -> None:
    with pytest.raises(ValueError, match="0"):
        Outbox(limit=0)


# client-side dedupe after a feed restart


def test_deduper_drops_seen_alerts_and_vitals_that_are_not_newer() -> None:
    log = FeedLog(backlog=100)
    first = [body(m) for m in live(log, ("vitals", vital(end=20)), ("alerts", alert("a1")))]
    dedupe = Deduper()
    assert all(dedupe.fresh(m) for m in first)
    again = FeedLog(backlog=100)  # a restarted feed: same records, new seqs
    replayed = live(
        again,
        ("vitals", vital(end=10)),
        ("vitals", vital(end=20)),
        ("alerts", alert("a1")),
        ("vitals", vital(end=30)),
        ("alerts", alert("a2")),
    )
    assert [m.seq for m in replayed if dedupe.fresh(body(m))] == [4, 5]


def test_deduper_forgets_old_alert_ids_beyond_its_memory() -> None:
    dedupe = Deduper(remember=2)
    for alert_id in ("a1", "a2", "a3"):
        assert dedupe.fresh({"type": "alert", "id": alert_id})
    assert not dedupe.fresh({"type": "alert", "id": "a3"})
    assert dedupe.fresh({"type": "alert", "id": "a1"})
