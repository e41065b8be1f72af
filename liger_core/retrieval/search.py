"""Generative, dense and hybrid (LIGER) top-k retrieval (evaluation: ``retrieval_metrics``).

Generative retrieval runs a beam search over semantic IDs, constrained by a prefix index
so that every finished beam is a real in-set item. Dense retrieval scores items by cosine
between the model's query and item vectors. Hybrid retrieval (LIGER) ranks the union of the
beam's candidates and the cold-start items, which the beam can never produce because they
are not in the index, by the dense head blended with the beam's log-prob (DESIGN §1, §5).

All results are ``Ranked`` tensors [B, K], best first, padded with item -1 / score -inf
when fewer than K items qualify.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from liger_core.data.catalog import Catalog
from liger_core.errors import ConfigError, DataError
from liger_core.model.network import Encoded, Items, LigerModel

SOURCES = ("generative", "cold_start")  # names of the codes in Ranked.source
ITEM_CHUNK = 65_536  # items per forward pass when projecting a whole catalog
BEAMS = 20  # beam width of the generative search unless a caller names another (DESIGN §5)


class Ranked(NamedTuple):
    items: Tensor  # [B, K] item_idx, -1 = no item
    scores: Tensor  # [B, K] descending, -inf where items is -1
    source: Tensor | None = None  # [B, K] int8 index into SOURCES (hybrid only)


class PrefixIndex:
    """Trie over the semantic IDs of an item subset (the in-set items).

    Level l stores its edges in CSR form: the children of depth-l node n are entries
    ptr[n]:ptr[n+1] of (code, child). A child is a depth-(l+1) node id, or at the last
    level the item_idx itself, so a finished beam maps to its item in O(1) by construction.
    """

    def __init__(self, sid: np.ndarray, item_idx: np.ndarray, code_sizes: Sequence[int]) -> None:
        sub, item_idx = np.asarray(sid)[item_idx], np.asarray(item_idx, dtype=np.int64)
        if len(item_idx) == 0:
            raise DataError("prefix index needs at least one item; the in-set is empty")
        order = np.lexsort(sub.T[::-1])
        codes, items = sub[order], item_idx[order]
        changed = np.ones_like(codes, dtype=bool)
        changed[1:] = codes[1:] != codes[:-1]
        # starts[i, l]: row i opens a new prefix of length l + 1
        starts = np.logical_or.accumulate(changed, axis=1)
        if starts[:, -1].sum() != len(items):
            raise DataError("prefix index: two items share a semantic ID")
        self.code_sizes = tuple(int(s) for s in code_sizes)
        self.n_items = len(items)
        self.levels: list[tuple[Tensor, Tensor, Tensor]] = []
        node = np.zeros(len(items), dtype=np.int64)  # depth-0 node of each row: the root
        for level in range(codes.shape[1]):
            rows = np.flatnonzero(starts[:, level])
            child_node = np.cumsum(starts[:, level]) - 1
            child = items[rows] if level == codes.shape[1] - 1 else child_node[rows]
            counts = np.bincount(node[rows], minlength=int(node.max()) + 1)
            ptr = np.concatenate([[0], np.cumsum(counts)])
            self.levels.append((torch.from_numpy(ptr), torch.from_numpy(codes[rows, level].copy()), torch.from_numpy(child)))
            node = child_node

    def to(self, device: torch.device | str) -> PrefixIndex:
        self.levels = [tuple(t.to(device) for t in lv) for lv in self.levels]  # type: ignore[misc]
        return self

    def children(self, level: int, nodes: Tensor) -> Tensor:
        """[R, code_sizes[level]] child of each node per code, -1 where the code is not
        allowed (and for every code of a dead node, -1)."""
        ptr, codes, child = self.levels[level]
        out = torch.full((len(nodes), self.code_sizes[level]), -1, dtype=torch.long, device=nodes.device)
        live = nodes >= 0
        node = nodes.clamp_min(0)
        start = ptr[node]
        count = torch.where(live, ptr[node + 1] - start, 0)
        row = torch.repeat_interleave(torch.arange(len(nodes), device=nodes.device), count)
        first = torch.repeat_interleave(count.cumsum(0) - count, count)
        edge = torch.arange(len(row), device=nodes.device) - first + start[row]
        out[row, codes[edge]] = child[edge]
        return out


@dataclass(frozen=True)
class RetrievalIndex:
    """Everything retrieval needs about a catalog, built once per process and device: item
    features, the prefix index over the in-set items and the cold-start items the beam can
    never reach. It does not depend on the weights; ``item_vectors`` does, so callers
    recompute those when the weights change (each evaluation during training) and keep
    them otherwise (serving)."""

    items: Items
    prefixes: PrefixIndex
    in_set: Tensor  # [M] item_idx the model was trained on, ascending
    cold: Tensor  # [N - M] the other item_idx, ascending

    @classmethod
    def build(cls, items: Items, in_set_mask: np.ndarray, code_sizes: Sequence[int]) -> RetrievalIndex:
        """``in_set_mask``: [N] bool, one flag per item of ``items``."""
        mask = np.asarray(in_set_mask, dtype=bool)
        if mask.shape != (len(items.sid),):
            raise DataError(f"in-set mask has shape {mask.shape}; the catalog has {len(items.sid)} items")
        device = items.sid.device
        in_set = np.flatnonzero(mask)
        prefixes = PrefixIndex(items.sid.cpu().numpy(), in_set, code_sizes).to(device)
        return cls(items, prefixes, torch.from_numpy(in_set).to(device), torch.from_numpy(np.flatnonzero(~mask)).to(device))

    @classmethod
    def from_catalog(cls, catalog: Catalog, in_set_mask: np.ndarray, device: torch.device | str = "cpu") -> RetrievalIndex:
        return cls.build(Items.from_catalog(catalog, device), in_set_mask, catalog.code_sizes)

    def item_vectors(self, model: LigerModel) -> Tensor | None:
        """Dense vectors [N, d] of every item under the model's current weights; None for a
        model without a dense head (tiger)."""
        return all_item_vectors(model, self.items.text) if model.dense else None


@torch.no_grad()
def generative_topk(
    model: LigerModel, encoded: Encoded, index: PrefixIndex, beams: int = BEAMS, exclude: Tensor | None = None
) -> Ranked:
    """Constrained beam search: [B, beams] distinct in-set items by cumulative log-prob.

    At each level a beam may only extend its prefix by a code the index allows, so no
    invalid ID is ever produced. Beams start as one live beam per user (the others at
    -inf), so fewer than ``beams`` live candidates simply leave -1 padding at the end. The
    decoder runs one token per beam and level on a key/value cache (``decode_step``), and
    level 0, where every beam is the BOS token, once per user.
    """
    batch, width = encoded.memory.shape[0], beams
    memory = model.decoder_memory(encoded)
    device = encoded.memory.device
    scores = torch.full((batch, width), -torch.inf, device=device)
    scores[:, 0] = 0.0
    nodes = torch.full((batch, width), -1, dtype=torch.long, device=device)
    nodes[:, 0] = 0
    last_code, cache = None, None
    for level, size in enumerate(index.code_sizes):
        logits, cache = model.decode_step(memory, level, last_code, cache)
        log_prob = logits.log_softmax(-1)
        if level == 0:
            log_prob = log_prob.repeat_interleave(width, 0)
        child = index.children(level, nodes.flatten())
        total = scores.reshape(-1, 1) + log_prob
        total = total.masked_fill(child < 0, -torch.inf).view(batch, width * size)
        scores, flat = total.topk(width, dim=1)
        parent = torch.div(flat, size, rounding_mode="floor")
        nodes = child.view(batch, width * size).gather(1, flat)
        nodes = nodes.masked_fill(scores == -torch.inf, -1)
        last_code = (flat % size).flatten()
        if level + 1 < len(index.code_sizes):
            cache = cache.select(batch, parent if level else torch.zeros_like(parent))
    ranked = Ranked(nodes, scores)
    return ranked if exclude is None else drop_excluded(ranked, exclude)


def drop_excluded(ranked: Ranked, exclude: Tensor) -> Ranked:
    """Remove items listed in ``exclude`` [B, X] (-1 ignored), keeping order, padding at the end."""
    hit = (ranked.items[:, :, None] == exclude[:, None, :]).any(-1) & (ranked.items >= 0)
    scores = ranked.scores.masked_fill(hit, -torch.inf)
    scores, order = scores.sort(dim=1, descending=True, stable=True)
    items = ranked.items.gather(1, order).masked_fill(scores == -torch.inf, -1)
    return Ranked(items, scores)


@torch.no_grad()
def dense_topk(query: Tensor, item_vectors: Tensor, candidate_item_idx: Tensor, k: int, exclude: Tensor | None = None) -> Ranked:
    """Top-k of ``candidate_item_idx`` [M] by cosine of ``query`` [B, d] with their unit-norm
    ``item_vectors`` [M, d]; items in ``exclude`` [B, X] (-1 ignored) are never returned.
    Exact (one matmul): callers batch users so that B x M scores fit in memory."""
    scores = query.float() @ item_vectors.float().T
    if exclude is not None and len(candidate_item_idx):
        column = torch.full((int(candidate_item_idx.max()) + 1,), -1, dtype=torch.long, device=scores.device)
        column[candidate_item_idx] = torch.arange(len(candidate_item_idx), device=scores.device)
        known = (exclude >= 0) & (exclude < len(column))
        col = column[exclude.clamp(0, len(column) - 1)]
        row = torch.arange(len(exclude), device=scores.device)[:, None].expand_as(exclude)
        hit = known & (col >= 0)
        scores[row[hit], col[hit]] = -torch.inf
    top, pos = scores.topk(min(k, scores.shape[1]), dim=1)
    items = candidate_item_idx[pos].masked_fill(top == -torch.inf, -1)
    missing = k - top.shape[1]
    if missing:
        items = torch.cat([items, items.new_full((len(items), missing), -1)], dim=1)
        top = torch.cat([top, top.new_full((len(top), missing), -torch.inf)], dim=1)
    return Ranked(items, top)


class Blend(NamedTuple):
    """How the hybrid combines its heads; chosen on validation (``liger_core.retrieval.calibration``)
    and stored with the model, because the right trade-off depends on the catalog. The
    default is the paper's: the beam's items plus cold items, ranked by the dense head."""

    cold_offset: float = 0.0  # added to a cold item's cosine (-inf: no cold items at all)
    generative_weight: float = 0.0  # cosine per nat of beam log-prob (0: dense-only rank)
    dense_candidates: int = 0  # nearest in-set items the dense head adds to the beam's
    cold_candidates: int = 512  # most cold items per user (train.cold_candidates, or fewer if calibrated)


class SidePool(NamedTuple):
    """A batch's hybrid candidates that do not come from the beam, nearest first by cosine."""

    cold: Ranked  # [B, <=cold_cap] cold-start items
    dense: Ranked  # [B, D] in-set items (D = 0 when the blend adds none)


@torch.no_grad()
def side_pool(
    query: Tensor,
    item_vectors: Tensor,
    cold_items: Tensor,
    *,
    cold_cap: int,
    dense_candidates: int = 0,
    exclude: Tensor | None = None,
) -> SidePool:
    """The nearest ``cold_cap`` cold items and ``dense_candidates`` in-set items per user
    (exact matmul top-n, which bounds the hybrid's work per user whatever the catalog's size)."""
    cold = dense_topk(query, item_vectors[cold_items], cold_items, min(cold_cap, len(cold_items)), exclude)
    in_set = torch.ones(len(item_vectors), dtype=torch.bool, device=item_vectors.device)
    in_set[cold_items] = False
    in_set_items = in_set.nonzero().squeeze(1)
    dense = dense_topk(query, item_vectors[in_set_items], in_set_items, min(dense_candidates, len(in_set_items)), exclude)
    return SidePool(cold, dense)


@torch.no_grad()
def hybrid_rank(
    query: Tensor,
    item_vectors: Tensor,
    generated: Ranked,
    pool: SidePool,
    k: int,
    exclude: Tensor | None = None,
    blend: Blend = Blend(),
) -> Ranked:
    """LIGER: rank the beam's candidates ``generated`` [B, K], the first
    ``blend.dense_candidates`` of the dense head's own and the first ``blend.cold_candidates``
    cold-start items of ``pool`` (nearest first, so at most that many cold slots per user).

    A beam candidate scores its dense cosine plus ``blend.generative_weight`` times its
    log-prob relative to the user's best beam, so the generative head's confidence is not
    thrown away. An in-set item the beam did not produce scores as the user's weakest live
    beam would: the generative head ranked it lower than that. A cold item cannot be in the
    beam at all, so its absence says nothing: it scores its cosine plus ``blend.cold_offset``,
    because the dense head is trained on in-set items only and how far a cold cosine can be
    trusted is a property of the catalog.
    ``item_vectors`` [N, d] covers the whole catalog. ``source`` indexes SOURCES: an in-set
    item (the generative index holds it) is 'generative', an unseen one 'cold_start'.
    """
    beam_items = generated.items
    present = beam_items >= 0
    if exclude is not None:
        present &= ~(beam_items[:, :, None] == exclude[:, None, :]).any(-1)
    log_prob = generated.scores.float().masked_fill(~present, torch.nan)
    best = log_prob.nan_to_num(-torch.inf).amax(1, keepdim=True)
    weakest = log_prob.nan_to_num(torch.inf).amin(1, keepdim=True)
    behind = (weakest - best).nan_to_num(0.0, posinf=0.0, neginf=0.0) * blend.generative_weight
    beam_scores = torch.einsum("bd,bkd->bk", query.float(), item_vectors[beam_items.clamp_min(0)].float())
    if blend.generative_weight:
        beam_scores = beam_scores + blend.generative_weight * (log_prob - best).nan_to_num(0.0)
    candidates, scores = [beam_items.masked_fill(~present, -1)], [beam_scores.masked_fill(~present, -torch.inf)]
    dense = Ranked(pool.dense.items[:, : blend.dense_candidates], pool.dense.scores[:, : blend.dense_candidates])
    cold = Ranked(pool.cold.items[:, : blend.cold_candidates], pool.cold.scores[:, : blend.cold_candidates])
    for side, shift in ((dense, behind), (cold, blend.cold_offset)):
        in_beam = (side.items[:, :, None] == beam_items[:, None, :]).any(-1)
        candidates.append(side.items)
        scores.append((side.scores + shift).masked_fill(in_beam | (side.items < 0), -torch.inf))
    all_items, all_scores = torch.cat(candidates, 1), torch.cat(scores, 1)
    source = torch.zeros_like(all_items, dtype=torch.int8)
    source[:, all_items.shape[1] - cold.items.shape[1] :] = 1
    k_out = min(k, all_items.shape[1])
    top, pos = all_scores.topk(k_out, dim=1)
    items = all_items.gather(1, pos).masked_fill(top == -torch.inf, -1)
    source = source.gather(1, pos)
    if k_out < k:
        pad = k - k_out
        items = torch.cat([items, items.new_full((len(items), pad), -1)], 1)
        top = torch.cat([top, top.new_full((len(top), pad), -torch.inf)], 1)
        source = torch.cat([source, source.new_zeros(len(source), pad)], 1)
    return Ranked(items, top, source)


@torch.no_grad()
def hybrid_topk(
    query: Tensor,
    item_vectors: Tensor,
    generated: Ranked,
    cold_items: Tensor,
    k: int,
    exclude: Tensor | None = None,
    blend: Blend = Blend(),
) -> Ranked:
    """``hybrid_rank`` with the side pool the blend asks for (see there)."""
    pool = side_pool(
        query, item_vectors, cold_items, cold_cap=blend.cold_candidates, dense_candidates=blend.dense_candidates, exclude=exclude
    )
    return hybrid_rank(query, item_vectors, generated, pool, k, exclude, blend)


@torch.no_grad()
def all_item_vectors(model: LigerModel, text: Tensor) -> Tensor:
    """Dense vectors [N, d] for every item, ITEM_CHUNK rows at a time."""
    rows = torch.arange(len(text), device=text.device)
    return torch.cat([model.item_vectors(chunk, at) for chunk, at in zip(text.split(ITEM_CHUNK), rows.split(ITEM_CHUNK))])


@torch.no_grad()
def recommend(
    model: LigerModel,
    history: Tensor,
    index: RetrievalIndex,
    vectors: Tensor | None,
    k: int,
    *,
    beams: int = BEAMS,
    exclude_history: bool = True,
    blend: Blend = Blend(),
    block_dtype: torch.dtype | None = None,
) -> Ranked:
    """Top-k per user with the mode's own method: hybrid (liger), constrained beam search
    with max(beams, k) beams (tiger, so that k items come back) or dense over the whole
    catalog (dense). ``history``: [B, H] as ``pad_histories`` makes it; ``vectors``:
    ``index.item_vectors(model)``. Runs in eval mode whatever mode the model is in, its
    Transformer blocks under ``block_dtype`` autocast when one is given."""
    exclude = history if exclude_history else None
    if model.dense and vectors is None:
        raise ConfigError(f"a {model.mode} model ranks with item vectors: pass index.item_vectors(model)")
    with eval_mode(model, block_dtype):
        encoded = model.encode(history, index.items)
        if model.generative and model.dense and vectors is not None:
            generated = generative_topk(model, encoded, index.prefixes, beams, exclude)
            return hybrid_topk(encoded.dense_query, vectors, generated, index.cold, k, exclude, blend)
        if model.generative:
            top = generative_topk(model, encoded, index.prefixes, max(beams, k), exclude)
            return Ranked(top.items[:, :k], top.scores[:, :k], torch.zeros_like(top.items[:, :k], dtype=torch.int8))
        assert vectors is not None  # dense mode, checked above
        everything = torch.arange(len(vectors), device=vectors.device)
        ranked = dense_topk(encoded.dense_query, vectors, everything, k, exclude)
        return ranked._replace(source=torch.isin(ranked.items, index.cold).to(torch.int8))


@contextmanager
def eval_mode(model: LigerModel, block_dtype: torch.dtype | None = None) -> Iterator[None]:
    """No dropout while ranking, and the Transformer blocks under ``block_dtype`` autocast
    (``recommend.precision``; None: float32); the caller's settings are restored afterwards."""
    was_training, was_dtype = model.training, model.block_dtype
    model.eval()
    model.block_dtype = block_dtype
    try:
        yield
    finally:
        model.train(was_training)
        model.block_dtype = was_dtype
