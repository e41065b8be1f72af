"""Stable dense item indexes: assigned once, never reused.

The registry (item_id, item_idx, first_seen_ds) only grows. An item that leaves the catalog
keeps its index, so an index seen in old sequences or models never means another item.
"""

from __future__ import annotations

import pandas as pd

from liger_core.errors import DataError

REGISTRY_COLUMNS = ["item_id", "item_idx", "first_seen_ds"]


def empty_registry() -> pd.DataFrame:
    return pd.DataFrame(
        {"item_id": pd.Series(dtype="string"), "item_idx": pd.Series(dtype="int64"), "first_seen_ds": pd.Series(dtype="string")}
    )


def extend_registry(registry: pd.DataFrame | None, item_ids: pd.Series, ds: str) -> pd.DataFrame:
    """Registry with every id in ``item_ids`` present; new ids get max+1, ... in given order."""
    registry = empty_registry() if registry is None else registry[REGISTRY_COLUMNS]
    if registry["item_id"].duplicated().any() or registry["item_idx"].duplicated().any():
        raise DataError("item_index registry is corrupt: duplicate item_id or item_idx")
    known = set(registry["item_id"].tolist())
    new_ids = pd.unique(item_ids[~item_ids.isin(known)])
    start = int(registry["item_idx"].max()) + 1 if len(registry) else 0
    added = pd.DataFrame(
        {
            "item_id": pd.Series(new_ids, dtype="string"),
            "item_idx": pd.Series(range(start, start + len(new_ids)), dtype="int64"),
            "first_seen_ds": pd.Series([ds] * len(new_ids), dtype="string"),
        }
    )
    if registry.empty:
        return added.reset_index(drop=True)
    return pd.concat([registry, added], ignore_index=True).astype(
        {"item_id": "string", "item_idx": "int64", "first_seen_ds": "string"}
    )
