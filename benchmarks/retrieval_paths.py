"""The top-k paths the inference benchmarks compare, on one model and one catalog.

``production``: the serving path, ``liger_core.retrieval.search.recommend`` (beam search constrained
by the prefix index, then the dense head ranks the beam's items plus the cold-start items).
``naive``: the same hybrid ranking fed by an unconstrained beam search whose finished codes
are mapped to items by comparing them with every item's semantic ID; codes that are no
item's ID are lost ("invalid IDs"). ``dense``: the dense head scores the whole catalog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from liger_core.model.network import Encoded, Items, LigerModel
from liger_core.retrieval.search import Ranked, RetrievalIndex, dense_topk, generative_topk, hybrid_topk, recommend

SCAN_CHUNK = 65_536  # items compared per step when mapping codes to items


@dataclass
class Catalogue:
    """Everything a path needs, built once per catalog (the "index build"): the model, the
    production retrieval index and the dense vector of every item (a liger-mode model)."""

    model: LigerModel
    index: RetrievalIndex
    vectors: Tensor  # [N, d]

    @classmethod
    def build(cls, model: LigerModel, items: Items, in_set: np.ndarray) -> tuple[Catalogue, dict[str, float]]:
        """The catalogue and the seconds its retrieval index and item vectors took."""
        model.eval()
        started = time.perf_counter()
        index = RetrievalIndex.build(items, in_set, model.code_sizes)
        index_seconds = time.perf_counter() - started
        started = time.perf_counter()
        vectors = index.item_vectors(model)
        vector_seconds = time.perf_counter() - started
        return cls(model, index, vectors), {"prefix_index_seconds": index_seconds, "item_vectors_seconds": vector_seconds}


@torch.no_grad()
def unconstrained_beam(model: LigerModel, encoded: Encoded, beams: int) -> tuple[Tensor, Tensor]:
    """Plain beam search over every code at every level: codes [B, beams, C] and cumulative
    log-probs [B, beams]. Nothing stops a beam from spelling an ID that no item has."""
    memory = model.decoder_memory(encoded)
    batch, device = encoded.memory.shape[0], encoded.memory.device
    scores = torch.full((batch, beams), -torch.inf, device=device)
    scores[:, 0] = 0.0
    prefix = torch.zeros(batch, beams, 0, dtype=torch.long, device=device)
    for level, size in enumerate(model.code_sizes):
        logits = model.next_code_logits(memory, prefix.flatten(0, 1)).log_softmax(-1)
        total = (scores.reshape(-1, 1) + logits).view(batch, beams * size)
        scores, flat = total.topk(beams, dim=1)
        parent = torch.div(flat, size, rounding_mode="floor")
        prefix = torch.cat([prefix.gather(1, parent[..., None].expand(-1, -1, level)), (flat % size)[..., None]], dim=2)
    return prefix, scores


def items_by_scan(codes: Tensor, sid: Tensor, item_idx: Tensor) -> Tensor:
    """item_idx [B, K] whose semantic ID equals ``codes`` [B, K, C], -1 where none does,
    by comparing every code tuple with every row of ``sid`` [M, C] (the naive mapping)."""
    flat = codes.reshape(-1, codes.shape[-1])
    found = torch.full((len(flat),), -1, dtype=torch.long, device=codes.device)
    for start in range(0, len(sid), SCAN_CHUNK):
        chunk = sid[start : start + SCAN_CHUNK]
        same = torch.ones(len(flat), len(chunk), dtype=torch.bool, device=codes.device)
        for level in range(flat.shape[1]):
            same &= flat[:, level, None] == chunk[None, :, level]
        row, col = same.nonzero(as_tuple=True)
        found[row] = item_idx[start + col]
    return found.view(codes.shape[:2])


def production(catalogue: Catalogue, history: Tensor, k: int, beams: int, block_dtype: torch.dtype | None = None) -> Ranked:
    return recommend(catalogue.model, history, catalogue.index, catalogue.vectors, k, beams=beams, block_dtype=block_dtype)


def constrained_candidates(catalogue: Catalogue, history: Tensor, beams: int) -> Tensor:
    """item_idx [B, beams] the production beam produces (-1: fewer live beams)."""
    encoded = catalogue.model.encode(history, catalogue.index.items)
    return generative_topk(catalogue.model, encoded, catalogue.index.prefixes, beams).items


def naive(catalogue: Catalogue, history: Tensor, k: int, beams: int) -> tuple[Ranked, Tensor]:
    """Hybrid top-k fed by the unconstrained beam; also the mapped beam items [B, beams]."""
    items = catalogue.index.items
    encoded = catalogue.model.encode(history, items)
    codes, log_prob = unconstrained_beam(catalogue.model, encoded, beams)
    mapped = items_by_scan(codes, items.sid, torch.arange(len(items.sid), device=codes.device))
    return hybrid_topk(
        encoded.query, catalogue.vectors, Ranked(mapped, log_prob), catalogue.index.cold, k, exclude=history
    ), mapped


def dense(catalogue: Catalogue, history: Tensor, k: int) -> Ranked:
    encoded = catalogue.model.encode(history, catalogue.index.items)
    everything = torch.arange(len(catalogue.vectors))
    return dense_topk(encoded.query, catalogue.vectors, everything, k, exclude=history)


def invalid_rate(candidates: Tensor) -> float:
    """Share of beam outputs [B, beams] that are no item (-1)."""
    return float((candidates < 0).float().mean())


def timed(batches: list[Tensor], path: Callable[[Tensor], object]) -> tuple[float, list]:
    """Seconds to run ``path`` over every batch (after one warm-up batch), and the outputs."""
    with torch.no_grad():
        path(batches[0][:8])
        started = time.perf_counter()
        outputs = [path(batch) for batch in batches]
    return time.perf_counter() - started, outputs
