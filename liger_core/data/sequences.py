"""Leave-one-out split of user sequences (the LIGER evaluation protocol, DESIGN §5).

Each user's sequence (item_idx in time order) is cut to its last ``max_len`` items. The last
item is the test target, the second last the validation target, and every earlier position
t >= 1 is a training example (history = items before t, target = item t). A user with fewer
than 3 items has no validation or test target; all of their items are training data.

Examples are kept as (user, position) pairs over one flat array of the truncated sequences
and expanded into padded batches on demand: materialising every prefix would cost
O(users x max_len^2) memory for what is O(users x max_len) of information.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from liger_core.errors import DataError

PAD = -1  # history slot without an item


def pad_histories(histories: Sequence[np.ndarray], max_history: int) -> np.ndarray:
    """[B, H] int64 of each history's last ``max_history`` items, right-aligned, PAD-filled.

    Right alignment puts every user's most recent item in the last slot, where the model
    reads its dense query. H is the longest (truncated) history, so short batches stay small.
    """
    cut = [np.asarray(h, dtype=np.int64)[-max_history:] for h in histories]
    if any(len(h) == 0 for h in cut):
        raise DataError("every history needs at least one item; got an empty history")
    width = max((len(h) for h in cut), default=0)
    out = np.full((len(cut), width), PAD, dtype=np.int64)
    for row, h in enumerate(cut):
        out[row, width - len(h) :] = h
    return out


@dataclass(frozen=True)
class Examples:
    """(user, position) pairs over the flat sequences: history = items before ``position``,
    target = item at ``position``. ``is_cold``: the target never occurs in training."""

    items: np.ndarray  # flat truncated sequences, shared with the Split
    offsets: np.ndarray  # [users + 1] start of each user's sequence in ``items``
    users: np.ndarray  # [E]
    positions: np.ndarray  # [E], >= 1
    is_cold: np.ndarray  # [E] bool

    def __len__(self) -> int:
        return len(self.users)

    @property
    def targets(self) -> np.ndarray:
        return self.items[self.offsets[self.users] + self.positions]

    def history(self, row: int) -> np.ndarray:
        start = self.offsets[self.users[row]]
        return self.items[start : start + self.positions[row]]

    def batch(self, rows: np.ndarray, max_history: int) -> tuple[np.ndarray, np.ndarray]:
        """(histories [B, H] as ``pad_histories`` lays them out, targets [B]) for ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        start = self.offsets[self.users[rows]]
        pos = self.positions[rows]
        width = int(min(max_history, pos.max())) if len(rows) else 0
        rel = pos[:, None] - width + np.arange(width)  # sequence position of each slot
        history = np.where(rel >= 0, self.items[start[:, None] + np.maximum(rel, 0)], PAD)
        return history, self.items[start + pos]

    def causal_batch(self, rows: np.ndarray, max_history: int) -> tuple[np.ndarray, np.ndarray]:
        """(histories [B, W], targets [B, W]) for training at every position: ``rows`` name
        each user's last example; slot j of the history is followed by target j (-1 under
        padding). Sequences longer than ``max_history`` lose their earliest targets."""
        history, _ = self.batch(rows, max_history)
        rows = np.asarray(rows, dtype=np.int64)
        start, pos = self.offsets[self.users[rows]], self.positions[rows]
        rel = pos[:, None] - history.shape[1] + np.arange(history.shape[1]) + 1
        targets = np.where(rel >= 1, self.items[start[:, None] + np.maximum(rel, 0)], PAD)
        return history, targets

    def last_rows(self) -> np.ndarray:
        """Row of each user's last example (the examples of a user are contiguous and in
        position order, as ``build_split`` makes them)."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64)
        last = np.flatnonzero(np.r_[self.users[1:] != self.users[:-1], True])
        return last.astype(np.int64)

    def subset(self, rows: np.ndarray) -> Examples:
        return Examples(self.items, self.offsets, self.users[rows], self.positions[rows], self.is_cold[rows])


@dataclass(frozen=True)
class Split:
    """Truncated sequences plus the three example sets; ``in_set[i]``: item i occurs in a
    training history or target (the items generative retrieval can produce)."""

    items: np.ndarray
    offsets: np.ndarray
    train: Examples
    valid: Examples
    test: Examples
    in_set: np.ndarray  # [n_items] bool
    max_len: int

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_items(self) -> int:
        return len(self.in_set)

    def sequence(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user] : self.offsets[user + 1]]


def build_split(sequences: Sequence[np.ndarray], max_len: int = 20, n_items: int | None = None) -> Split:
    """Split per the protocol; user u is ``sequences[u]``. ``n_items`` sizes ``in_set``
    (default: largest item_idx + 1; pass the catalog size so that cold items fit)."""
    if max_len < 3:
        raise DataError(f"max_len must be >= 3 to hold train, validation and test, got {max_len}")
    cut = []
    for u, seq in enumerate(sequences):
        seq = np.asarray(seq)
        if seq.ndim != 1 or (seq.size and not np.issubdtype(seq.dtype, np.integer)):
            raise DataError(f"sequence of user {u} must be a 1-D integer array, got {seq.dtype}{seq.shape}")
        cut.append(seq[-max_len:].astype(np.int64))
    lengths = np.array([len(s) for s in cut], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.concatenate(cut) if cut else np.zeros(0, dtype=np.int64)
    if items.size and items.min() < 0:
        raise DataError(f"item_idx must be >= 0, got {int(items.min())}")
    largest = int(items.max()) + 1 if items.size else 0
    n_items = largest if n_items is None else n_items
    if largest > n_items:
        raise DataError(f"sequences reference item_idx {largest - 1} but n_items is {n_items}")

    has_eval = lengths >= 3
    train_len = np.where(has_eval, lengths - 2, lengths)  # training portion of each sequence
    per_user = np.maximum(train_len - 1, 0)  # positions 1 .. train_len - 1
    train_users = np.repeat(np.arange(len(cut)), per_user)
    first_row = np.repeat(np.cumsum(per_user) - per_user, per_user)
    train_pos = np.arange(len(train_users)) - first_row + 1

    # Flat positions inside a training portion that has at least one example.
    for_user = np.repeat(np.arange(len(cut)), lengths)
    slot = np.arange(len(items)) - offsets[for_user]
    in_train = (slot < train_len[for_user]) & (per_user[for_user] > 0)
    in_set = np.zeros(n_items, dtype=bool)
    in_set[items[in_train]] = True

    def examples(users: np.ndarray, positions: np.ndarray) -> Examples:
        targets = items[offsets[users] + positions]
        return Examples(items, offsets, users, positions, ~in_set[targets])

    eval_users = np.flatnonzero(has_eval)
    return Split(
        items=items,
        offsets=offsets,
        train=examples(train_users, train_pos),
        valid=examples(eval_users, lengths[eval_users] - 2),
        test=examples(eval_users, lengths[eval_users] - 1),
        in_set=in_set,
        max_len=max_len,
    )
