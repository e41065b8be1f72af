"""From table rows to the arrays the model trains on.

The model indexes items by position 0..N-1. ``item_idx`` is dense when nothing has left the
catalog, but an item that was retired keeps its index forever, so positions are mapped
explicitly (``ItemSpace``) and mapped back when recommendations are written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from liger_core.data.catalog import Catalog
from liger_core.config import RQVAEConfig, SemanticIdConfig
from liger_core.errors import DataError


@dataclass(frozen=True)
class ItemSpace:
    """``item_idx[p]`` is the item at model position p."""

    item_idx: np.ndarray

    def positions(self, item_idx: np.ndarray) -> np.ndarray:
        """Model positions of ``item_idx``; -1 for items outside the space."""
        pos = np.searchsorted(self.item_idx, item_idx)
        pos = np.clip(pos, 0, len(self.item_idx) - 1)
        return np.where(self.item_idx[pos] == item_idx, pos, -1)


def code_sizes(rqvae: RQVAEConfig, semantic_ids: SemanticIdConfig) -> tuple[int, ...]:
    """Vocabulary per ID position: the RQ-VAE levels, then the collision code."""
    return (rqvae.codebook_size,) * rqvae.levels + (semantic_ids.max_collisions,)


def build_catalog(sids: pd.DataFrame, embeddings: pd.DataFrame, sizes: tuple[int, ...]) -> tuple[Catalog, ItemSpace]:
    """Join ``semantic_ids`` (item_idx, codes) with ``item_embeddings`` (item_idx, embedding)."""
    merged = sids[["item_idx", "codes"]].merge(embeddings[["item_idx", "embedding"]], on="item_idx", how="outer", indicator=True)
    missing = merged[merged["_merge"] != "both"]
    if len(missing):
        side = {"left_only": "an embedding", "right_only": "a semantic ID"}
        raise DataError(
            f"{len(missing)} items lack {side[missing['_merge'].iloc[0]]} "
            f"(first item_idx {int(missing['item_idx'].iloc[0])}); "
            "rerun `liger embed_items` and `liger semantic_ids` for this ds"
        )
    merged = merged.sort_values("item_idx")
    catalog = Catalog(
        sid=np.asarray(merged["codes"].tolist(), dtype=np.int64),
        text=np.asarray(merged["embedding"].tolist(), dtype=np.float32),
        code_sizes=sizes,
    )
    return catalog, ItemSpace(merged["item_idx"].to_numpy(dtype=np.int64))


def sequences_in_space(items: pd.Series, space: ItemSpace) -> list[np.ndarray]:
    """User histories (lists of item_idx) as model positions; unknown items are an error."""
    out = []
    for history in items:
        pos = space.positions(np.asarray(history, dtype=np.int64))
        if (pos < 0).any():
            raise DataError(
                f"a user sequence references item_idx {int(np.asarray(history)[pos < 0][0])} that has no semantic ID / embedding"
            )
        out.append(pos)
    return out
