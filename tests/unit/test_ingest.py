from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from liger_core.config import load_settings
from liger_core.errors import ConfigError, DataError
from liger_core.data.ingest import ingest, load_source
from liger_core.data.item_index import extend_registry
from tests.conftest import EVENTS, ITEMS, write_tsv

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


def settings_for(folder: Path, *extra: str):
    """Tiny defect fixtures are mostly defects: the quarantine-rate ceiling is off unless set."""
    return load_settings(
        "cpu",
        [
            f"source.path={folder}",
            "source.format=tabular",
            "source.events_file=events.tsv",
            "source.items_file=items.tsv",
            "source.item_columns={}",
            "source.max_quarantine_rate=1",
            *extra,
        ],
        environ={},
    )


def run_ingest(folder: Path, *extra: str, ds: str | None = None):
    settings = settings_for(folder, *extra)
    return ingest(load_source(settings.source, settings.paths), settings.source, ds, now=NOW)


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
        ("", "No id", "", "", ""),  # line 4: missing_id
        ("A9", "x" * 50, "", "", ""),  # line 5: oversize_field (limit 40 below)
        ("A1", "Duplicate", "", "", ""),  # line 6: duplicate_item
        ("A7", "", "", "", ""),  # line 7: empty_text
        ("A8", "short row"),  # line 8: malformed_line
    ]
    write_tsv(tmp_path / "items.tsv", rows)
    write_tsv(tmp_path / "events.tsv", EVENTS[:3])
    result = run_ingest(tmp_path, "source.max_field_chars=40")
    assert reasons(result, "items") == {
        4: "missing_id",
        5: "oversize_field",
        6: "duplicate_item",
        7: "empty_text",
        8: "malformed_line",
    }
    assert result.items["item_id"].tolist() == ["A1", "A2"]
    assert len(result.items) + len(result.quarantine["items"]) == result.read["items"] == 7


def test_every_event_reason(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS)
    rows = [
        EVENTS[0],
        ("u1", "A1", "1300000000"),  # 2: ok
        ("", "A1", "1300000000"),  # 3: missing_id
        ("u1", "A2", "yesterday"),  # 4: unparseable_timestamp
        ("u1", "A2", "99999999999"),  # 5: timestamp_out_of_range (year 5138)
        ("u1", "A2", "1990-01-01T00:00:00"),  # 6: timestamp_out_of_range (before min_ts)
        ("u1", "ZZ", "1300000000"),  # 7: unknown_item
        ("u1", "A1", "1300000000"),  # 8: duplicate_event
        ("u2", "A2", "2011-03-13T07:06:40Z"),  # 9: ok, ISO-8601
        ("u2", "A3"),  # 10: malformed_line
    ]
    write_tsv(tmp_path / "events.tsv", rows)
    result = run_ingest(tmp_path)
    assert reasons(result, "interactions") == {
        3: "missing_id",
        4: "unparseable_timestamp",
        5: "timestamp_out_of_range",
        6: "timestamp_out_of_range",
        7: "unknown_item",
        8: "duplicate_event",
        10: "malformed_line",
    }
    assert result.events["line_no"].tolist() == [2, 9]
    assert result.events["ts"].iloc[1] == pd.Timestamp("2011-03-13T07:06:40Z")
    assert len(result.events) + len(result.quarantine["interactions"]) == result.read["interactions"]
    raw = result.quarantine["interactions"].set_index("line_no")["raw"]
    assert raw[7] == "u1\tZZ\t1300000000"


def test_legacy_encoded_lines_are_decoded_and_noted_undecodable_ones_quarantined(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS)
    data = (
        "user_id\titem_id\ttimestamp\nu1\tA1\t1300000000\n".encode()
        + "caf\u00e9\tA2\t1300000000\n".encode("cp1252")  # line 3: cp1252 e-acute
        + b"u\x81\tA3\t1300000000\n"
    )  # line 4: 0x81 is not cp1252 either
    (tmp_path / "events.tsv").write_bytes(data)
    result = run_ingest(tmp_path)
    assert reasons(result, "interactions") == {4: "non_utf8"}
    assert "\\x81" in result.quarantine["interactions"]["raw"].iloc[0]
    assert result.events["user_id"].tolist() == ["u1", "caf\u00e9"]
    notes = result.notes["interactions"]
    assert notes[["line_no", "reason"]].values.tolist() == [[3, "decoded_cp1252"]]
    strict = run_ingest(tmp_path, "source.fallback_encoding=null")
    assert reasons(strict, "interactions") == {3: "non_utf8", 4: "non_utf8"}


def test_oversize_field_beyond_the_csv_limit_is_one_quarantined_row(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS[:2] + [("A9", "x" * 200_000, "", "", "")] + ITEMS[2:])
    write_tsv(tmp_path / "events.tsv", EVENTS)
    result = run_ingest(tmp_path)
    assert reasons(result, "items") == {3: "oversize_field"}
    assert len(result.items) == 5 and len(result.quarantine["items"]["raw"].iloc[0]) <= 1000


def test_unbalanced_quote_rejects_its_line_and_loses_no_following_record(tmp_path):
    rows = ITEMS[:2] + [("A9", '"Broken quote title', "", "", "")] + ITEMS[2:]
    write_tsv(tmp_path / "items.tsv", rows)
    write_tsv(tmp_path / "events.tsv", EVENTS)
    result = run_ingest(tmp_path)
    assert reasons(result, "items") == {3: "unbalanced_quote"}
    assert result.items["item_id"].tolist() == ["A1", "A2", "A3", "A4", "A5"]
    assert result.read["items"] == 6


def test_a_quoted_field_with_a_line_break_is_one_record(tmp_path):
    """As in the Beauty items file (B0001ZYL3Q): valid CSV quoting, kept whole."""
    (tmp_path / "items.tsv").write_text('item_id\ttitle\tbrand\nA1\t"Cream\nVanilla"\tLumi\nA2\tBalm\tOra\n')
    write_tsv(tmp_path / "events.tsv", EVENTS[:1] + [("u1", "A1", "1300000000"), ("u1", "A2", "1300000001")])
    result = run_ingest(tmp_path)
    assert result.quarantine_counts() == {}
    assert result.items["title"].tolist() == ["Cream\nVanilla", "Balm"]
    assert result.items["line_no"].tolist() == [2, 4] and result.read["items"] == 2


def test_invalid_prices_are_nulled_noted_and_never_rendered(tmp_path):
    rows = [
        ITEMS[0],
        ("A1", "Gel", "", "", "-5.0"),
        ("A2", "Soap", "", "", "NaN"),
        ("A3", "Wax", "", "", "cheap"),
        ("A4", "Oil", "", "", "$3.50"),
        ("A5", "Foam", "", "", "inf"),
    ]
    write_tsv(tmp_path / "items.tsv", rows)
    write_tsv(tmp_path / "events.tsv", EVENTS)
    result = run_ingest(tmp_path)
    items = result.items.set_index("item_id")
    assert items.loc["A1", "text"] == "This item is called 'Gel'." and pd.isna(items.loc["A1", "price"])
    assert items.loc["A4", "text"] == "This item is called 'Oil'. It is priced at $3.50."
    assert not items["text"].str.contains("priced at (?:-|NaN|cheap|inf)").any()
    notes = result.notes["items"]
    assert notes[["line_no", "field", "reason", "raw"]].values.tolist() == [
        [2, "price", "invalid_price", "-5.0"],
        [3, "price", "invalid_price", "NaN"],
        [4, "price", "invalid_price", "cheap"],
        [6, "price", "invalid_price", "inf"],
    ]
    assert result.quarantine_counts() == {}


def test_duplicate_header_names_are_one_clear_error(tmp_path):
    write_tsv(tmp_path / "items.tsv", [("item_id", "title", "title"), ("A1", "x", "y")])
    write_tsv(tmp_path / "events.tsv", EVENTS)
    with pytest.raises(DataError, match=r"items.tsv: duplicate column name\(s\) \['title'\]"):
        run_ingest(tmp_path)


def test_epoch_milliseconds_are_read_as_milliseconds(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS)
    write_tsv(tmp_path / "events.tsv", [EVENTS[0]] + [(u, i, t + "000") for u, i, t in EVENTS[1:]])
    result = run_ingest(tmp_path)
    assert result.timestamp_unit == "ms" and result.quarantine_counts() == {}
    assert result.events["ts"].iloc[0] == pd.Timestamp(1300000000, unit="s", tz="UTC")
    forced = run_ingest(tmp_path, "source.timestamp_unit=s")
    assert forced.quarantine_counts() == {"interactions.timestamp_out_of_range": 9}


@pytest.mark.parametrize(
    "name, payload, message",
    [
        ("events.parquet", b"PAR1 this is not parquet", "events.parquet: not a readable Parquet file"),
        ("events.tsv.gz", b"\x1f\x8b\x08\x00 truncated", "events.tsv.gz: not a readable gzip file"),
    ],
)
def test_corrupt_files_are_one_clear_error_naming_the_file(tmp_path, name, payload, message):
    write_tsv(tmp_path / "items.tsv", ITEMS)
    (tmp_path / name).write_bytes(payload)
    with pytest.raises(DataError, match=message):
        run_ingest(tmp_path, f"source.events_file={name}")


def test_gzipped_tsv_reads_like_the_plain_file(tmp_path):
    import gzip

    write_tsv(tmp_path / "items.tsv", ITEMS)
    plain = write_tsv(tmp_path / "events.tsv", EVENTS)
    (tmp_path / "events.tsv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    assert run_ingest(tmp_path, "source.events_file=events.tsv.gz").events.equals(run_ingest(tmp_path).events)


def test_quarantine_rate_ceiling_fails_before_any_result(tmp_path):
    write_tsv(tmp_path / "items.tsv", ITEMS)
    write_tsv(tmp_path / "events.tsv", [EVENTS[0]] + [(u, i, "garbage") for u, i, _ in EVENTS[1:8]] + EVENTS[8:])
    with pytest.raises(
        DataError,
        match=r"interactions: 7 of 9 rows \(77.8%\) are defective "
        r"\(unparseable_timestamp 7\), above source.max_quarantine_rate=0.5",
    ):
        run_ingest(tmp_path, "source.max_quarantine_rate=0.5")
    assert len(run_ingest(tmp_path, "source.max_quarantine_rate=0.8").events) == 2


def test_events_after_the_ds_are_left_for_a_later_run_and_not_counted_as_defects(tiny_source):
    # EVENTS span 2011-03-13 .. 2011-10-30; a backfill for 2011-03-14 sees only its past.
    result = run_ingest(tiny_source, "source.max_quarantine_rate=0", ds="2011-03-14")
    assert result.events["line_no"].tolist() == [2, 3, 4, 5]
    assert result.quarantine_counts() == {"interactions.after_ds": 5}
    assert (result.events["ts"] < pd.Timestamp("2011-03-15", tz="UTC")).all()


def test_auto_format_says_when_it_switches_to_the_download(tmp_path, caplog):
    from liger_core.data.ingest import source_format

    settings = load_settings("cpu", [f"source.path={tmp_path / 'not-mounted'}"], environ={})
    with caplog.at_level("WARNING", logger="liger.ingest"):
        assert source_format(settings.source, settings.paths) == "mcauley"
    assert "not-mounted/interactions.tsv does not exist, so the McAuley Beauty files are used" in caplog.text
    assert "set source.format=tabular to fail instead" in caplog.text


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
    pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["A1", "A2"], "timestamp": [1300000000, 1300000001]}).to_parquet(
        tmp_path / "events.parquet"
    )
    settings = load_settings(
        "cpu",
        [
            f"source.path={tmp_path}",
            "source.format=tabular",
            "source.items_file=items.parquet",
            "source.events_file=events.parquet",
            "source.item_columns={item_id: asin, title: name}",
        ],
        environ={},
    )
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


def test_any_extension_reads_once_the_format_is_set_and_a_mapped_column_must_exist(tmp_path):
    """``source.delimiter`` / ``file_format`` hold for both files: one source, one convention."""

    def semicolons(rows):
        return "".join(";".join(row) + "\n" for row in rows)

    (tmp_path / "items.dat").write_text(semicolons(ITEMS))
    (tmp_path / "events.dat").write_text(semicolons([("who", "what", "when"), *EVENTS[1:]]))
    files = ("source.events_file=events.dat", "source.items_file=items.dat")
    with pytest.raises(
        DataError,
        match=r"events.dat: cannot tell the format from '.dat' .*set source.file_format "
        r"and source.delimiter",
    ):
        run_ingest(tmp_path, *files)
    mapping = "source.event_columns={user_id: who, item_id: what, timestamp: when}"
    result = run_ingest(tmp_path, *files, "source.delimiter=semicolon", mapping)
    assert len(result.events) == 9 and result.events["user_id"].iloc[0] == "u1" and len(result.items) == 5
    with pytest.raises(DataError, match=r"events.dat: missing column\(s\) \['whom', 'item_id', 'timestamp'\]"):
        run_ingest(tmp_path, *files, "source.delimiter=;", "source.event_columns={user_id: whom}")
