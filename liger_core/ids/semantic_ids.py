"""Semantic IDs: RQ-VAE codes plus one collision code, stable across nightly runs.

Items whose L RQ-VAE codes coincide are told apart by an extra last code 0, 1, 2, ...
(TIGER). Under one RQ-VAE version an ID, once given, never changes and never moves to
another item: recommendations and trained models refer to items by these IDs (DESIGN §5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from liger_core.errors import DataError


def _previous_codes(previous: pd.DataFrame, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(item_idx, codes [M, width]) of an earlier assignment, checked for shape."""
    missing = {"item_idx", "codes"} - set(previous.columns)
    if missing:
        raise DataError(f"previous semantic IDs lack column(s) {sorted(missing)}")
    items = previous["item_idx"].to_numpy(dtype=np.int64)
    if len(items) == 0:
        return items, np.empty((0, width), dtype=np.int64)
    try:
        codes = np.array(previous["codes"].tolist(), dtype=np.int64)
    except (TypeError, ValueError):
        codes = None  # ragged lists
    if codes is None or codes.ndim != 2 or codes.shape[1] != width:
        raise DataError(
            f"previous semantic IDs must each have {width} codes (the RQ-VAE "
            "levels plus a collision code); was it made by another RQ-VAE version?"
        )
    duplicated = pd.Series(items).duplicated().to_numpy()
    if duplicated.any():
        raise DataError(f"previous semantic IDs list item_idx {int(items[duplicated][0])} more than once")
    return items, codes


def _count(table: pd.DataFrame, columns: list[str], prefix: tuple[int, ...]) -> int:
    return int((table[columns].to_numpy() == prefix).all(1).sum())


def assign_semantic_ids(
    item_idx: np.ndarray,
    codes: np.ndarray,
    previous: pd.DataFrame | None,
    max_collisions: int,
) -> pd.DataFrame:
    """One ID per item: columns item_idx (int64), codes (L+1 ints), is_new; sorted by item_idx.

    ``codes`` [N, L] are this RQ-VAE's codes for ``item_idx``. Items in ``previous`` (IDs
    from the same RQ-VAE version) keep their ID whatever ``codes`` says now. New items
    take their prefix from ``codes`` and, per prefix, collision codes counting up from
    the largest one already used in ``previous`` plus 1, in item_idx order. "Max + 1"
    rather than "smallest free" means a code freed by a retired item is never handed to
    another one, as long as ``previous`` keeps the retired rows. Raises DataError on an
    empty catalog, duplicated item_idx, a prefix that needs a collision code >=
    ``max_collisions``, or two items ending up with one ID (a corrupt ``previous``).
    """
    item_idx, codes = _checked_catalog(item_idx, codes)
    levels = codes.shape[1]
    if previous is None:
        prev_items, prev_codes = np.empty(0, np.int64), np.empty((0, levels + 1), np.int64)
    else:
        prev_items, prev_codes = _previous_codes(previous, levels + 1)
    known = np.isin(item_idx, prev_items)
    new = _number_collisions(item_idx[~known], codes[~known], prev_codes, max_collisions)

    keep = np.isin(prev_items, item_idx)
    all_items = np.concatenate([prev_items[keep], new["item_idx"].to_numpy()])
    all_codes = np.concatenate([prev_codes[keep], new.drop(columns="item_idx").to_numpy()])
    is_new = np.concatenate([np.zeros(keep.sum(), bool), np.ones(len(new), bool)])
    order = np.argsort(all_items, kind="stable")
    all_items, all_codes, is_new = all_items[order], all_codes[order], is_new[order]

    shared = pd.DataFrame(all_codes).duplicated(keep=False).to_numpy()
    if shared.any():
        raise DataError(
            f"{int(shared.sum())} items share a semantic ID (e.g. item_idx "
            f"{int(all_items[shared][0])} -> {all_codes[shared][0].tolist()}); the previous "
            "semantic IDs are corrupt"
        )
    return pd.DataFrame({"item_idx": all_items, "codes": all_codes.tolist(), "is_new": is_new})


def _checked_catalog(item_idx: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``item_idx`` as int64 and ``codes`` as an array, or a DataError saying what is wrong."""
    item_idx = np.asarray(item_idx)
    codes = np.asarray(codes)
    if item_idx.ndim != 1 or len(item_idx) == 0:
        raise DataError(f"empty catalog: no items to assign semantic IDs to (item_idx shape {item_idx.shape})")
    if codes.ndim != 2 or codes.shape[0] != len(item_idx):
        raise DataError(f"codes must be [items, levels] with one row per item: got {codes.shape} for {len(item_idx)} items")
    item_idx = item_idx.astype(np.int64, copy=False)
    duplicated = pd.Series(item_idx).duplicated()
    if duplicated.any():
        raise DataError(
            f"duplicate item_idx in catalog: {int(duplicated.sum())} repeats, first {int(item_idx[duplicated.to_numpy()][0])}"
        )
    return item_idx, codes


def _number_collisions(new_items: np.ndarray, new_codes: np.ndarray, prev_codes: np.ndarray, max_collisions: int) -> pd.DataFrame:
    """New items in item_idx order with columns item_idx, c0..c{L-1}, collision: per prefix,
    counting up from one past the largest collision code any previous item used."""
    prefix_cols = [f"c{level}" for level in range(new_codes.shape[1])]
    new = pd.DataFrame(new_codes.astype(np.int64), columns=prefix_cols)
    new.insert(0, "item_idx", new_items)
    new = new.sort_values("item_idx", kind="stable")
    used = pd.DataFrame(prev_codes, columns=[*prefix_cols, "collision"])
    next_free = used.groupby(prefix_cols, sort=False)["collision"].max().add(1).rename("base")
    new = new.join(next_free, on=prefix_cols)
    new["collision"] = new.pop("base").fillna(0).astype(np.int64) + new.groupby(prefix_cols, sort=False).cumcount()

    overflow = new["collision"] >= max_collisions
    if overflow.any():
        worst = new.loc[new.loc[overflow, "collision"].idxmax()]
        prefix = tuple(int(worst[c]) for c in prefix_cols)
        n_new, n_old = _count(new, prefix_cols, prefix), _count(used, prefix_cols, prefix)
        raise DataError(
            f"prefix {prefix} needs collision code {int(worst['collision'])} but "
            f"max_collisions is {max_collisions} ({n_new} new and {n_old} existing items "
            "have it): catalog larger than the ID space; retrain the RQ-VAE with more "
            "levels or codes, or raise max_collisions"
        )
    return new


def codes_for_catalog(
    current: list[int], encoded: pd.DataFrame, previous: pd.DataFrame | None, levels: int
) -> tuple[np.ndarray, np.ndarray]:
    """(item_idx sorted, RQ-VAE codes [N, levels]) for every current item: the kept prefix
    for an item that already has an ID (so re-encoding can never move it), the fresh
    ``encoded`` codes for the others. Raises DataError for an item that has neither."""
    prefix = {int(i): np.asarray(c, dtype=np.int64) for i, c in zip(encoded["item_idx"], encoded["codes"])}
    if previous is not None:
        for i, c in zip(previous["item_idx"], previous["codes"]):
            prefix[int(i)] = np.asarray(c[:levels], dtype=np.int64)
    item_idx = np.asarray(sorted(current), dtype=np.int64)
    missing = [int(i) for i in item_idx if int(i) not in prefix]
    if missing:
        raise DataError(
            f"{len(missing)} catalog item(s) have neither an ID nor fresh RQ-VAE codes "
            f"(first item_idx {missing[0]}): their embeddings were not encoded"
        )
    return item_idx, np.stack([prefix[int(i)] for i in item_idx]) if len(item_idx) else np.empty((0, levels), np.int64)


def first_assigned(item_idx: np.ndarray, previous: pd.DataFrame | None, ds: str) -> list[str]:
    """The ds on which each item got its ID: kept from ``previous``, ``ds`` for new items."""
    first = {} if previous is None else dict(zip(previous["item_idx"], previous["assigned_ds"]))
    return [first.get(int(i), ds) for i in item_idx]
