import json

import mlflow
import pandas as pd
import pytest

from liger_core.errors import ValidationFailed
from tests.conftest import local_mlflow
from liger_core.platform.validation import (
    interactions_suite,
    items_suite,
    semantic_id_summary,
    semantic_ids_suite,
    validate_frame,
    with_unknown,
)

T0, T1 = pd.Timestamp("2010-01-01", tz="UTC"), pd.Timestamp("2015-01-01", tz="UTC")


def items_frame(**overrides):
    frame = pd.DataFrame(
        {
            "item_id": ["A", "B"],
            "item_idx": [0, 1],
            "text": ["a", "b"],
            "text_hash": ["0" * 32, "1" * 32],
            "first_seen_ds": ["2026-01-01"] * 2,
        }
    )
    return frame.assign(**overrides)


def events_frame(**overrides):
    frame = pd.DataFrame(
        {"user_id": ["u", "u"], "item_id": ["A", "B"], "ts": [pd.Timestamp("2012-01-01", tz="UTC")] * 2, "event_seq": [1, 2]}
    )
    return frame.assign(**overrides)


def test_good_tables_pass():
    assert validate_frame("items", items_frame(), items_suite()) == len(items_suite())
    validate_frame("interactions", with_unknown(events_frame(), "item_id", ["A", "B"]), interactions_suite(T0, T1))


def test_duplicate_key_fails_with_readable_report():
    with pytest.raises(ValidationFailed) as err:
        validate_frame("items", items_frame(item_id=["A", "A"]), items_suite())
    message = str(err.value)
    assert "validation of 'items' failed (2 rows); nothing was committed" in message
    assert "expect_column_values_to_be_unique {'column': 'item_id'}: 2 unexpected" in message


def test_referential_integrity_and_timestamp_range():
    bad = events_frame(item_id=["A", "Z"], ts=[pd.Timestamp("2012-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")])
    with pytest.raises(ValidationFailed) as err:
        validate_frame("interactions", with_unknown(bad, "item_id", ["A", "B"]), interactions_suite(T0, T1))
    assert "expect_column_values_to_be_null {'column': 'unknown_item_id'}: 1 unexpected, e.g. ['Z']" in str(err.value)
    assert "expect_column_values_to_be_between {'column': 'ts'" in str(err.value)


def semantic_ids(*codes):
    summary = semantic_id_summary(pd.DataFrame({"item_idx": range(len(codes)), "codes": list(codes), "rqvae_version": "1"}))
    return with_unknown(summary, "item_idx", [0, 1])


def test_semantic_id_codes_are_bounded_per_position():
    # 2 RQ-VAE levels of 16 codes + a collision code below 64.
    suite = semantic_ids_suite(2, levels=2, codebook_size=16, max_collisions=64)
    validate_frame("semantic_ids", semantic_ids([15, 3, 0], [15, 3, 40]), suite)
    with pytest.raises(ValidationFailed) as err:  # a level code of 40 is out of a 16-code book
        validate_frame("semantic_ids", semantic_ids([40, 3, 0], [15, 3, 1]), suite)
    assert "expect_column_values_to_be_between {'column': 'max_level_code'" in str(err.value)
    with pytest.raises(ValidationFailed) as err:
        validate_frame("semantic_ids", semantic_ids([1, 3, 64], [15, 3, 1]), suite)
    assert "'column': 'collision_code'" in str(err.value)
    with pytest.raises(ValidationFailed) as err:  # two items, one ID
        validate_frame("semantic_ids", semantic_ids([1, 3, 0], [1, 3, 0]), suite)
    assert "expect_column_values_to_be_unique {'column': 'sid'}" in str(err.value)


def test_an_id_for_an_item_outside_the_catalog_fails_naming_it():
    summary = semantic_id_summary(pd.DataFrame({"item_idx": [0, 7], "codes": [[1, 3, 0], [2, 3, 0]], "rqvae_version": "1"}))
    suite = semantic_ids_suite(2, levels=2, codebook_size=16, max_collisions=64)
    with pytest.raises(ValidationFailed) as err:
        validate_frame("semantic_ids", with_unknown(summary, "item_idx", [0, 1]), suite)
    assert "expect_column_values_to_be_null {'column': 'unknown_item_idx'}: 1 unexpected, e.g. [7]" in str(err.value)


def test_a_stored_project_keeps_every_result_and_updates_data_docs(tmp_path):
    from great_expectations import expectations as gxe

    suite = [gxe.ExpectColumnValuesToNotBeNull(column="item_id")]
    with local_mlflow(tmp_path, "validation-test"):  # not an experiment id an earlier test left active
        with mlflow.start_run() as run:
            validate_frame("items", pd.DataFrame({"item_id": ["a", "b"]}), suite, tmp_path)
            with pytest.raises(ValidationFailed, match="validation of 'items' failed"):
                validate_frame("items", pd.DataFrame({"item_id": ["a", None]}), suite, tmp_path)
        logged = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/validation/items.json"))
    assert logged["success"] is False  # the latest result of the boundary, as an artifact of the stage run
    project = tmp_path / "gx"
    assert (project / "checkpoints" / "items_checkpoint.json").is_file()
    assert (project / "validation_definitions" / "items.json").is_file()
    stored = list((project / "uncommitted" / "validations").rglob("*.json"))
    assert len(stored) == 2  # both runs kept
    docs = project / "uncommitted" / "data_docs" / "local_site"
    assert (docs / "index.html").is_file() and len(list((docs / "validations").rglob("*.html"))) == 2
