"""LIGER: one encoder-decoder Transformer trained for generative and dense retrieval.

The encoder reads a user's history as semantic-ID tokens (C tokens per item). Its state at
the last token becomes a unit-norm dense query, scored against projected item text
embeddings (dense retrieval). The decoder generates the next item's C codes from that
memory (generative retrieval). Modes (DESIGN §5): ``tiger`` trains only the code decoder and
never reads text, ``dense`` only the dense head, ``liger`` both. Parts a mode does not use
are not built, so every parameter gets a gradient (which DistributedDataParallel needs).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import NamedTuple, Sequence, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liger_core.data.catalog import Catalog
from liger_core.config import ModelConfig
from liger_core.errors import ConfigError, DataError
from liger_core.model.transformer import Block, DecoderCache, DecoderMemory, causal_item_mask, mlp
from liger_core.model.dropout import Dropout

MODES = ("tiger", "dense", "liger")


class Items(NamedTuple):
    """Item features indexed by item_idx, kept on the model's device."""

    sid: Tensor  # [N, C] long
    text: Tensor  # [N, D] float

    @classmethod
    def from_catalog(cls, catalog: Catalog, device: torch.device | str = "cpu") -> Items:
        return cls(torch.from_numpy(catalog.sid).to(device), torch.from_numpy(catalog.text).to(device))


@dataclass
class Batch:
    """Training examples laid out as ``pad_histories`` lays out histories.

    ``history``: [B, W] item_idx, right-aligned, -1 = padding. ``target``: [B, W] the item
    that follows each slot's prefix, -1 where that slot carries no loss. A causal batch
    (one sequence per user) has a target at every real slot; a prefix batch only in the
    last column. ``candidate_target``: [B, W] position of each target in ``candidates``
    (the in-set item_idx the dense loss ranks over), -1 where there is no target.
    """

    history: Tensor
    target: Tensor
    items: Items
    candidates: Tensor
    candidate_target: Tensor


class Encoded(NamedTuple):
    memory: Tensor  # [B, T, d] encoder states, T = H * C
    padding: Tensor  # [B, T] bool, True where the token is padding
    query: Tensor | None  # [B, d] unit-norm dense query (None in tiger mode)

    @property
    def dense_query(self) -> Tensor:
        """``query`` where a dense head must exist (dense and hybrid ranking)."""
        if self.query is None:
            raise ConfigError("model.mode=tiger has no dense head; use generative retrieval")
        return self.query


class TextTower(nn.Module):
    """Text embedding -> d_model, shared by the input tokens and the dense item vectors.

    Sentence embeddings of one catalog are nearly parallel (mean pairwise cosine ~0.99), so
    they are first standardised per dimension with the training catalog's statistics, kept
    as buffers: they travel with the weights and are applied identically to cold items at
    serving. A linear map then a residual LayerNorm MLP as wide as the feed-forward layers
    leaves room for collaborative signal on top of the text.
    """

    mean: Tensor  # [text_dim] buffers: the training catalog's per-dimension statistics
    std: Tensor

    def __init__(self, text_dim: int, d_model: int, hidden: int, dropout: float, n_items: int = 0) -> None:
        super().__init__()
        # Optional free vector per in-set item (rows of items never trained stay 0, so a
        # cold item is its text alone); ``n_items`` 0 means text only.
        self.item_id = nn.Embedding(n_items, d_model) if n_items else None
        if self.item_id is not None:
            nn.init.zeros_(self.item_id.weight)
        self.register_buffer("mean", torch.zeros(text_dim))
        self.register_buffer("std", torch.ones(text_dim))
        self.inp = nn.Linear(text_dim, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.mlp = mlp(d_model, d_model, hidden)
        self.dropout = Dropout(dropout)

    @torch.no_grad()
    def fit_statistics(self, text: Tensor) -> None:
        """Per-dimension mean and std of the catalog's text embeddings [N, D]."""
        self.mean.copy_(text.mean(0))
        self.std.copy_(text.std(0, unbiased=False).clamp_min(1e-6))

    def forward(self, text: Tensor, rows: Tensor | None = None) -> Tensor:
        """``rows``: catalog row of each text, for the item-ID term (None: text only)."""
        # Standardisation folded into the first layer: [D, d] work instead of [N, D].
        weight = self.inp.weight / self.std
        h = F.linear(text, weight, self.inp.bias - weight @ self.mean)
        if self.item_id is not None and rows is not None:
            h = h + self.item_id(rows)
        return h + self.dropout(self.mlp(self.norm(h)))


class LigerModel(nn.Module):
    """Item i at history position p (0 = the oldest item kept) contributes C tokens, one per
    code level l: code embedding + level embedding + position embedding of p +
    TextTower(text of i).

    The encoder is causal over items: the state at slot t depends on items up to t only, so
    one pass over a user's sequence trains a prediction at every position (as SASRec does),
    and a history ranked at serving is encoded exactly as its last training position was.
    """

    offsets: Tensor  # [C] buffer: first row of each level in code_emb
    # Autocast dtype of the Transformer blocks while ranking (``search.eval_mode``); None: as called.
    block_dtype: torch.dtype | None = None

    def __init__(self, cfg: ModelConfig, code_sizes: Sequence[int], text_dim: int, n_items: int = 0) -> None:
        super().__init__()
        if cfg.d_model % cfg.heads:
            raise ConfigError(f"model.d_model ({cfg.d_model}) must be divisible by model.heads ({cfg.heads})")
        self.cfg, self.mode, self.text_dim = cfg, cfg.mode, text_dim
        self.code_sizes = tuple(int(s) for s in code_sizes)
        self.max_history = cfg.max_history
        n_codes, d = len(self.code_sizes), cfg.d_model

        # One table for all levels; level l's code k is row offsets[l] + k.
        offsets = torch.tensor([0, *self.code_sizes[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.code_emb = nn.Embedding(sum(self.code_sizes), d)
        self.level_emb = nn.Embedding(n_codes, d)
        self.pos_emb = nn.Embedding(cfg.max_history, d)
        for table in (self.code_emb, self.level_emb, self.pos_emb):
            nn.init.normal_(table.weight, std=0.02)
        if cfg.item_ids and cfg.mode != "tiger" and n_items < 1:
            raise ConfigError("model.item_ids needs the catalog size (n_items)")
        self.text = (
            TextTower(text_dim, d, cfg.ff_dim, cfg.dropout, n_items if cfg.item_ids else 0) if cfg.mode != "tiger" else None
        )
        self.in_norm = nn.LayerNorm(d)
        self.dropout = Dropout(cfg.dropout)

        def blocks(n: int, cross: bool) -> nn.ModuleList:
            return nn.ModuleList(Block(d, cfg.heads, cfg.ff_dim, cfg.dropout, cross) for _ in range(n))

        self.encoder = blocks(cfg.encoder_layers, cross=False)
        self.enc_norm = nn.LayerNorm(d)
        if self.generative:
            self.bos = nn.Parameter(torch.randn(d) * 0.02)
            self.step_emb = nn.Embedding(n_codes, d)
            nn.init.normal_(self.step_emb.weight, std=0.02)
            self.dec_in_norm = nn.LayerNorm(d)
            self.decoder = blocks(cfg.decoder_layers, cross=True)
            self.dec_norm = nn.LayerNorm(d)
            self.code_heads = nn.ModuleList(nn.Linear(d, size) for size in self.code_sizes)
        if self.dense:
            self.query_head = nn.Linear(d, d)

    @property
    def decoder_blocks(self) -> Sequence[Block]:
        """The decoder layers with their type (iterating a ModuleList yields plain Modules)."""
        return cast(Sequence[Block], self.decoder)

    @property
    def generative(self) -> bool:
        return self.mode != "dense"

    @property
    def dense(self) -> bool:
        return self.mode != "tiger"

    def encode(self, history: Tensor, items: Items) -> Encoded:
        """Encoder memory over the history's tokens (item-major, level-minor) and the query
        of the latest item (the last slot: histories are right-aligned)."""
        memory, padding = self._encode_tokens(history, items)
        query = self._query(memory[:, -1]) if self.dense else None
        return Encoded(memory, padding, query)

    def _encode_tokens(self, history: Tensor, items: Items) -> tuple[Tensor, Tensor]:
        width, n_codes = history.shape[1], len(self.code_sizes)
        if width > self.max_history:
            raise DataError(f"history has {width} items; the model takes at most {self.max_history}")
        present = history >= 0
        idx = history.clamp_min(0)
        x = self.code_emb(items.sid[idx] + self.offsets)  # [B, W, C, d]
        x = x + self.level_emb.weight
        # Positions count from the history's first item, so the state at slot t of a training
        # sequence and the last state of the same t + 1 items at serving are computed alike.
        positions = (present.cumsum(1) - 1).clamp_min(0)
        x = x + self.pos_emb(positions)[:, :, None]
        if self.text is not None:
            x = x + self.text(items.text[idx], idx)[:, :, None]
        x = self.dropout(self.in_norm(x)).flatten(1, 2)  # [B, W * C, d]
        mask = causal_item_mask(present, n_codes)
        with self._blocks_precision(x):
            for block in self.encoder:
                x = block(x, mask)
        return self.enc_norm(x.float()), (~present).repeat_interleave(n_codes, dim=1)

    def _blocks_precision(self, x: Tensor) -> AbstractContextManager:
        """Autocast to ``block_dtype`` around the Transformer blocks only: they hold nearly all
        the arithmetic, while the embeddings, norms, heads, item vectors and every score stay
        float32, so bfloat16 never quantises a ranking score. Without a ``block_dtype`` it
        changes nothing, and a trainer's own autocast (CUDA) still applies."""
        return nullcontext() if self.block_dtype is None else torch.autocast(x.device.type, dtype=self.block_dtype)

    def _query(self, state: Tensor) -> Tensor:
        return F.normalize(self.query_head(state), dim=-1)

    def decoder_memory(self, encoded: Encoded) -> DecoderMemory:
        """Cross-attention keys/values of every decoder layer, for ``next_code_logits``."""
        with self._blocks_precision(encoded.memory):
            kv = [block.cross_keys_values(encoded.memory) for block in self.decoder_blocks]
        return DecoderMemory(kv, ~encoded.padding[:, None, None, :])

    def _decoder_inputs(self, prefix: Tensor) -> Tensor:
        """[R, s + 1, d] decoder inputs BOS, codes of ``prefix`` [R, s]."""
        steps = prefix.shape[1] + 1
        codes = self.code_emb(prefix + self.offsets[: steps - 1])
        x = torch.cat([self.bos.expand(len(prefix), 1, -1), codes], dim=1)
        return self.dropout(self.dec_in_norm(x + self.step_emb.weight[:steps]))

    def _decode(self, memory: DecoderMemory, x: Tensor, mask: Tensor | None = None) -> Tensor:
        with self._blocks_precision(x):
            for layer, block in enumerate(self.decoder):
                x = block(x, mask, causal=mask is None, memory=memory, layer=layer)
        return self.dec_norm(x.float())

    def next_code_logits(self, memory: DecoderMemory, prefix: Tensor) -> Tensor:
        """Float32 logits [B * G, code_sizes[s]] of code s given ``prefix`` [B * G, s]: G
        candidate prefixes (beams) per user, user-major, all reading the same memory. The
        whole prefix is decoded: the reference that ``decode_step`` reproduces."""
        level = prefix.shape[1]
        states = self._decode(memory, self._decoder_inputs(prefix))
        return self.code_heads[level](states[:, -1]).float()

    def decode_step(
        self, memory: DecoderMemory, level: int, last_code: Tensor | None, cache: DecoderCache | None
    ) -> tuple[Tensor, DecoderCache]:
        """``next_code_logits`` one token at a time: float32 logits [R, code_sizes[level]] for
        R rows (user-major, as there) whose code at ``level - 1`` is ``last_code`` [R] (None at
        level 0: the BOS token) and whose earlier tokens are in ``cache``. The caller reorders
        the returned cache when beams change parents (``DecoderCache.select``)."""
        if last_code is None:  # level 0
            x = self.bos.expand(memory.mask.shape[0], 1, -1)
        else:
            x = self.code_emb(last_code + self.offsets[level - 1])[:, None]
        x = self.dropout(self.dec_in_norm(x + self.step_emb.weight[level]))
        kv = []
        with self._blocks_precision(x):
            for layer, block in enumerate(self.decoder_blocks):
                x, layer_kv = block.step(x, cache.kv[layer] if cache is not None else None, memory, layer)
                kv.append(layer_kv)
        return self.code_heads[level](self.dec_norm(x[:, 0].float())).float(), DecoderCache(kv)

    def item_vectors(self, text: Tensor, rows: Tensor | None = None) -> Tensor:
        """Unit-norm dense vectors [N, d] of items with text embeddings ``text`` [N, D] at
        catalog ``rows`` (None: from text alone, as for an item the model never saw)."""
        if self.text is None:
            raise ConfigError("model.mode=tiger has no dense head; use generative retrieval")
        return F.normalize(self.text(text, rows), dim=-1)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        """Mean losses over every slot with a target: ``sid`` (CE over the target's codes)
        unless dense mode, ``dense`` (CE of cosine/temperature over the in-set candidates)
        unless tiger mode, and their weighted ``total``. A loss the mode does not train is
        absent, not zero."""
        memory, padding = self._encode_tokens(batch.history, batch.items)
        has_target = batch.target >= 0
        losses: dict[str, Tensor] = {}
        total = memory.new_zeros((), dtype=torch.float32)
        if self.generative:
            losses["sid"] = self._sid_loss(memory, padding, batch, has_target)
            total = total + self.cfg.w_sid * losses["sid"]
        if self.dense:
            n_codes = len(self.code_sizes)
            queries = self._query(memory[:, n_codes - 1 :: n_codes][has_target])  # [M, d]
            vectors = self.item_vectors(batch.items.text[batch.candidates], batch.candidates)
            logits = (queries @ vectors.T).float() / self.cfg.temperature
            losses["dense"] = F.cross_entropy(logits, batch.candidate_target[has_target])
            total = total + self.cfg.w_dense * losses["dense"]
        losses["total"] = total
        return losses

    def _sid_loss(self, memory: Tensor, padding: Tensor, batch: Batch, has_target: Tensor) -> Tensor:
        """Teacher-forced decoding of every target slot's codes in one pass per user: slot
        t's C decoder tokens are causal among themselves and read the memory of real items
        up to t. Only slots that carry a target in some row are decoded."""
        slots = torch.nonzero(has_target.any(0)).flatten()  # [S]
        users, n_codes = len(batch.target), len(self.code_sizes)
        codes = batch.items.sid[batch.target[:, slots].clamp_min(0)]  # [B, S, C]
        x = self._decoder_inputs(codes[..., :-1].flatten(0, 1))  # [B * S, C, d]
        x = x.view(users, len(slots) * n_codes, -1)
        group = torch.arange(len(slots), device=x.device).repeat_interleave(n_codes)
        step = torch.arange(n_codes, device=x.device).repeat(len(slots))
        self_mask = (group[:, None] == group[None, :]) & (step[:, None] >= step[None, :])
        token_slot = torch.arange(memory.shape[1], device=x.device) // n_codes
        key_slot = token_slot[None, None, :]
        query_slot = slots[group][None, :, None]
        cross = ((key_slot <= query_slot) & ~padding[:, None, :]) | (key_slot == query_slot)
        memory_kv = DecoderMemory([block.cross_keys_values(memory) for block in self.decoder_blocks], cross[:, None])
        states = self._decode(memory_kv, x, self_mask).view(users, len(slots), n_codes, -1)
        keep = has_target[:, slots]
        states, codes = states[keep], codes[keep]  # [M, C, d], [M, C]
        return torch.stack(
            [F.cross_entropy(head(states[:, level]).float(), codes[:, level]) for level, head in enumerate(self.code_heads)]
        ).mean()
