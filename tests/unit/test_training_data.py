"""The item space maps warehouse item_idx (which may have gaps: retired items, a new catalog)
to dense model positions; these tests pin that mapping and its refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liger_core.errors import DataError
from liger_core.data.training_data import ItemSpace, build_catalog, sequences_in_space

SIZES = (4, 4, 2)


def _tables(item_idx: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sids = pd.DataFrame({"item_idx": item_idx, "codes": [[i % 4, (i // 4) % 4, 0] for i in item_idx]})
    embeddings = pd.DataFrame({"item_idx": item_idx[::-1], "embedding": [[float(i), 1.0] for i in item_idx[::-1]]})
    return sids, embeddings


def test_positions_with_gaps_and_items_outside_the_space() -> None:
    space = ItemSpace(np.array([3, 7, 8, 20], dtype=np.int64))
    asked = np.array([20, 3, 8, 7, 0, 5, 21, 100], dtype=np.int64)
    assert space.positions(asked).tolist() == [3, 0, 2, 1, -1, -1, -1, -1]


def test_catalog_rows_follow_item_idx_order_whatever_the_input_order() -> None:
    catalog, space = build_catalog(*_tables([9, 2, 5]), SIZES)
    assert space.item_idx.tolist() == [2, 5, 9]
    assert catalog.text[:, 0].tolist() == [2.0, 5.0, 9.0]  # row p holds item space.item_idx[p]
    assert catalog.sid.tolist() == [[2, 0, 0], [1, 1, 0], [1, 2, 0]]


def test_an_item_with_an_id_but_no_embedding_is_named() -> None:
    sids, embeddings = _tables([1, 2, 3])
    with pytest.raises(DataError, match=r"1 items lack an embedding \(first item_idx 3\)"):
        build_catalog(sids, embeddings[embeddings.item_idx != 3], SIZES)


def test_sequences_become_positions_and_an_unknown_item_is_refused() -> None:
    space = ItemSpace(np.array([10, 30, 50], dtype=np.int64))
    positions = sequences_in_space(pd.Series([[50, 10], [30]]), space)
    assert [p.tolist() for p in positions] == [[2, 0], [1]]
    with pytest.raises(DataError, match="references item_idx 40"):
        sequences_in_space(pd.Series([[10, 40]]), space)
