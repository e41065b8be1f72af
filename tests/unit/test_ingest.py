from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from liger_core.config import load_settings
from liger_core.errors import ConfigError, DataError
from liger_core.ingest import ingest, load_source
from liger_core.item_index import extend_registry
from tests.conftest import EVENTS, ITEMS, write_tsv

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


def settings_for(folder: Path, *extra: str):
    return load_settings("cpu", [
        f"source.path={folder}", "source.format=tabular", "source.events_file=events.tsv",
        "source.items_file=items.tsv", "source.item_columns={}", *extra], environ={})


def run_ingest(folder: Path, *extra: str):
    settings = settings_for(folder, *extra)
    return ingest(load_source(settings.source, settings.paths), settings.source, now=NOW)


def reasons(result, table: str) -> dict[int, str]:
    frame = result.quarantine[table]
    return dict(zip(frame["line_no"], frame["reason"]))


def test_clean_source_keeps_everything_in_order(tiny_source):
    result = run_ingest(tiny_source)
    assert len(result.items) == 5 and len(result.events) == 9
    assert result.read == {"items": 5, "interactions": 9}
    assert result.quarantine_counts() == {}
    # Same-second ties keep the source order: u3 saw A4 before A1.
    u3 = result.events[result.events["user_id"] == "u3"].sort_values("event_seq")
    assert u3["item_id"].tolist() == ["A4", "A1", "A5"]
    assert str(result.events["ts"].dtype) == "datetime64[ns, UTC]"
    assert result.events["ts"].iloc[0] == pd.Timestamp(1300000000, unit="s", tz="UTC")


def test_item_without_title_is_kept_with_text_from_other_fields(tiny_source):
    items = run_ingest(tiny_source).items.set_index("item_id")
    assert pd.isna(items.loc["A3", "title"])
    assert items.loc["A3", "text"] == "It belongs to the categories of Beauty > Skin Care > Face."


def test_every_item_reason(tmp_path):
    rows = ITEMS[:3] + [
        ("", "No id", "", "", ""),             # line 4: missing_id
        ("A9", "x" * 50, "", "", ""),          # line 5: oversize_field (limit 40 below)
        ("A1", "Duplicate", "", "", ""),       # line 6: duplicate_item
        ("A7", "", "", "", ""),                # line 7: empty_text
        ("A8", "short row"),                   # line 8: malformed_line
    ]
    write_tsv(tmp_path / "items.tsv", rows)
    write_tsv(tmp_path / "events.tsv", EVENTS[:3])
    result = run_ingest(tmp_path, "source.max_field_chars=40")
    assert reasons(result, "items") == {4: "missing_id", 5: "oversize_field", 6: "duplicate_item",
                                        7: "empty_text", 8: "malformed_line"}
    assert result.items["item_id"].tolist() == ["A1", "A2"]
    assert len(result.items) + len(result.quarantine["items"]) == result.read["items"] == 7


def test_every_event_reason(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS)
    rows = [EVENTS[0],
            ("u1", "A1", "1300000000"),           # 2: ok
            ("", "A1", "1300000000"),             # 3: missing_id
            ("u1", "A2", "yesterday"),            # 4: unparseable_timestamp
            ("u1", "A2", "99999999999"),          # 5: timestamp_out_of_range (year 5138)
            ("u1", "A2", "1990-01-01T00:00:00"),  # 6: timestamp_out_of_range (before min_ts)
            ("u1", "ZZ", "1300000000"),           # 7: unknown_item
            ("u1", "A1", "1300000000"),           # 8: duplicate_event
            ("u2", "A2", "2011-03-13T07:06:40Z"),  # 9: ok, ISO-8601
            ("u2", "A3"),                          # 10: malformed_line
            ]
    write_tsv(tmp_path / "events.tsv", rows)
    result = run_ingest(tmp_path)
    assert reasons(result, "interactions") == {
        3: "missing_id", 4: "unparseable_timestamp", 5: "timestamp_out_of_range",
        6: "timestamp_out_of_range", 7: "unknown_item", 8: "duplicate_event", 10: "malformed_line"}
    assert result.events["line_no"].tolist() == [2, 9]
    assert result.events["ts"].iloc[1] == pd.Timestamp("2011-03-13T07:06:40Z")
    assert len(result.events) + len(result.quarantine["interactions"]) == result.read["interactions"]
    raw = result.quarantine["interactions"].set_index("line_no")["raw"]
    assert raw[7] == "u1\tZZ\t1300000000"


def test_non_utf8_lines_are_quarantined(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS)
    data = "user_id\titem_id\ttimestamp\nu1\tA1\t1300000000\n".encode() + b"u\xff\xfe\tA2\t1300000000\n"
    (tmp_path / "events.tsv").write_bytes(data)
    result = run_ingest(tmp_path)
    assert reasons(result, "interactions") == {3: "non_utf8"}
    assert "\\xff" in result.quarantine["interactions"]["raw"].iloc[0]


def test_kcore_filter_quarantines_sparse_users_and_items(tiny_source):
    result = run_ingest(tiny_source, "source.kcore=2")
    # A3 has a single event: it drops at k=2, and u2 still has 2 events left ...
    assert result.quarantine_counts() == {"interactions.kcore": 1}
    assert "A3" not in set(result.events["item_id"])
    result = run_ingest(tiny_source, "source.kcore=3")
    # ... but at k=3 no item has 3 events: everything is filtered, iteratively.
    assert result.quarantine_counts() == {"interactions.kcore": 9}
    assert result.events.empty


def test_events_of_item_with_no_text_become_unknown_item(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS + [("A7", "", "", "", "")])
    write_tsv(tmp_path / "events.tsv", EVENTS + [("u1", "A7", "1300000000")])
    result = run_ingest(tmp_path)
    assert result.quarantine_counts() == {"items.empty_text": 1, "interactions.unknown_item": 1}


def test_parquet_source_and_column_mapping(tmp_path):
    pd.DataFrame({"asin": ["A1", "A2"], "name": ["Gel", "Soap"], "extra": [1, 2]}).to_parquet(tmp_path / "items.parquet")
    pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["A1", "A2"],
                  "timestamp": [1300000000, 1300000001]}).to_parquet(tmp_path / "events.parquet")
    settings = load_settings("cpu", [f"source.path={tmp_path}", "source.format=tabular",
                                     "source.items_file=items.parquet", "source.events_file=events.parquet",
                                     "source.item_columns={item_id: asin, title: name}"], environ={})
    result = ingest(load_source(settings.source, settings.paths), settings.source, now=NOW)
    assert result.items["text"].tolist() == ["This item is called 'Gel'.", "This item is called 'Soap'."]
    assert len(result.events) == 2


def test_missing_columns_and_files_are_clear_errors(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS)
    write_tsv(tmp_path / "events.tsv", [("user", "item_id", "timestamp")])
    with pytest.raises(DataError, match=r"events.tsv: missing column\(s\) \['user_id'\]"):
        run_ingest(tmp_path)
    with pytest.raises(ConfigError, match=r"source.item_columns.title: column 'name'"):
        write_tsv(tmp_path / "events.tsv", EVENTS)
        run_ingest(tmp_path, "source.item_columns={title: name}")
    with pytest.raises(DataError, match="input file not found"):
        run_ingest(tmp_path / "nowhere")


def test_empty_catalog_is_an_error(tmp_path):
    write_tsv(tmp_path / "items.tsv", [ITEMS[0]])
    write_tsv(tmp_path / "events.tsv", [EVENTS[0]])
    with pytest.raises(DataError, match="no valid items"):
        run_ingest(tmp_path)


def test_item_index_is_stable_and_never_reused():
    first = extend_registry(None, pd.Series(["A", "B", "C"]), "2026-01-01")
    assert first.set_index("item_id")["item_idx"].to_dict() == {"A": 0, "B": 1, "C": 2}
    # B leaves the catalog, D arrives: B keeps 1 and D gets 3, not the freed slot.
    second = extend_registry(first, pd.Series(["D", "A", "C"]), "2026-01-02")
    mapping = second.set_index("item_id")["item_idx"].to_dict()
    assert mapping == {"A": 0, "B": 1, "C": 2, "D": 3}
    assert second.set_index("item_id").loc["D", "first_seen_ds"] == "2026-01-02"
    assert second.set_index("item_id").loc["A", "first_seen_ds"] == "2026-01-01"
    # Idempotent: the same ids again add nothing.
    assert extend_registry(second, pd.Series(["A", "D"]), "2026-01-03").equals(second)
