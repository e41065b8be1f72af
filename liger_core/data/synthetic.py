"""Synthetic catalog and users with planted structure, for tests and smoke runs.

Items belong to clusters; an item's text embedding is its cluster centre plus noise and its
first semantic-ID code is its cluster, so both the code tokens and the text carry the
signal. Users walk the clusters: after an item of cluster k the next item is from cluster
k + 1 (mod n_clusters) with probability ``p_next``, else from a random cluster, and the item
within a cluster is uniform. The best possible Recall@10 is therefore far above what
popularity reaches, so a model that learns anything is visibly better.

Cold items (``cold_per_cluster`` per cluster, item_idx after all others) only ever appear
as the last item of a user with at least 3 items, i.e. as test targets, which exercises
the cold-start paths.
"""

from __future__ import annotations

import numpy as np

from liger_core.data.catalog import Catalog
from liger_core.errors import DataError


def make_synthetic(
    n_clusters: int = 8,
    items_per_cluster: int = 10,
    n_users: int = 500,
    seq_len: tuple[int, int] = (5, 15),
    seed: int = 0,
    text_dim: int = 32,
    levels: int = 3,
    codebook: int = 16,
    cold_per_cluster: int = 1,
    cold_share: float = 0.2,
    p_next: float = 0.8,
    text_noise: float = 0.3,
) -> tuple[Catalog, list[np.ndarray]]:
    """(catalog, sequences); ``seq_len`` is an inclusive range of sequence lengths and
    ``cold_share`` the fraction of users whose last item is a cold item."""
    if codebook < n_clusters:
        raise DataError(f"codebook ({codebook}) must be >= n_clusters ({n_clusters}): code 1 is the cluster")
    if seq_len[0] < 1 or seq_len[1] < seq_len[0]:
        raise DataError(f"seq_len must be a range (low >= 1, high >= low), got {seq_len}")
    rng = np.random.default_rng(seed)
    warm = n_clusters * items_per_cluster
    cluster = np.concatenate(
        [np.repeat(np.arange(n_clusters), items_per_cluster), np.repeat(np.arange(n_clusters), cold_per_cluster)]
    )

    centres = rng.normal(size=(n_clusters, text_dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.normal(size=(len(cluster), text_dim)) * text_noise / np.sqrt(text_dim)
    text = centres[cluster] + noise
    text /= np.linalg.norm(text, axis=1, keepdims=True)

    rest = rng.integers(codebook, size=(len(cluster), levels - 1))
    codes = np.concatenate([cluster[:, None], rest], 1)
    _, group = np.unique(codes, axis=0, return_inverse=True)
    order = np.argsort(group.reshape(-1), kind="stable")
    sorted_group = group.reshape(-1)[order]
    first = np.searchsorted(sorted_group, sorted_group)  # first row of each row's group
    collision = np.empty(len(cluster), dtype=np.int64)
    collision[order] = np.arange(len(order)) - first  # 0, 1, 2, ... within a shared prefix
    sid = np.concatenate([codes, collision[:, None]], 1)
    code_sizes = (codebook,) * levels + (int(collision.max()) + 1,)
    catalog = Catalog(sid, text.astype(np.float32), code_sizes)

    sequences = []
    for _ in range(n_users):
        length = int(rng.integers(seq_len[0], seq_len[1] + 1))
        clusters = np.empty(length, dtype=np.int64)
        clusters[0] = rng.integers(n_clusters)
        for t in range(1, length):
            follow = rng.random() < p_next
            clusters[t] = (clusters[t - 1] + 1) % n_clusters if follow else rng.integers(n_clusters)
        seq = clusters * items_per_cluster + rng.integers(items_per_cluster, size=length)
        if cold_per_cluster and length >= 3 and rng.random() < cold_share:
            seq[-1] = warm + clusters[-1] * cold_per_cluster + rng.integers(cold_per_cluster)
        sequences.append(seq)
    return catalog, sequences
