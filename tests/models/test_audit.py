"""The read audit's question (issue 23): who read district X's data, and how much of it."""

from __future__ import annotations

from models.audit import AuditEntry, count_districts, readers


def entry(at: float, sub: str, districts: dict[str, int], interface: str = "api",
          role: str = "dispatcher") -> AuditEntry:
    return AuditEntry(at=at, sub=sub, role=role, interface=interface, what="/api/incidents",
                      districts=districts, records=sum(districts.values()))


def test_readers_of_a_district_in_a_range_most_records_first() -> None:
    entries = [
        entry(10, "ana", {"harbour": 3, "old-town": 1}),
        entry(20, "ana", {"harbour": 2}, interface="feed"),
        entry(30, "bo", {"harbour": 9}),
        entry(40, "cy", {"old-town": 5}),                  # another district
        entry(99, "dee", {"harbour": 1}),                  # outside the range
        entry(50, "key:3f9a", {"*": 24}, interface="open-data", role="open-data"),
    ]
    rows = readers(entries, district="harbour", since=0, until=60)
    assert [(r.sub, r.reads, r.records, r.first, r.last) for r in rows] == [
        ("key:3f9a", 1, 24, 50, 50), ("bo", 1, 9, 30, 30), ("ana", 2, 5, 10, 20)]
    assert rows[2].interfaces == {"api", "feed"}


def test_an_entry_survives_its_json_form() -> None:
    original = entry(12.5, "ana", {"harbour": 2})
    assert AuditEntry.from_record(original.to_record()) == original


def test_each_object_naming_a_district_counts_once_in_any_answer_shape() -> None:
    answer = {"incidents": [{"id": "i1", "district": "harbour",
                             "alerts": [{"district": "harbour"}]},
                            {"id": "i2", "district": "old-town"}],
              "entities": [{"id": "urn:x", "district": {"type": "Property",
                                                        "value": "harbour"}}]}
    assert count_districts(answer) == {"harbour": 2, "old-town": 1}
    assert count_districts({"departments": []}) == {}
