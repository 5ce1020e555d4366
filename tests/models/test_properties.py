"""Properties of what hostile input meets first: the payload parser and the config loader.

Any payload either becomes a valid Reading or raises InvalidReading with a known reason (its
dead-letter reason) and a detail, never another exception, never nothing. Any mutation of the
shipped config.yaml (keys deleted, wrong types, random values anywhere, bad environment
overrides, broken YAML text) either loads or raises ConfigError naming a key, never another
exception. Each property runs a bounded number of examples so the suite stays fast.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.errors import ConfigError, InvalidReading
from models.readings import REASONS, Reading, ReadingParser, encode
from models.timefmt import from_iso, iso
from settings.config import Settings
from settings.loader import ENV_OVERRIDES, load, load_mapping

ROOT = Path(__file__).resolve().parents[2]
# the test city, Riverton: city and simulator in one file, the form a single config.yaml may take
TEXT = (ROOT / "tests" / "support" / "riverton.yaml").read_text()
RAW = yaml.safe_load(TEXT)
SETTINGS = load_mapping(RAW, env={})
NOW = 1_795_669_200.0  # 2026-11-26T05:00:00Z
PREFIX = SETTINGS.mqtt.topic_prefix
PARSER = ReadingParser(
    SETTINGS.kinds, SETTINGS.district_ids(), topic_prefix=PREFIX,
    max_future_s=SETTINGS.flow.max_future_s, max_payload_bytes=SETTINGS.mqtt.max_payload_bytes,
)
PARSER_REASONS = set(REASONS) - {"rate_limited", "not_allowed", "bad_row", "missing_value",
                                 "duplicate"}  # those only the ways in give
SECTIONS = set(Settings.model_fields)
EXAMPLES = hsettings(max_examples=200, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


# -- the payload parser ----------------------------------------------------------------------


def parse(payload: bytes, topic: str | None) -> Reading | InvalidReading:
    """The parser's outcome: a Reading, or the InvalidReading it raised (nothing else)."""
    try:
        return PARSER.parse(payload, topic, NOW)
    except InvalidReading as error:
        return error


def check(payload: bytes, topic: str | None) -> Reading | InvalidReading:
    outcome = parse(payload, topic)
    if isinstance(outcome, InvalidReading):
        assert outcome.reason in PARSER_REASONS, outcome.reason
        assert outcome.detail and isinstance(outcome.detail, str)
        assert outcome.payload == payload, "the dead letter keeps the original bytes"
        assert str(outcome).startswith(f"invalid reading ({outcome.reason}): ")
        return outcome
    kind = SETTINGS.kinds[outcome.kind]  # a known kind
    assert outcome.district in SETTINGS.district_ids()
    assert outcome.unit == kind.unit, "always in the kind's canonical unit"
    assert math.isfinite(outcome.value) and kind.range[0] <= outcome.value <= kind.range[1]
    assert math.isfinite(outcome.ts) and 0 <= outcome.ts <= NOW + SETTINGS.flow.max_future_s
    assert isinstance(outcome.device_id, str) and outcome.device_id
    assert outcome.seq is None or (type(outcome.seq) is int and outcome.seq >= 0)
    if topic is not None:
        assert topic == f"{PREFIX}/{outcome.district}/{outcome.kind}/{outcome.device_id}"
    # what the bridge writes to Kafka, the flow parses back to the same reading
    assert PARSER.parse(encode(outcome), None, NOW) == outcome
    return outcome


@st.composite
def device_records(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid reading of the shipped city as JSON fields, and the topic it belongs on."""
    kind_id = draw(st.sampled_from(sorted(SETTINGS.kinds)))
    kind = SETTINGS.kinds[kind_id]
    district = draw(st.sampled_from(SETTINGS.district_ids()))
    device = draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True))
    unit = draw(st.sampled_from([kind.unit, *kind.convert]))
    scale, offset = kind.convert.get(unit, (1.0, 0.0))
    low, high = kind.range
    canonical = draw(st.floats(low, high))
    value = (canonical - offset) / scale  # may land just outside the range: still classified
    ts = draw(st.floats(0, NOW + 600) | st.integers(0, int(NOW)))
    stamp = draw(st.sampled_from(["epoch", "iso"]))
    record = {
        "device_id": device, "kind": kind_id, "value": value, "unit": unit,
        "ts": ts if stamp == "epoch" else iso(float(ts)),
    }
    if draw(st.booleans()):
        record["seq"] = draw(st.integers(0, 2**40))
    return record, f"{PREFIX}/{district}/{kind_id}/{device}"


@st.composite
def mutated_records(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A valid reading with random fields deleted, replaced or added, on a plausible topic."""
    record, topic = draw(device_records())
    fields = ["device_id", "kind", "value", "unit", "ts", "seq", "district", "extra"]
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(fields))
        if draw(st.booleans()):
            record.pop(field, None)
        else:
            record[field] = draw(json_values)
    topic = draw(st.sampled_from([topic, None, f"{PREFIX}/atlantis/pm25/x"]) | st.text(max_size=30))
    return json.dumps(record).encode(), topic  # the standard library writes NaN and huge ints


@EXAMPLES
@given(payload=st.binary(max_size=300), topic=st.none() | st.text(max_size=40))
def test_any_bytes_become_a_reading_or_a_classified_rejection(payload: bytes, topic) -> None:
    check(payload, topic)


@EXAMPLES
@given(record=json_values, topic=st.none() | st.just(f"{PREFIX}/harbour/pm25/pm-1"))
def test_any_json_value_becomes_a_reading_or_a_classified_rejection(record, topic) -> None:
    check(json.dumps(record).encode(), topic)


@EXAMPLES
@given(case=mutated_records())
def test_any_mutated_reading_parses_or_is_classified(case: tuple[bytes, str | None]) -> None:
    check(*case)


@EXAMPLES
@given(case=device_records())
def test_a_valid_reading_in_range_is_never_rejected(case: tuple[dict[str, Any], str]) -> None:
    record, topic = case
    kind = SETTINGS.kinds[record["kind"]]
    scale, offset = kind.convert.get(record["unit"], (1.0, 0.0))
    canonical = record["value"] * scale + offset
    ts = record["ts"] if isinstance(record["ts"], (int, float)) else from_iso(record["ts"])
    assume(kind.range[0] <= canonical <= kind.range[1])
    assume(ts <= NOW + SETTINGS.flow.max_future_s)
    outcome = check(json.dumps(record).encode(), topic)
    assert isinstance(outcome, Reading), outcome


@EXAMPLES
@given(extra=st.integers(1, 5000))
def test_an_oversized_payload_is_refused_before_it_is_read(extra: int) -> None:
    limit = SETTINGS.mqtt.max_payload_bytes
    outcome = check(b" " * (limit + extra), f"{PREFIX}/harbour/pm25/pm-1")
    assert isinstance(outcome, InvalidReading) and outcome.reason == "oversized"


# -- the config loader -----------------------------------------------------------------------


def paths(node: Any, here: tuple = ()) -> list[tuple]:
    """Every key path in a parsed YAML document (mapping keys and list indexes)."""
    found = [here] if here else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*here, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*here, index))
    return found


PATHS = paths(RAW)
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def apply(data: dict, path: tuple, action: str, value: Any) -> None:
    """Mutate ``data`` at ``path``: delete it, set ``value``, or wrap the old value."""
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "set":
        parent[last] = value
    elif action == "as_text":
        parent[last] = str(parent[last])
    elif action == "as_list":
        parent[last] = [parent[last]]
    else:  # "as_mapping"
        parent[last] = {"value": parent[last]}


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict:
    data = copy.deepcopy(RAW)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        action = draw(st.sampled_from(["delete", "set", "set", "as_text", "as_list",
                                       "as_mapping"]))
        try:
            apply(data, path, action, draw(yaml_values))
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced this path's parent
    return data


def check_config(data: Any, env: dict[str, str] | None = None) -> Settings | ConfigError:
    try:
        return load_mapping(data, source="config.yaml", env=env or {})
    except ConfigError as error:
        assert error.key, f"the error names no key: {error}"
        assert error.key.split(".")[0].split("[")[0] in SECTIONS, error.key
        assert str(error).startswith(f"{error.source}: {error.key}: "), str(error)
        assert error.reason
        return error


@EXAMPLES
@given(data=mutated_configs())
def test_a_mutated_config_loads_or_names_the_bad_key(data: dict) -> None:
    check_config(data)


@EXAMPLES
@given(path=st.sampled_from([p for p in PATHS if len(p) <= 2]))
def test_a_deleted_key_loads_with_its_default_or_is_named(path: tuple) -> None:
    data = copy.deepcopy(RAW)
    apply(data, path, "delete", None)
    outcome = check_config(data)
    if isinstance(outcome, ConfigError) and outcome.reason == "required key is missing":
        assert outcome.key == ".".join(str(p) for p in path) or len(path) == 2


@EXAMPLES
@given(
    env=st.dictionaries(st.sampled_from(sorted(ENV_OVERRIDES)), st.text(max_size=20),
                        max_size=3),
    section=st.sampled_from(sorted({s for s, _, _ in ENV_OVERRIDES.values()})),
    value=yaml_values,
)
def test_bad_environment_overrides_are_named(env: dict, section: str, value: Any) -> None:
    data = copy.deepcopy(RAW)
    data[section] = value  # the section the override lands in may itself be wrong
    outcome = check_config(data, env)
    if isinstance(outcome, ConfigError) and outcome.source.startswith("environment"):
        assert outcome.source.removeprefix("environment variable ") in env


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("configs")


@EXAMPLES
@given(
    cut=st.integers(0, len(TEXT)),
    noise=st.text(max_size=30) | st.sampled_from(
        ["2001-13-45", ": :", "- [", "!!binary x", "&a [*a]", "\t", "{", "? [a]\n: 1", "\x00"]
    ),
)
@example(cut=0, noise="when: 2026-13-45\n")  # PyYAML raises ValueError for this date
@example(cut=0, noise="deep: " + "[" * 3000 + "]" * 3000 + "\n")  # and RecursionError here
@example(cut=0, noise="loop: &a [*a]\n")  # a list that contains itself
def test_broken_yaml_text_loads_or_fails_with_config_error(config_dir: Path, cut: int,
                                                           noise: str) -> None:
    path = config_dir / "config.yaml"
    path.write_text(TEXT[:cut] + noise + TEXT[cut:], encoding="utf-8")
    try:
        load(path, env={})
    except ConfigError as error:
        assert str(error).startswith("config.yaml: "), str(error)
        assert error.reason
