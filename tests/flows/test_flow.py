"""The city dataflow on bytewax's TestingSource/TestingSink with an injected clock (no Kafka)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.kafka import KafkaRecord
from flows.city import build_from_config
from models.readings import Reading, encode
from settings.config import Settings
from tests.support import write_config
from tests.support.flow import FlowOutputs, batch_record, run_flow
from tests.support.flow import reading_record as msg

pytestmark = pytest.mark.timeout(60)


T = 1_795_669_200.0  # 2026-11-26T05:00:00Z; windows are 10 s, the late allowance 1 s
NOW = T + 120.0  # the injected wall clock: stands still, so event time alone moves watermarks


def run(settings: Settings, items: list, *, batch_size: int = 1,
        now: float = NOW) -> FlowOutputs:
    return run_flow(settings, items, batch_size=batch_size, clock=lambda: now)


def test_vitals_per_district_kind_and_window_with_exact_statistics(base_settings) -> None:
    out = run(base_settings, [
        msg(T + 1, 10.0, device="a"),
        msg(T + 2, 30.0, device="b"),
        msg(T + 3, 20.0, device="a", district="old-town"),
        msg(T + 4, 50.0, device="a"),
        msg(T + 12, 7.0, device="a"),
    ])
    assert sorted(out.vital_keys) == [b"harbour/pm25", b"harbour/pm25", b"old-town/pm25"]
    by_window = {(v["district"], v["window_start"][-10:]): v for v in out.vitals}
    first = by_window["harbour", "00:00.000Z"]
    assert first == {
        "district": "harbour", "kind": "pm25", "unit": "ug/m3",
        "window_start": "2026-11-26T05:00:00.000Z", "window_end": "2026-11-26T05:00:10.000Z",
        "count": 3, "mean": 30.0, "min": 10.0, "max": 50.0, "last": 50.0, "devices": 2,
        "late": 0, "emitted_at": "2026-11-26T05:02:00.000Z",
    }
    other = by_window["old-town", "00:00.000Z"]
    assert (other["count"], other["mean"]) == (1, 20.0)
    assert by_window["harbour", "00:10.000Z"]["count"] == 1
    assert out.alerts == [] and out.dead == []


def test_out_of_order_readings_within_the_allowance_count_in_their_window(base_settings) -> None:
    out = run(base_settings, [
        msg(T + 1, 10.0),
        msg(T + 10.5, 40.0),   # watermark T+9.5: the first window is still open
        msg(T + 9.8, 20.0),    # out of order, within the 1 s allowance
        msg(T + 12, 50.0),     # watermark T+11: the first window closes
    ])
    first, second = out.vitals
    assert (first["count"], first["mean"], first["last"], first["late"]) == (2, 15.0, 20.0, 0)
    assert (second["count"], second["mean"], second["late"]) == (2, 45.0, 0)


def test_a_batch_is_judged_in_event_time_order(base_settings) -> None:
    # in one batch the newer reading comes first; it must not make the older one late
    out = run(base_settings, [msg(T + 12, 50.0), msg(T + 9, 10.0)], batch_size=100)
    assert [(v["window_start"][-10:], v["count"], v["late"]) for v in out.vitals] == [
        ("00:00.000Z", 1, 0), ("00:10.000Z", 1, 0)]


def test_a_reading_beyond_the_allowance_is_counted_late_not_lost(base_settings) -> None:
    out = run(base_settings, [
        msg(T + 1, 10.0),
        msg(T + 12, 20.0),     # closes [T, T+10)
        msg(T + 5, 999.0),     # too late for the closed window
        msg(T + 13, 30.0),
        msg(T + 25, 40.0),     # closes [T+10, T+20): reports the late reading
    ])
    assert [(v["window_start"][-10:], v["count"], v["late"]) for v in out.vitals] == [
        ("00:00.000Z", 1, 0), ("00:10.000Z", 2, 1), ("00:20.000Z", 1, 0)]
    assert all(v["max"] < 999.0 for v in out.vitals), "the late value is not aggregated"
    assert out.alerts == [], "a late reading cannot raise an alert for a closed window"


def test_watermarks_are_per_district_and_kind(base_settings) -> None:
    out = run(base_settings, [
        msg(T + 1, 10.0),
        msg(T + 40, 20.0, district="old-town"),   # far ahead, but another key
        msg(T + 2, 30.0),                          # not late for harbour
    ])
    harbour = [v for v in out.vitals if v["district"] == "harbour"]
    assert [(v["count"], v["late"]) for v in harbour] == [(2, 0)]


def test_malformed_records_go_to_the_dead_letter_sink_and_the_rest_still_counts(
    base_settings,
) -> None:
    out = run(base_settings, [
        msg(T + 1, 10.0),
        KafkaRecord(b"pm-9", b"{not json"),
        msg(T + 2, 20.0, unit="grains"),
        msg(T + 3, 30.0),
        msg(NOW + 3600, 30.0),                     # an hour ahead of the injected clock
        msg(T + 12, 40.0),
    ], batch_size=2)
    assert [(v["count"], v["mean"]) for v in out.vitals] == [(2, 20.0), (1, 40.0)]
    reasons = [dict(r.headers) for r in out.dead]
    assert [h["reason"] for h in reasons] == [b"invalid_json", b"unknown_unit",
                                              b"future_timestamp"]
    bad_json = out.dead[0]
    assert (bad_json.key, bad_json.value) == (b"pm-9", b"{not json")
    assert reasons[0]["source"] == b"flow"
    assert reasons[0]["received_at"] == b"2026-11-26T05:02:00.000Z"
    assert b"not valid JSON" in reasons[0]["detail"]
    assert b"'grains'" in reasons[1]["detail"]
    assert b"3600 s ahead" in reasons[2]["detail"]


def test_a_batch_holding_a_bad_reading_refuses_that_one_alone(base_settings) -> None:
    good = [Reading("a", "harbour", "pm25", 10.0, "ug/m3", T + 1),
            Reading("b", "harbour", "pm25", 30.0, "ug/m3", T + 2)]
    ahead = Reading("c", "harbour", "pm25", 20.0, "ug/m3", NOW + 3600)   # ahead of the flow
    unknown = Reading("d", "atlantis", "pm25", 20.0, "ug/m3", T + 3)     # not in this city
    out = run(base_settings, [batch_record([good[0], ahead, unknown, good[1]]),
                              msg(T + 12, 40.0)])
    assert [(v["count"], v["mean"]) for v in out.vitals] == [(2, 20.0), (1, 40.0)]
    assert [dict(r.headers)["reason"] for r in out.dead] == [b"future_timestamp",
                                                             b"unknown_district"]
    # each dead letter is the refused reading alone, keyed by its device
    assert [(r.key, r.value) for r in out.dead] == [(b"c", encode(ahead)), (b"d", encode(unknown))]


def test_a_record_of_an_unknown_format_is_dead_lettered_whole(base_settings) -> None:
    future = b'{"v": 2, "readings": "elsewhere"}'
    out = run(base_settings, [msg(T + 1, 10.0), KafkaRecord(None, future), msg(T + 12, 40.0)])
    assert [v["count"] for v in out.vitals] == [1, 1]
    (dead,) = out.dead
    headers = dict(dead.headers)
    assert (dead.value, headers["reason"]) == (future, b"unknown_format")
    assert b"v=2 is not one of [1]" in headers["detail"]


def test_records_of_a_bridge_before_batches_still_count(base_settings) -> None:
    older = KafkaRecord(b"a", encode(Reading("a", "harbour", "pm25", 30.0, "ug/m3", T + 2)))
    out = run(base_settings, [msg(T + 1, 10.0), older, msg(T + 12, 40.0)])
    assert [(v["count"], v["mean"]) for v in out.vitals] == [(2, 20.0), (1, 40.0)]
    assert out.dead == []


def test_a_threshold_breach_produces_exactly_one_alert_with_its_fields(base_settings) -> None:
    out = run(base_settings, [
        msg(T + 1, 20.0, device="a", district="industrial-east"),
        msg(T + 2, 180.0, device="b", district="industrial-east"),   # mean 100: warning
        msg(T + 3, 190.0, device="c", district="industrial-east"),
        msg(T + 4, 150.0, device="a", district="industrial-east"),
        msg(T + 12, 20.0, device="a", district="industrial-east"),   # next window is calm
    ])
    (alert,) = out.alerts
    assert out.alert_keys == [alert["id"].encode()]
    assert alert == {
        "id": alert["id"],
        "rule": "pm25.threshold",
        "district": "industrial-east",
        "kind": "pm25",
        "severity": "warning",
        "value": 100.0,
        "threshold": 55.5,
        "direction": "above",
        "stat": "mean",
        "unit": "ug/m3",
        "window_start": "2026-11-26T05:00:00.000Z",
        "window_end": "2026-11-26T05:00:10.000Z",
        "ts": "2026-11-26T05:00:02.000Z",
        "emitted_at": "2026-11-26T05:02:00.000Z",
        "message": "PM2.5 mean 100.0 ug/m3 in industrial-east is above the warning level 55.5",
        "departments": ["environment-bureau"],   # routed as its incident will be
        "lat": 48.14, "lon": 11.625,             # a district-wide alert: its centroid
    }
    assert len(alert["id"]) == 20
    assert out.vitals[0]["mean"] == 135.0


def test_replaying_the_same_records_yields_the_same_alert_ids(base_settings) -> None:
    items = [msg(T + 1, 300.0, district="industrial-east"),
             msg(T + 14, 90.0, district="industrial-east")]
    first, second = run(base_settings, items), run(base_settings, items, now=NOW + 500)
    assert [a["id"] for a in first.alerts] == [a["id"] for a in second.alerts]
    assert [a["severity"] for a in first.alerts] == ["critical", "warning"]


def test_the_end_of_input_closes_every_open_window(base_settings) -> None:
    out = run(base_settings, [msg(T + 1, 10.0), msg(T + 2, 55.0, kind="noise", unit="dBA"),
                              msg(T + 3, 30.0)])
    assert sorted((v["kind"], v["count"]) for v in out.vitals) == [("noise", 1), ("pm25", 2)]


def test_the_flow_from_config_has_stable_step_ids(settings: Settings, tmp_path: Path) -> None:
    # ids name the steps in errors, metrics and recovery snapshots: renaming one breaks resumes;
    # building it asks the broker for the incidents topic's id (the identity of the event log)
    flow = build_from_config(str(write_config(settings, tmp_path / "config.yaml")))
    assert [step.step_name for step in flow.substeps] == [
        "read_incident_log", "read_readings", "parse_reading", "read_rejections",
        "decode_rejections", "merge_rejections", "detector_feedback", "merge_feedback",
        "split_refused", "key_by_district",
        "district_vitals", "split_city_facts", "city_facts", "key_city", "city_vitals",
        "merge_outputs", "split_vitals_alerts", "read_reports", "report_alerts", "merge_reports",
        "route_alerts", "read_commands", "tag_alerts",
        "decode_incident_log", "merge_incident_log", "decode_commands", "merge_commands",
        "key_by_incident_district", "incidents", "incident_events",
        "dead_letter_records", "write_dead_letters", "vital_records", "write_vitals",
        "alert_records", "write_alerts", "incident_records", "write_incidents",
    ]


def test_without_a_broker_the_flow_is_refused_naming_it() -> None:
    from cityheart.runtime.servers import free_port
    from connectors.kafka import topic_id
    from models.errors import ConnectorError

    nowhere = f"127.0.0.1:{free_port()}"
    with pytest.raises(ConnectorError, match="no answer about topic 'incidents' within 1 s"):
        topic_id(nowhere, "incidents", timeout=1)
