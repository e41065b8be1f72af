"""LIGER: one encoder-decoder Transformer trained for generative and dense retrieval.

The encoder reads a user's history as semantic-ID tokens (C tokens per item). Its state at
the last token becomes a unit-norm dense query, scored against projected item text
embeddings (dense retrieval). The decoder generates the next item's C codes from that
memory (generative retrieval). Modes (DESIGN §5): ``tiger`` trains only the code decoder and
never reads text, ``dense`` only the dense head, ``liger`` both. Parts a mode does not use
are not built, so every parameter gets a gradient (which DistributedDataParallel needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liger_core.catalog import Catalog
from liger_core.config import ModelConfig
from liger_core.errors import ConfigError, DataError

MODES = ("tiger", "dense", "liger")


class Items(NamedTuple):
    """Item features indexed by item_idx, kept on the model's device."""

    sid: Tensor  # [N, C] long
    text: Tensor  # [N, D] float

    @classmethod
    def from_catalog(cls, catalog: Catalog, device: torch.device | str = "cpu") -> Items:
        return cls(torch.from_numpy(catalog.sid).to(device),
                   torch.from_numpy(catalog.text).to(device))


@dataclass
class Batch:
    """Training examples. ``history``: [B, H] item_idx, right-aligned, -1 = padding.
    ``candidates``: item_idx the dense loss ranks over (the in-set items);
    ``candidate_target``: [B] position of each target in ``candidates``."""

    history: Tensor
    target: Tensor
    items: Items
    candidates: Tensor
    candidate_target: Tensor


class Encoded(NamedTuple):
    memory: Tensor  # [B, T, d] encoder states, T = H * C
    padding: Tensor  # [B, T] bool, True where the token is padding
    query: Tensor | None  # [B, d] unit-norm dense query (None in tiger mode)


def _mlp(d_in: int, d_out: int, d_hidden: int | None = None) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden or d_out), nn.GELU(),
                         nn.Linear(d_hidden or d_out, d_out))


class Attention(nn.Module):
    """Multi-head attention through scaled_dot_product_attention (fused kernels on CPU and
    GPU). Keys/values are projected separately so that the decoder can project the encoder
    memory once per user and reuse it for every beam and step."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def keys_values(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """[B, heads, S, d_head] keys and values of ``context`` [B, S, d]."""
        b, s, _ = context.shape
        k, v = self.kv(context).view(b, s, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor], mask: Tensor | None = None,
                causal: bool = False) -> Tensor:
        """``mask``: bool, True where a query may attend a key."""
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.heads, -1).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, *kv, attn_mask=mask, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm Transformer block: self-attention, optional cross-attention, feed-forward.

    Dropout sits on the residual branches only (as in GPT-2), not on attention weights:
    on a CPU, dropout over the [B, heads, T, T] weights costs more than the attention itself.
    """

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float, cross: bool) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d_model), Attention(d_model, heads)
        self.norm2 = nn.LayerNorm(d_model) if cross else None
        self.cross = Attention(d_model, heads) if cross else None
        self.norm3, self.ff = nn.LayerNorm(d_model), _mlp(d_model, d_model, ff_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None, causal: bool = False,
                memory: DecoderMemory | None = None, layer: int = 0) -> Tensor:
        """With ``memory`` of B users, ``x`` holds B * G rows, user-major (G beams each);
        the G rows of a user are folded into one query sequence for cross-attention, so the
        memory is never copied per beam."""
        h = self.norm1(x)
        x = x + self.dropout(self.attn(h, self.attn.keys_values(h), mask, causal))
        if self.cross is not None and memory is not None:
            rows, t, d = x.shape
            users = memory.mask.shape[0]
            h = self.norm2(x).reshape(users, rows // users * t, d)
            y = self.cross(h, memory.kv[layer], memory.mask)
            x = x + self.dropout(y.reshape(rows, t, d))
        return x + self.dropout(self.ff(self.norm3(x)))


class DecoderMemory(NamedTuple):
    """Encoder output as the decoder reads it, computed once per user."""

    kv: list[tuple[Tensor, Tensor]]  # per decoder layer: cross-attention keys, values
    mask: Tensor  # [B, 1, 1, T] bool, True for real (non-padding) tokens


class LigerModel(nn.Module):
    """Item i at history slot p contributes C tokens (one per code level l):
    code embedding + level embedding + position embedding of p + MLP(text of i)."""

    def __init__(
        self,
        code_sizes: Sequence[int],
        text_dim: int,
        mode: str = "liger",
        d_model: int = 128,
        heads: int = 4,
        encoder_layers: int = 6,
        decoder_layers: int = 6,
        ff_dim: int = 1024,
        dropout: float = 0.2,
        max_history: int = 20,
        temperature: float = 0.07,
        w_sid: float = 1.0,
        w_dense: float = 1.0,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"model.mode must be one of {MODES}, got {mode!r}")
        if d_model % heads:
            raise ConfigError(
                f"model.d_model ({d_model}) must be divisible by model.heads ({heads})")
        self.mode, self.text_dim = mode, text_dim
        self.code_sizes = tuple(int(s) for s in code_sizes)
        self.max_history, self.temperature = max_history, temperature
        self.w_sid, self.w_dense = w_sid, w_dense
        n_codes = len(self.code_sizes)

        # One table for all levels; level l's code k is row offsets[l] + k.
        offsets = torch.tensor([0, *self.code_sizes[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.code_emb = nn.Embedding(sum(self.code_sizes), d_model)
        self.level_emb = nn.Embedding(n_codes, d_model)
        self.pos_emb = nn.Embedding(max_history, d_model)
        self.text_in = _mlp(text_dim, d_model) if mode != "tiger" else None
        self.in_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

        self.encoder = nn.ModuleList(Block(d_model, heads, ff_dim, dropout, cross=False)
                                     for _ in range(encoder_layers))
        self.enc_norm = nn.LayerNorm(d_model)
        if mode != "dense":
            self.bos = nn.Parameter(torch.randn(d_model) * 0.02)
            self.step_emb = nn.Embedding(n_codes, d_model)
            self.dec_in_norm = nn.LayerNorm(d_model)
            self.decoder = nn.ModuleList(Block(d_model, heads, ff_dim, dropout, cross=True)
                                         for _ in range(decoder_layers))
            self.dec_norm = nn.LayerNorm(d_model)
            self.heads = nn.ModuleList(nn.Linear(d_model, size) for size in self.code_sizes)
        if mode != "tiger":
            self.query_head = nn.Linear(d_model, d_model)
            self.item_head = _mlp(text_dim, d_model)

    @classmethod
    def from_config(cls, cfg: ModelConfig, code_sizes: Sequence[int], text_dim: int) -> LigerModel:
        return cls(code_sizes, text_dim, cfg.mode, cfg.d_model, cfg.heads, cfg.encoder_layers,
                   cfg.decoder_layers, cfg.ff_dim, cfg.dropout, cfg.max_history, cfg.temperature,
                   cfg.w_sid, cfg.w_dense)

    @property
    def generative(self) -> bool:
        return self.mode != "dense"

    @property
    def dense(self) -> bool:
        return self.mode != "tiger"

    def encode(self, history: Tensor, items: Items) -> Encoded:
        """Encoder memory over the history's tokens (item-major, level-minor) and the query."""
        width = history.shape[1]
        if width > self.max_history:
            raise DataError(
                f"history has {width} items; the model takes at most {self.max_history}")
        present = history >= 0
        idx = history.clamp_min(0)
        x = self.code_emb(items.sid[idx] + self.offsets)  # [B, H, C, d]
        x = x + self.level_emb.weight
        positions = torch.arange(self.max_history - width, self.max_history, device=history.device)
        x = x + self.pos_emb(positions)[:, None]
        if self.text_in is not None:
            x = x + self.text_in(items.text[idx])[:, :, None]
        x = self.dropout(self.in_norm(x)).flatten(1, 2)  # [B, H * C, d]
        padding = (~present).repeat_interleave(len(self.code_sizes), dim=1)
        attend = ~padding[:, None, None, :]
        for block in self.encoder:
            x = block(x, attend)
        memory = self.enc_norm(x)
        query = None
        if self.dense:  # right alignment: the last token belongs to the latest item
            query = F.normalize(self.query_head(memory[:, -1]), dim=-1)
        return Encoded(memory, padding, query)

    def decoder_memory(self, encoded: Encoded) -> DecoderMemory:
        """Cross-attention keys/values of every decoder layer, for ``next_code_logits``."""
        kv = [block.cross.keys_values(encoded.memory) for block in self.decoder]
        return DecoderMemory(kv, ~encoded.padding[:, None, None, :])

    def _decode(self, memory: DecoderMemory, prefix: Tensor) -> Tensor:
        """Decoder states [B * G, s + 1, d] for inputs BOS, prefix codes 0..s-1."""
        steps = prefix.shape[1] + 1
        codes = self.code_emb(prefix + self.offsets[: steps - 1])
        x = torch.cat([self.bos.expand(len(prefix), 1, -1), codes], dim=1)
        x = self.dropout(self.dec_in_norm(x + self.step_emb.weight[:steps]))
        for layer, block in enumerate(self.decoder):
            x = block(x, causal=True, memory=memory, layer=layer)
        return self.dec_norm(x)

    def next_code_logits(self, memory: DecoderMemory, prefix: Tensor) -> Tensor:
        """Float32 logits [B * G, code_sizes[s]] of code s given ``prefix`` [B * G, s]: G
        candidate prefixes (beams) per user, user-major, all reading the same memory."""
        level = prefix.shape[1]
        return self.heads[level](self._decode(memory, prefix)[:, -1]).float()

    def item_vectors(self, text: Tensor) -> Tensor:
        """Unit-norm dense vectors [N, d] of items with text embeddings ``text`` [N, D]."""
        if not self.dense:
            raise ConfigError("model.mode=tiger has no dense head; use generative retrieval")
        return F.normalize(self.item_head(text), dim=-1)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        """Losses: ``sid`` (mean CE over the target's codes) unless dense mode, ``dense``
        (CE of cosine/temperature over candidates) unless tiger mode, and their weighted
        ``total``. A loss the mode does not train is absent, not zero."""
        enc = self.encode(batch.history, batch.items)
        losses: dict[str, Tensor] = {}
        total = enc.memory.new_zeros((), dtype=torch.float32)
        if self.generative:
            codes = batch.items.sid[batch.target]
            states = self._decode(self.decoder_memory(enc), codes[:, :-1])
            losses["sid"] = torch.stack([
                F.cross_entropy(head(states[:, level]).float(), codes[:, level])
                for level, head in enumerate(self.heads)
            ]).mean()
            total = total + self.w_sid * losses["sid"]
        if self.dense:
            vectors = self.item_vectors(batch.items.text[batch.candidates])
            logits = (enc.query @ vectors.T).float() / self.temperature
            losses["dense"] = F.cross_entropy(logits, batch.candidate_target)
            total = total + self.w_dense * losses["dense"]
        losses["total"] = total
        return losses

    loss = forward
