"""RQ-VAE that turns item embeddings into short tuples of codes (TIGER semantic IDs).

An MLP encoder maps an embedding to a latent vector; a residual quantizer replaces it by
a sum of ``levels`` codebook vectors, one per level, each quantizing what the previous
levels left over; an MLP decoder reconstructs the embedding from that sum. The chosen
code indices are the item's semantic ID prefix.

Codebook collapse (most items landing on a few codes) is the usual failure, so the
codebooks start from k-means on real residuals and codes left unused for a while are
moved onto residuals that the data actually produces (DESIGN §5).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liger_core.config import RQVAEConfig
from liger_core.errors import ConfigError, DataError
from liger_core.progress import LogFn, Progress

# Rows used for k-means initialisation and dead-code re-seeding: enough to place 256 codes
# well, small enough that k-means stays a few seconds on a CPU for a million-item catalog.
SAMPLE_ROWS = 65_536
# Rows per forward pass when encoding a whole catalog, so 1M items never sit in memory as
# hidden activations at once.
ENCODE_BATCH = 16_384


def squared_distances(x: Tensor, centers: Tensor) -> Tensor:
    """[N, K] squared L2 distances, via one matmul instead of an [N, K, D] difference."""
    return torch.addmm(x.pow(2).sum(1, keepdim=True) + centers.pow(2).sum(1), x, centers.T, alpha=-2.0)


def kmeans(x: Tensor, k: int, iters: int, generator: torch.Generator) -> Tensor:
    """k-means++ seeding, then ``iters`` Lloyd steps; returns [k, D] centers.

    Deterministic for a given ``generator`` (a CPU generator). With fewer distinct points
    than ``k`` some centers coincide; re-seeding deals with those codes later.
    """
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=generator).item())
    centers = x.new_empty(k, x.shape[1])
    centers[0] = x[first]
    closest = squared_distances(x, centers[:1]).squeeze(1)
    for i in range(1, k):
        weights = closest.clamp_min(0).cpu().double()
        if weights.sum() > 0:
            pick = int(torch.multinomial(weights, 1, generator=generator).item())
        else:  # every point already is a center
            pick = int(torch.randint(n, (1,), generator=generator).item())
        centers[i] = x[pick]
        closest = torch.minimum(closest, squared_distances(x, centers[i : i + 1]).squeeze(1))
    for _ in range(iters):
        assign = squared_distances(x, centers).argmin(1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        filled = counts > 0  # an empty cluster keeps its previous center
        centers[filled] = sums[filled] / counts[filled].unsqueeze(1).to(x.dtype)
    return centers


class ResidualQuantizer(nn.Module):
    """``levels`` codebooks of ``codebook_size`` x ``dim``; level l quantizes the residual
    left after levels < l, so the code tuple refines coarse-to-fine."""

    usage: Tensor  # [levels, codebook_size] buffer

    def __init__(self, levels: int, codebook_size: int, dim: int, beta: float) -> None:
        super().__init__()
        self.levels, self.codebook_size, self.beta = levels, codebook_size, beta
        self.codebooks = nn.Parameter(torch.randn(levels, codebook_size, dim) / dim**0.5)
        # Per-code assignment counts since the last re-seeding (training batches only).
        self.register_buffer("usage", torch.zeros(levels, codebook_size, dtype=torch.long), persistent=False)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (z_q with straight-through gradient, codes [N, levels], quantization loss).

        Loss per level: ||sg(r) - e||^2 pulls the code toward the residual,
        beta * ||r - sg(e)||^2 commits the encoder to its code.
        """
        residual, quantized = z, torch.zeros_like(z)
        codes, loss = [], z.new_zeros(())
        for level, codebook in enumerate(self.codebooks):
            idx = squared_distances(residual.detach(), codebook.detach()).argmin(1)
            # index_select, not codebook[idx]: the latter's CPU backward accumulates in
            # thread order, which made two runs with one seed give different codes.
            chosen = codebook.index_select(0, idx)
            loss = loss + F.mse_loss(chosen, residual.detach())
            loss = loss + self.beta * F.mse_loss(residual, chosen.detach())
            if self.training:
                self.usage[level] += torch.bincount(idx, minlength=self.codebook_size)
            quantized = quantized + chosen.detach()
            residual = residual - chosen.detach()
            codes.append(idx)
        z_q = z + (quantized - z).detach()
        return z_q, torch.stack(codes, 1), loss

    @torch.no_grad()
    def init_kmeans(self, z: Tensor, iters: int, generator: torch.Generator) -> None:
        """Level 1 from k-means on z, level 2 on z - e1, ...: every code starts where data is."""
        residual = z
        for codebook in self.codebooks:
            codebook.copy_(kmeans(residual, self.codebook_size, iters, generator))
            residual = residual - codebook[squared_distances(residual, codebook).argmin(1)]
        self.usage.zero_()

    @torch.no_grad()
    def reseed_dead(self, z: Tensor, generator: torch.Generator) -> list[int]:
        """Move every code unused since the last call onto a random residual of ``z`` at its
        level; returns how many codes were moved per level and restarts the usage count.

        Levels go in order so that level l draws from residuals of the already re-seeded
        levels < l. A dead code gets no gradient, so without this it would never come back.
        """
        moved, residual = [], z
        for level, codebook in enumerate(self.codebooks):
            dead = (self.usage[level] == 0).nonzero().squeeze(1)
            if len(dead):
                rows = torch.randint(residual.shape[0], (len(dead),), generator=generator)
                codebook[dead] = residual[rows.to(residual.device)]
            moved.append(len(dead))
            residual = residual - codebook[squared_distances(residual, codebook).argmin(1)]
        self.usage.zero_()
        return moved


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAEOutput(NamedTuple):
    x_hat: Tensor
    codes: Tensor
    loss: Tensor
    recon_loss: Tensor
    quant_loss: Tensor


class RQVAE(nn.Module):
    """MLP encoder -> residual quantizer -> mirrored MLP decoder.

    Two departures from the plain TIGER recipe keep the codebooks alive under AdamW, whose
    codebook steps are ~lr per entry whatever the data scale:
    inputs are centred and divided by one global scale (``fit_scaling``), so unit-norm
    embeddings with entries ~0.05 do not sit below the step size; and the latent is
    L2-normalised, so the straight-through encoder cannot inflate it faster than the
    codebooks can follow (it grew ~10x in a few epochs on clustered data without this).
    """

    shift: Tensor  # [input_dim] buffers set by fit_scaling
    scale: Tensor

    def __init__(
        self,
        input_dim: int,
        hidden_dims: list[int],
        latent_dim: int,
        levels: int,
        codebook_size: int,
        beta: float,
    ) -> None:
        super().__init__()
        dims = [input_dim, *hidden_dims, latent_dim]
        self.register_buffer("shift", torch.zeros(input_dim))
        self.register_buffer("scale", torch.ones(()))
        self.encoder = _mlp(dims)
        self.quantizer = ResidualQuantizer(levels, codebook_size, latent_dim, beta)
        self.decoder = _mlp(dims[::-1])

    @classmethod
    def from_config(cls, input_dim: int, cfg: RQVAEConfig) -> RQVAE:
        return cls(input_dim, cfg.hidden_dims, cfg.latent_dim, cfg.levels, cfg.codebook_size, cfg.beta)

    @torch.no_grad()
    def fit_scaling(self, x: Tensor) -> None:
        """Centre on the mean; one scale for all dimensions so distances keep their shape."""
        self.shift.copy_(x.mean(0))
        spread = (x - self.shift).pow(2).mean().sqrt()
        self.scale.copy_(spread if spread > 0 else torch.ones_like(spread))

    def _scaled(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale

    def encode(self, x: Tensor) -> Tensor:
        """Unit-norm latent of raw embeddings."""
        return F.normalize(self.encoder(self._scaled(x)), dim=1)

    def forward(self, x: Tensor) -> RQVAEOutput:
        """``recon_loss`` is the MSE of scaled inputs: 1.0 is no better than the mean."""
        x_scaled = self._scaled(x)
        z_q, codes, quant_loss = self.quantizer(self.encode(x))
        x_hat_scaled = self.decoder(z_q)
        recon_loss = F.mse_loss(x_hat_scaled, x_scaled)
        x_hat = x_hat_scaled * self.scale + self.shift
        return RQVAEOutput(x_hat, codes, recon_loss + quant_loss, recon_loss, quant_loss)

    @torch.no_grad()
    def encode_codes(self, x: Tensor, batch_size: int = ENCODE_BATCH) -> Tensor:
        """Codes [N, levels] (CPU LongTensor) in eval mode, ``batch_size`` rows at a time."""
        return self.evaluate(x, batch_size)[0]

    @torch.no_grad()
    def evaluate(self, x: Tensor, batch_size: int = ENCODE_BATCH) -> tuple[Tensor, float]:
        """Codes for every row (CPU) and the reconstruction MSE over all of them."""
        was_training = self.training
        self.eval()
        device = self.scale.device
        codes, squared_error = [], 0.0
        for start in range(0, x.shape[0], batch_size):
            batch = x[start : start + batch_size].to(device)
            out = self(batch)
            codes.append(out.codes.cpu())
            squared_error += out.recon_loss.item() * batch.numel()
        self.train(was_training)
        return torch.cat(codes), squared_error / max(x.numel(), 1)


def quality_metrics(codes: np.ndarray, codebook_size: int, recon_mse: float) -> dict[str, float]:
    """How well the codes spread the catalog; levels are numbered from 1.

    usage_l{i}: distinct codes used / codebook_size. perplexity_l{i}: exp(entropy) of the
    code distribution, i.e. the number of equally used codes it is worth. collision_share:
    items whose full tuple some other item also has. max_collision_group: most items on
    one tuple (the collision code must be able to count that high).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise DataError(f"codes must be a non-empty [items, levels] array, got {codes.shape}")
    metrics = {"recon_mse": float(recon_mse)}
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        p = counts[counts > 0] / codes.shape[0]
        metrics[f"usage_l{level + 1}"] = float((counts > 0).sum() / codebook_size)
        metrics[f"perplexity_l{level + 1}"] = float(np.exp(-(p * np.log(p)).sum()))
    _, inverse, group_sizes = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    metrics["collision_share"] = float((group_sizes[inverse.reshape(-1)] > 1).mean())
    metrics["max_collision_group"] = float(group_sizes.max())
    return metrics


@dataclass
class RQVAETrainResult:
    """What a run produced, named as the recommender's ``TrainResult``: the model, one
    ``history`` entry per evaluation (with its ``epoch``) and the wall-clock seconds, plus
    what only the RQ-VAE has (loss per epoch, dead codes re-seeded)."""

    model: RQVAE  # trained, in eval mode
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    history: list[dict[str, float]] = field(default_factory=list)  # {"epoch": e, **quality metrics}
    reseeded: list[tuple[int, list[int]]] = field(default_factory=list)  # (epoch, codes re-seeded per level)
    seconds: float = 0.0

    @property
    def final_metrics(self) -> dict[str, float]:
        """The last evaluation's metrics (always after the last epoch), without its epoch."""
        return {k: v for k, v in self.history[-1].items() if k != "epoch"} if self.history else {}


def _validated(embeddings: np.ndarray) -> np.ndarray:
    if not isinstance(embeddings, np.ndarray):
        raise DataError(f"embeddings must be a numpy array, got {type(embeddings).__name__}")
    if embeddings.size == 0:
        raise DataError(f"embeddings are empty (shape {embeddings.shape}): nothing to train on")
    if embeddings.ndim != 2:
        raise DataError(f"embeddings must be 2-D [items, dim], got shape {embeddings.shape}")
    try:
        embeddings = embeddings.astype(np.float32, copy=False)
    except (TypeError, ValueError):
        raise DataError(f"embeddings must be numeric, got dtype {embeddings.dtype}") from None
    bad = ~np.isfinite(embeddings).all(1)
    if bad.any():
        raise DataError(
            f"embeddings contain NaN/inf in {int(bad.sum())} of {len(embeddings)} rows (first at row {int(bad.argmax())})"
        )
    return np.ascontiguousarray(embeddings)


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"rqvae.device={name!r} but CUDA is not available on this machine; use the cpu profile or --set rqvae.device=cpu"
        )
    return torch.device(name)


def _sample(x: Tensor, generator: torch.Generator) -> Tensor:
    if x.shape[0] <= SAMPLE_ROWS:
        return x
    return x[torch.randperm(x.shape[0], generator=generator)[:SAMPLE_ROWS].to(x.device)]


def _evaluate(model: RQVAE, x: Tensor, cfg: RQVAEConfig, loss: float) -> dict[str, float]:
    """``quality_metrics`` over the whole catalog plus the epoch's training ``loss``."""
    codes, recon_mse = model.evaluate(x)
    return {**quality_metrics(codes.numpy(), cfg.codebook_size, recon_mse), "loss": loss}


def _epoch(model: RQVAE, optimizer: torch.optim.Optimizer, x: Tensor, batch_size: int, generator: torch.Generator) -> float:
    """One pass over ``x`` in random batches; the mean loss per row."""
    model.train()
    total = 0.0
    for idx in torch.randperm(len(x), generator=generator).split(batch_size):
        loss = model(x[idx.to(x.device)]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(x)


def train_rqvae(embeddings: np.ndarray, cfg: RQVAEConfig, log: LogFn | None = None) -> RQVAETrainResult:
    """Train an RQ-VAE on [N, D] float32 embeddings; same ``cfg.seed`` -> same codes.

    Every ``eval_every`` epochs and after the last one, ``log(metrics, epoch)`` gets
    ``quality_metrics`` over the whole catalog plus that epoch's ``loss`` (the recommender
    trainer's callback shape). Every ``reseed_every`` epochs (not after the last) dead codes
    are re-seeded.
    """
    data = _validated(embeddings)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    x = torch.from_numpy(data).to(device)
    model = RQVAE.from_config(x.shape[1], cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    result, started = RQVAETrainResult(model), time.perf_counter()
    with torch.no_grad():
        sample = _sample(x, generator)
        model.fit_scaling(sample)
        model.quantizer.init_kmeans(model.encode(sample), cfg.kmeans_iters, generator)

    progress = Progress("rqvae", cfg.epochs, "epoch")
    for epoch in range(1, cfg.epochs + 1):
        result.losses.append(_epoch(model, optimizer, x, cfg.batch_size, generator))
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            metrics = _evaluate(model, x, cfg, result.losses[-1])
            result.history.append({"epoch": float(epoch), **metrics})
            if log is not None:
                log(metrics, epoch)
        progress.update(epoch, loss=result.losses[-1], collision_share=result.final_metrics.get("collision_share"))
        if epoch % cfg.reseed_every == 0 and epoch < cfg.epochs:
            with torch.no_grad():
                z = model.encode(_sample(x, generator))
            result.reseeded.append((epoch, model.quantizer.reseed_dead(z, generator)))

    progress.close()
    model.eval()
    result.seconds = time.perf_counter() - started
    return result
