"""Transformer parts of LigerModel: attention, pre-norm blocks, the decoder's cached
memory and keys/values, and the causal item mask. Sizes are in the shape comments; a block
never knows about items or codes."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liger_core.model.dropout import Dropout


def mlp(d_in: int, d_out: int, d_hidden: int | None = None) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden or d_out), nn.GELU(), nn.Linear(d_hidden or d_out, d_out))


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

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor], mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """``mask``: bool, True where a query may attend a key."""
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.heads, -1).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, *kv, attn_mask=mask, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(b, t, d))

    def one_query(self, x: Tensor, kv: tuple[Tensor, Tensor]) -> Tensor:
        """``forward`` for one query token per row ``x`` [R, 1, d] and no mask, elementwise:
        the fused kernel's setup per (row, head) costs more than a handful of keys."""
        rows, _, d = x.shape
        q = self.q(x).view(rows, self.heads, 1, -1)
        keys, values = kv
        weights = ((q * keys).sum(-1, keepdim=True) * q.shape[-1] ** -0.5).softmax(2)
        return self.out((weights * values).sum(2).reshape(rows, 1, d))


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
        self.norm3, self.ff = nn.LayerNorm(d_model), mlp(d_model, d_model, ff_dim)
        self.dropout = Dropout(dropout)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, causal: bool = False, memory: DecoderMemory | None = None, layer: int = 0
    ) -> Tensor:
        """With ``memory`` of B users, ``x`` holds B * G rows, user-major (G beams each);
        the G rows of a user are folded into one query sequence for cross-attention, so the
        memory is never copied per beam."""
        h = self.norm1(x)
        x = x + self.dropout(self.attn(h, self.attn.keys_values(h), mask, causal))
        return self._cross_and_ff(x, memory, layer)

    def cross_keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values of the encoder ``memory`` (decoder blocks only)."""
        if self.cross is None:
            raise TypeError("an encoder block has no cross-attention")
        return self.cross.keys_values(memory)

    def step(
        self, x: Tensor, past: tuple[Tensor, Tensor] | None, memory: DecoderMemory, layer: int
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``forward`` for one new token per row, ``x`` [R, 1, d], whose row's earlier tokens
        left their self-attention keys/values in ``past`` ([R, heads, s, d_head] each): the
        last position of the causal pass without recomputing the prefix. Returns the token's
        output and the keys/values including it."""
        h = self.norm1(x)
        k, v = self.attn.keys_values(h)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        x = x + self.dropout(self.attn.one_query(h, (k, v)))
        return self._cross_and_ff(x, memory, layer), (k, v)

    def _cross_and_ff(self, x: Tensor, memory: DecoderMemory | None, layer: int) -> Tensor:
        if self.cross is not None and self.norm2 is not None and memory is not None:
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


class DecoderCache(NamedTuple):
    """Self-attention keys and values of the tokens each row has decoded so far."""

    kv: list[tuple[Tensor, Tensor]]  # per decoder layer: [R, heads, s, d_head] keys, values

    def select(self, users: int, rows: Tensor) -> DecoderCache:
        """The cache for ``rows`` [users, G]: user u's new g-th row continues its old row
        rows[u, g] (old rows user-major, any number per user)."""

        def pick(t: Tensor) -> Tensor:
            per_user = t.view(users, -1, *t.shape[1:])
            return per_user[torch.arange(users, device=t.device)[:, None], rows].flatten(0, 1)

        return DecoderCache([(pick(k), pick(v)) for k, v in self.kv])


def causal_item_mask(present: Tensor, tokens_per_item: int) -> Tensor:
    """[B, 1, T, T] bool, T = W * tokens_per_item: a token may attend the tokens of real items
    at its own slot or earlier, so the state at slot t sees only the history up to t. A
    padding token attends itself (a row with no key would be NaN)."""
    slot = torch.arange(present.shape[1], device=present.device)
    allowed = (slot[None, :, None] >= slot[None, None, :]) & present[:, None, :]
    allowed = allowed | torch.eye(len(slot), dtype=torch.bool, device=present.device)
    expand = tokens_per_item
    return allowed.repeat_interleave(expand, 1).repeat_interleave(expand, 2)[:, None]
