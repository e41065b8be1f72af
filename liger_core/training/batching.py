"""Length-bucketed batches that spend compute on real tokens, not padding.

A unit is either one prefix example (history -> next item) or one user's whole training
sequence (a target at every position). Batches hold units of similar length and about
``batch_targets`` targets each, so a batch pads only to the longest of similar neighbours.

The batches of epoch e are a pure function of (seed, e): a resumed run rebuilds the same
sequence of batches from the epoch and batch number alone, with no sampler state saved.
"""

from __future__ import annotations

import numpy as np

from liger_core.errors import DataError

CHUNK_BATCHES = 50  # batches per sort window: short enough to keep epochs well shuffled


def bucketed_batches(lengths: np.ndarray, targets: np.ndarray, batch_targets: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Unit indices per batch; every unit appears in exactly one batch.

    Units are shuffled, cut into windows of about ``CHUNK_BATCHES`` batches, sorted by
    length inside each window, packed greedily up to ``batch_targets`` targets (a unit
    larger than that gets a batch of its own), and the batches are shuffled again.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    per_unit = max(float(np.mean(targets)), 1.0) if len(targets) else 1.0
    window = max(1, int(CHUNK_BATCHES * batch_targets / per_unit))
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        ends = _pack(targets[chunk], batch_targets)
        batches.extend(np.split(chunk, ends[:-1]))
    return [batches[i] for i in rng.permutation(len(batches))]


def _pack(targets: np.ndarray, budget: int) -> np.ndarray:
    """End offsets of consecutive groups whose target sum stays within ``budget``."""
    ends, total = [], 0
    for i, count in enumerate(targets):
        if total and total + count > budget:
            ends.append(i)
            total = 0
        total += count
    ends.append(len(targets))
    return np.asarray(ends, dtype=np.int64)


class BucketedLoader:
    """This rank's batches of one epoch, cached while the epoch lasts.

    Under data parallelism rank r takes every world-th batch, cut so that all ranks run the
    same number of batches (an epoch drops at most world - 1 batches).
    """

    def __init__(
        self, lengths: np.ndarray, targets: np.ndarray, batch_targets: int, seed: int, rank: int = 0, world: int = 1
    ) -> None:
        if len(lengths) < world:
            raise DataError(f"{len(lengths)} training units cannot be shared by {world} workers")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.batch_targets = max(1, batch_targets // world)
        self.seed, self.rank, self.world = seed, rank, world
        self._epoch = -1
        self._batches: list[np.ndarray] = []

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        if epoch != self._epoch:
            every = bucketed_batches(self.lengths, self.targets, self.batch_targets, self.seed, epoch)
            per_rank = len(every) // self.world
            self._epoch, self._batches = epoch, every[self.rank :: self.world][:per_rank]
        return self._batches

    def batches_in(self, epoch: int) -> int:
        """Number of batches of ``epoch`` (packing makes it vary a little between epochs)."""
        return len(self._epoch_batches(epoch))

    def get(self, epoch: int, batch: int) -> np.ndarray:
        """Unit indices of batch ``batch`` of ``epoch``."""
        return self._epoch_batches(epoch)[batch]
