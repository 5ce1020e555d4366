"""parse_reading over batch records folds exactly what it folds over one record per reading."""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from connectors.batcher import pack
from connectors.kafka import KafkaRecord
from flows.events import Refused
from flows.steps import ParseBatch
from models.readings import Reading, encode
from models.vitals.records import Rejection
from models.windows import Window
from settings.config import Settings
from settings.loader import load_mapping
from settings.params import reading_parser, vitals_params
from tests.support import shipped_config

SETTINGS: Settings = load_mapping(shipped_config(), env={})
T = 1_795_669_200.0
NOW = T + 120.0

readings = st.lists(st.builds(
    Reading,
    device_id=st.sampled_from(["a", "b", "c", "d"]),
    district=st.sampled_from(["harbour", "old-town", "atlantis"]),   # atlantis: refused
    kind=st.sampled_from(["pm25", "noise"]),
    value=st.sampled_from([-0.0, 0.0, 12.5, 35.0, 61.25, 5000.0]),  # 5000: out of range
    unit=st.sampled_from(["ug/m3", "dBA"]),
    ts=st.floats(min_value=T, max_value=T + 40) | st.just(NOW + 3600),  # ahead: refused
    seq=st.none() | st.integers(min_value=0, max_value=9),
), max_size=60)


def state(window: Window) -> tuple:
    runs = {d: (r.count, r.total, r.lo, r.hi, r.first_ts, r.last_ts)
            for d, r in window.runs.items()}
    return (window.district, window.kind, window.start, window.count, window.total, window.min,
            window.max, window.last_ts, window.last, window.energy, runs)


def outcome(items: list) -> tuple[list, list, list]:
    parse = ParseBatch(reading_parser(SETTINGS), SETTINGS.flow.window_s,
                       vitals_params(SETTINGS).decibel_kinds, lambda: NOW)
    out = parse(items)
    windows = [state(w) for w in out if isinstance(w, Window)]
    refused = sorted((r.key, r.payload, r.reason, r.detail) for r in out if isinstance(r, Refused))
    rejected = sorted(repr(r) for r in out if isinstance(r, Rejection))
    return windows, refused, rejected


@given(readings, st.integers(min_value=1, max_value=20))
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_batches_fold_to_the_windows_and_refusals_of_single_records(
    batch: list[Reading], per_record: int
) -> None:
    singles = [KafkaRecord(r.device_id.encode(), encode(r)) for r in batch]
    # one partition: the records keep the readings' order, as the bridge's would
    records = [KafkaRecord(None, ready.value)
               for ready in pack(batch, 1, max_readings=per_record)]
    assert outcome(records) == outcome(singles)
