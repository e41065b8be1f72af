"""The item_embeddings, user_sequences and recommendations suites fail where they should, on the frames
the jobs hand GX (Spark rows validated where they lie, per-item and per-user summaries in pandas), and a
failed suite commits nothing."""

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from liger_jobs import build_sequences, embed_items, ingest, recommend
from liger_jobs.warehouse import Warehouse
from liger_core.errors import DataError, ValidationFailed
from liger_core.platform.validation import item_embeddings_suite, recommendations_suite, user_sequences_suite, validate_frame

pytestmark = pytest.mark.spark
DS = "2026-01-01"
T = [datetime(2026, 1, 1, h) for h in range(4)]


def sequences(spark, rows):
    return spark.createDataFrame(pd.DataFrame(rows, columns=["user_id", "user_idx", "items", "ts"]))


def test_sequence_summary_catches_unknown_items_misaligned_lists_and_time_going_back(spark):
    known = spark.createDataFrame(pd.DataFrame({"item_idx": [0, 1, 2]}))
    good = sequences(spark, [("u1", 0, [0, 1], T[:2]), ("u2", 1, [2], T[:1])])
    assert validate_frame("user_sequences", build_sequences.sequence_summary(good, known), user_sequences_suite()) == len(
        user_sequences_suite()
    )
    bad = sequences(spark, [("u1", 0, [0, 7], T[:2]), ("u2", 1, [2, 1], [T[2], T[1]]), ("u3", 2, [1, 2], T[:1])])
    with pytest.raises(ValidationFailed) as err:
        validate_frame("user_sequences", build_sequences.sequence_summary(bad, known), user_sequences_suite())
    report = str(err.value)
    assert "validation of 'user_sequences' failed (3 rows)" in report
    assert "unknown_items" in report and "ts_sorted" in report
    assert "expect_column_pair_values_to_be_equal {'column_A': 'n_items', 'column_B': 'n_ts'" in report


def test_a_failed_user_sequences_suite_commits_nothing(spark, job_settings, monkeypatch):
    ingest.run(job_settings, DS, spark)
    real = build_sequences.user_sequences
    # Time going back inside every user's list: what a broken ordering would write.
    monkeypatch.setattr(
        build_sequences,
        "user_sequences",
        lambda events: real(events).selectExpr("user_id", "user_idx", "items", "reverse(ts) AS ts"),
    )
    with pytest.raises(ValidationFailed, match="ts_sorted"):
        build_sequences.run(job_settings, DS, spark)
    assert not Warehouse(spark, job_settings.paths.warehouse_uri).exists("user_sequences", DS)


def recommendations(spark, rows):
    frame = pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score", "source"])
    return spark.createDataFrame(frame.assign(model_version="1"))


GOOD = [("u1", 1, "A", 0.9, "generative"), ("u1", 2, "B", 0.5, "cold_start"), ("u2", 1, "B", 0.7, "generative")]


def test_recommendation_suites_pass_a_good_table_and_name_every_broken_rule(spark, tmp_path):
    expected = pd.Series([2, 1], index=["u1", "u2"])
    recommend._validate(recommendations(spark, GOOD), ["A", "B", "C"], expected, str(tmp_path))
    # u1's scores rise with rank; u2 has one row fewer than expected.
    rising = [("u1", 1, "A", 0.1, "generative"), ("u1", 2, "B", 0.5, "generative"), ("u2", 1, "B", 0.7, "generative")]
    with pytest.raises(ValidationFailed) as err:
        recommend._validate(recommendations(spark, rising), ["A", "B", "C"], pd.Series([2, 2], index=["u1", "u2"]), str(tmp_path))
    report = str(err.value)
    assert "validation of 'recommendations_per_user' failed (2 rows)" in report
    assert "scores_sorted" in report and "'column_B': 'expected_rows'" in report
    assert (tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()


def test_recommendation_rows_outside_the_catalog_or_twice_per_user_fail(spark):
    twice = GOOD + [("u2", 2, "B", 0.6, "generative"), ("u2", 3, "Z", 0.5, "generative")]
    with pytest.raises(ValidationFailed) as err:
        rows = recommend.with_unknown_items(recommendations(spark, twice), ["A", "B"])
        validate_frame("recommendations", rows, recommendations_suite(["generative"]))
    report = str(err.value)
    assert "validation of 'recommendations' failed (5 rows)" in report
    assert "expect_compound_columns_to_be_unique {'column_list': ['user_id', 'item_id']" in report
    assert "expect_column_values_to_be_null {'column': 'unknown_item_id'}: 1 unexpected, e.g. ['Z']" in report
    assert "expect_column_values_to_be_in_set {'column': 'source'" in report and "cold_start" in report


def test_a_user_with_candidates_but_no_rows_is_an_error(spark, tmp_path):
    expected = pd.Series([2, 1, 3], index=["u1", "u2", "u3"])
    with pytest.raises(DataError, match=r"1 users got no recommendations \(e.g. \['u3'\]\)"):
        recommend._validate(recommendations(spark, GOOD), ["A", "B"], expected, str(tmp_path))


def embeddings(spark, vectors):
    frame = pd.DataFrame(
        {
            "item_idx": range(len(vectors)),
            "text_hash": ["h"] * len(vectors),
            "embedding": [np.asarray(v, dtype=np.float32).tolist() for v in vectors],
        }
    )
    return spark.createDataFrame(frame, schema="item_idx long, text_hash string, embedding array<float>")


def test_embedding_summary_checks_dimension_norm_and_finiteness(spark):
    unit = np.ones(4) / 2
    assert validate_frame(
        "item_embeddings", embed_items.checked_summary(embeddings(spark, [unit, unit]), [0, 1]), item_embeddings_suite(2, 4)
    ) == len(item_embeddings_suite(2, 4))
    cases = [
        ("embedding_dim", [unit, np.ones(3) / np.sqrt(3)]),
        ("embedding_norm", [unit, unit * 2]),
        ("embedding_finite", [unit, np.array([np.nan, 0, 0, 1.0])]),
        ("embedding_finite", [unit, np.array([np.inf, 0, 0, 0])]),
    ]
    for column, vectors in cases:
        with pytest.raises(ValidationFailed, match=column):
            validate_frame(
                "item_embeddings", embed_items.checked_summary(embeddings(spark, vectors), [0, 1]), item_embeddings_suite(2, 4)
            )


def test_every_item_needs_exactly_one_embedding(spark):
    unit = np.ones(4) / 2
    with pytest.raises(ValidationFailed, match="expect_table_row_count_to_equal"):
        validate_frame(
            "item_embeddings", embed_items.checked_summary(embeddings(spark, [unit]), [0, 1]), item_embeddings_suite(2, 4)
        )
