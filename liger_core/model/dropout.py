"""Dropout whose CPU mask is cheap to draw.

On a CPU, ``nn.Dropout`` draws its mask with ``bernoulli_``: one serial Mersenne-Twister draw
and a float compare per element, at about 10 ns per element on one thread or two. Here each
64-bit draw of the same generator yields three 16-bit chunks, each compared with a threshold,
so the mask costs a third of the draws and no floats: a training step on Beauty runs 5-10 %
faster (``benchmarks/train_step_dropout.py``). The keep probability is ``1 - p`` rounded to a
multiple of 2^-16 (0.8 keeps with 0.800003), and kept entries are scaled by its inverse, so
the expectation is exact.
Off the CPU, the device's fused ``F.dropout`` is faster and is used as is.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEVELS = 1 << 16  # values of one 16-bit chunk
CHUNKS_PER_DRAW = 3  # the low 48 bits of each 64-bit draw
# Where the low 48 bits sit among a 64-bit value's four int16 views.
LOW_CHUNKS = slice(0, 3) if sys.byteorder == "little" else slice(1, 4)


def keep_threshold(p: float) -> int:
    """Kept chunks per 2^16: round((1 - p) * 2^16)."""
    return round((1.0 - p) * LEVELS)


def keep_mask(shape: torch.Size, p: float, device: torch.device | str = "cpu") -> Tensor:
    """Bool mask of ``shape``, each entry True with probability ``keep_threshold(p) / 2^16``,
    independently, from the default generator (so seeding and checkpointed RNG state
    reproduce it)."""
    n = shape.numel()
    draws = torch.randint(0, 1 << 48, (-(-n // CHUNKS_PER_DRAW),), dtype=torch.int64, device=device)
    chunks = draws.view(torch.int16).view(-1, 4)[:, LOW_CHUNKS]  # each uniform over int16
    return (chunks < keep_threshold(p) - LEVELS // 2).flatten()[:n].view(shape)


class Dropout(nn.Module):
    """``nn.Dropout`` with the cheap CPU mask above; no parameters, so checkpoints written
    with ``nn.Dropout`` load unchanged."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        scale = LEVELS / keep_threshold(self.p)
        return torch.where(keep_mask(x.shape, self.p, x.device), x * scale, 0.0)

    def extra_repr(self) -> str:
        return f"p={self.p}"
