"""The item side of the model: one semantic ID and one text embedding per dense item_idx.

Row i of every array describes item_idx i, so lookups are plain indexing. Everything is
checked once here, because a bad code or a NaN embedding would otherwise surface as an
index error or a NaN loss deep inside training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liger_core.errors import DataError


@dataclass(frozen=True)
class Catalog:
    """``sid``: [N, C] int64 codes (RQ-VAE levels + collision code), column c in
    0..code_sizes[c]-1 and unique per item. ``text``: [N, D] float32 text embeddings
    (unit norm from the embedding stage; not required here, the model projects them)."""

    sid: np.ndarray
    text: np.ndarray
    code_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        sid, text = np.asarray(self.sid), np.asarray(self.text)
        if sid.ndim != 2 or sid.shape[0] == 0 or sid.shape[1] == 0:
            raise DataError(f"sid must be a non-empty [items, codes] array, got shape {sid.shape}")
        if not np.issubdtype(sid.dtype, np.integer):
            raise DataError(f"sid must hold integers, got dtype {sid.dtype}")
        if text.ndim != 2 or text.shape[0] != sid.shape[0] or text.shape[1] == 0:
            raise DataError(f"text must be [items={sid.shape[0]}, dim] to match sid, got shape {text.shape}")
        if not np.issubdtype(text.dtype, np.number):
            raise DataError(f"text must be numeric, got dtype {text.dtype}")
        code_sizes = tuple(int(s) for s in self.code_sizes)
        if len(code_sizes) != sid.shape[1] or min(code_sizes) < 1:
            raise DataError(f"code_sizes {code_sizes} must give one positive size per sid column ({sid.shape[1]} columns)")
        bad_text = ~np.isfinite(text).all(1)
        if bad_text.any():
            raise DataError(
                f"text embeddings contain NaN/inf for {int(bad_text.sum())} items (first item_idx {int(bad_text.argmax())})"
            )
        for c, size in enumerate(code_sizes):
            out = (sid[:, c] < 0) | (sid[:, c] >= size)
            if out.any():
                i = int(out.argmax())
                raise DataError(
                    f"sid column {c} must be in [0, {size}): item_idx {i} has {int(sid[i, c])} "
                    f"({int(out.sum())} items out of range)"
                )
        _, first, counts = np.unique(sid, axis=0, return_index=True, return_counts=True)
        if (counts > 1).any():
            dup = int(first[counts > 1][0])
            raise DataError(
                f"semantic IDs must be unique: {int((counts > 1).sum())} IDs are shared, "
                f"e.g. {sid[dup].tolist()} (item_idx {dup}); the collision code should "
                "separate them"
            )
        object.__setattr__(self, "sid", np.ascontiguousarray(sid, dtype=np.int64))
        object.__setattr__(self, "text", np.ascontiguousarray(text, dtype=np.float32))
        object.__setattr__(self, "code_sizes", code_sizes)

    @property
    def n_items(self) -> int:
        return self.sid.shape[0]

    @property
    def n_codes(self) -> int:
        return self.sid.shape[1]

    @property
    def text_dim(self) -> int:
        return self.text.shape[1]
