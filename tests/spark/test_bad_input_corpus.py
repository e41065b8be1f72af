"""The planted bad-input corpus (tests/fixtures/bad_input) through the ingest stage.

Every line of the corpus is accounted for: each row-level defect is one quarantine row with
its reason, each repaired value one field_issues row, and each file-level defect one error
that names the file. tests/fixtures/bad_input/README.md lists what each line plants.
"""

import re
import shutil
from pathlib import Path

import pytest

from liger_jobs import ingest
from liger_jobs.warehouse import Warehouse
from tests.conftest import make_settings

pytestmark = pytest.mark.spark
CORPUS = Path(__file__).parents[1] / "fixtures" / "bad_input"
DS = "2015-06-01"  # the corpus holds one event after this day (line 15)

ITEM_REJECTS = [
    [8, "missing_id"],
    [9, "oversize_field"],
    [10, "duplicate_item"],
    [11, "empty_text"],
    [12, "malformed_line"],
    [13, "unbalanced_quote"],
    [15, "non_utf8"],
    [16, "malformed_line"],
]
EVENT_REJECTS = [
    [11, "missing_id"],
    [12, "oversize_field"],
    [13, "unparseable_timestamp"],
    [14, "timestamp_out_of_range"],
    [15, "after_ds"],
    [16, "unknown_item"],
    [17, "duplicate_event"],
    [18, "malformed_line"],
    [19, "unbalanced_quote"],
]


@pytest.fixture
def corpus_settings(tmp_path, tracking_uri):
    source = tmp_path / "source"
    shutil.copytree(CORPUS, source)
    return lambda *extra: make_settings(
        tmp_path / "home", source, "source.items_file=items.tsv", f"tracking.uri={tracking_uri}", *extra
    )


def read(spark, settings, table, order="line_no"):
    frame = Warehouse(spark, settings.paths.warehouse_uri).read(table, DS).toPandas()
    return frame.sort_values(order).reset_index(drop=True)


def test_every_corpus_row_is_ingested_quarantined_or_noted(spark, corpus_settings):
    settings = corpus_settings("source.max_quarantine_rate=1")
    stats = ingest.run(settings, DS, spark)
    assert (stats["read_items"], stats["items"], stats["quarantined_items"]) == (16, 8, 8)
    assert (stats["read_interactions"], stats["interactions"], stats["quarantined_interactions"]) == (19, 10, 9)
    assert (stats["field_issues_items"], stats["field_issues_interactions"]) == (4, 0)

    assert read(spark, settings, "quarantine/items")[["line_no", "reason"]].values.tolist() == ITEM_REJECTS
    assert read(spark, settings, "quarantine/interactions")[["line_no", "reason"]].values.tolist() == EVENT_REJECTS
    issues = read(spark, settings, "field_issues/items")
    assert issues[["line_no", "field", "reason", "raw"]].values.tolist()[:3] == [
        [4, "price", "invalid_price", "-5"],
        [5, "price", "invalid_price", "NaN"],
        [6, "price", "invalid_price", "call us"],
    ]
    assert issues.loc[3, "reason"] == "decoded_cp1252" and issues.loc[3, "line_no"] == 7
    assert set(issues["source_file"]) == {str(Path(settings.source.path) / "items.tsv")}

    items = read(spark, settings, "items", "item_id").set_index("item_id")
    assert sorted(items.index) == ["B1", "B11", "B14", "B2", "B3", "B4", "B5", "B6"]
    assert items.loc["B6", "title"] == "Crème Hydratante"
    assert items.loc[["B3", "B4", "B5"], "price"].isna().all()  # nulled, never rendered
    assert not items["text"].str.contains("priced at -5|NaN|call us").any()
    assert "12.50" in items.loc["B2", "text"]
    events = read(spark, settings, "interactions", "ts")
    assert len(events) == 10 and (events["ts"].dt.year == 2011).all()  # epoch milliseconds, detected


def test_the_default_quarantine_ceiling_stops_the_corpus_before_anything_is_written(spark, corpus_settings):
    settings = corpus_settings()
    with pytest.raises(
        Exception,
        match=r"items: 8 of 16 rows \(50.0%\) are defective .*"
        r"above source.max_quarantine_rate=0.2; nothing was written",
    ):
        ingest.run(settings, DS, spark)
    assert Warehouse(spark, settings.paths.warehouse_uri).partitions("items") == []


@pytest.mark.parametrize(
    "items_file, message",
    [
        ("duplicate_header.tsv", r"duplicate column name\(s\) \['title'\] in the header"),
        ("corrupt.tsv.gz", "not a readable gzip file"),
        ("corrupt.parquet", "not a readable Parquet file"),
        ("empty.tsv", r"empty file \(a header row is required\)"),
        ("no_item_id.tsv", r"missing column\(s\) \['item_id'\]"),
    ],
)
def test_a_file_level_defect_is_one_error_naming_the_file(spark, corpus_settings, capsys, items_file, message):
    settings = corpus_settings()
    overrides = [
        f"paths.home={settings.paths.home}",
        f"source.path={settings.source.path}",
        "source.format=tabular",
        "source.events_file=events.tsv",
        f"source.items_file=file_level/{items_file}",
        "source.item_columns={}",
        f"tracking.uri={settings.tracking_uri}",
    ]
    assert ingest.main(["--ds", DS, *sum((["--set", o] for o in overrides), [])]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].startswith(f"error: {settings.source.path}/file_level/{items_file}: ")
    assert re.search(message, error[0])
