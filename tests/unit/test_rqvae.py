"""RQ-VAE: quantizer maths, k-means, dead-code re-seeding, training contract, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from liger_core.ids import rqvae
from liger_core.config import RQVAEConfig
from liger_core.errors import ConfigError, DataError
from liger_core.ids.rqvae import (
    RQVAE,
    ResidualQuantizer,
    kmeans,
    quality_metrics,
    squared_distances,
    train_rqvae,
)

SMALL = dict(
    hidden_dims=[64, 32],
    latent_dim=16,
    levels=2,
    codebook_size=16,
    batch_size=256,
    epochs=4,
    kmeans_iters=10,
    reseed_every=2,
    eval_every=2,
    seed=7,
)


def clustered(n: int = 2000, dim: int = 32, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` topics, like sentence embeddings of a catalog."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim))
    x = centers[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# --- building blocks ---------------------------------------------------------------------


def test_squared_distances_match_brute_force():
    x, c = torch.randn(50, 8), torch.randn(7, 8)
    expected = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    torch.testing.assert_close(squared_distances(x, c), expected, atol=1e-4, rtol=1e-4)


def test_kmeans_recovers_separated_blobs_deterministically():
    means = torch.tensor([[10.0, 0], [-10, 0], [0, 10], [0, -10]])
    x = means.repeat_interleave(100, 0) + 0.1 * torch.randn(400, 2)
    centers = kmeans(x, 4, iters=10, generator=torch.Generator().manual_seed(0))
    nearest = squared_distances(means, centers).min(1).values
    assert (nearest < 0.05).all()
    again = kmeans(x, 4, iters=10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(centers, again)


def test_kmeans_with_fewer_points_than_centers_does_not_crash():
    centers = kmeans(torch.randn(3, 4), 8, iters=5, generator=torch.Generator().manual_seed(0))
    assert centers.shape == (8, 4) and torch.isfinite(centers).all()


def test_quantizer_picks_nearest_codes_and_computes_the_loss():
    rq = ResidualQuantizer(levels=2, codebook_size=3, dim=2, beta=0.25)
    with torch.no_grad():
        rq.codebooks.copy_(
            torch.tensor(
                [
                    [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
                    [[0.1, 0.0], [0.0, 0.1], [-0.1, 0.0]],
                ]
            )
        )
    z = torch.tensor([[0.9, 0.12], [-0.06, 0.97]], requires_grad=True)
    z_q, codes, loss = rq(z)

    assert codes.tolist() == [[1, 1], [2, 2]]  # level-2 residuals (-0.1, 0.12), (-0.06, -0.03)
    torch.testing.assert_close(z_q, torch.tensor([[1.0, 0.1], [-0.1, 1.0]]))
    r1 = z.detach()
    e1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e2 = torch.tensor([[0.0, 0.1], [-0.1, 0.0]])
    # codebook term + beta * commitment term have equal values: (1 + beta) * ||r - e||^2
    expected = 1.25 * F.mse_loss(r1, e1) + 1.25 * F.mse_loss(r1 - e1, e2)
    torch.testing.assert_close(loss, expected)

    # Straight-through: the decoder's gradient reaches z unchanged.
    (z_q * torch.tensor([2.0, 3.0])).sum().backward()
    torch.testing.assert_close(z.grad, torch.tensor([[2.0, 3.0], [2.0, 3.0]]))


def test_quantization_loss_trains_codebook_and_encoder_separately():
    rq = ResidualQuantizer(levels=1, codebook_size=1, dim=2, beta=0.25)
    with torch.no_grad():
        rq.codebooks.zero_()
    z = torch.tensor([[1.0, 2.0]], requires_grad=True)
    _, _, loss = rq(z)
    loss.backward()
    # d/de ||sg(z) - e||^2 / 2 = -(z - e); d/dz beta * ||z - sg(e)||^2 / 2 = beta * (z - e)
    torch.testing.assert_close(rq.codebooks.grad[0, 0], -z.detach()[0])
    torch.testing.assert_close(z.grad, 0.25 * z.detach())


def test_quantizer_gradients_are_bitwise_repeatable():
    """Same input, same codebook gradient: a thread-order scatter would differ run to run."""
    rq = ResidualQuantizer(levels=1, codebook_size=64, dim=16, beta=0.25)
    z = torch.randn(4096, 16, generator=torch.Generator().manual_seed(0))
    grads = set()
    for _ in range(5):
        rq.codebooks.grad = None
        rq(z)[2].backward()
        grads.add(rq.codebooks.grad.numpy().tobytes())
    assert len(grads) == 1


def test_init_kmeans_places_every_code_on_data():
    z = torch.from_numpy(clustered(1000, 16))
    rq = ResidualQuantizer(levels=2, codebook_size=16, dim=16, beta=0.25)
    rq.init_kmeans(z, iters=10, generator=torch.Generator().manual_seed(0))
    rq.train()
    rq(z)
    assert (rq.usage > 0).all()


# --- dead-code re-seeding ----------------------------------------------------------------


def _quantizer_with_dead_codes(z: torch.Tensor) -> ResidualQuantizer:
    """4 codes on the data, 28 far away: the far ones never win an assignment."""
    rq = ResidualQuantizer(levels=1, codebook_size=32, dim=z.shape[1], beta=0.25)
    with torch.no_grad():
        rq.codebooks[0, :4] = z[:4]
        rq.codebooks[0, 4:] = 100.0 + torch.randn(28, z.shape[1])
    return rq


def _fit_codebook(rq: ResidualQuantizer, z: torch.Tensor, reseed: bool) -> int:
    """Train only the codebook for a few passes; return how many codes the last pass used."""
    opt = torch.optim.Adam(rq.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    rq.train()
    for _ in range(5):
        rq.usage.zero_()
        for batch in z.split(250):
            _, _, loss = rq(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if reseed:
            used = int((rq.usage[0] > 0).sum())
            moved = rq.reseed_dead(z, generator)
            assert moved == [32 - used]
    rq.usage.zero_()
    rq(z)
    return int((rq.usage[0] > 0).sum())


def test_dead_codes_stay_dead_without_reseeding():
    z = torch.randn(2000, 8, generator=torch.Generator().manual_seed(1))
    assert _fit_codebook(_quantizer_with_dead_codes(z), z, reseed=False) == 4


def test_reseeding_revives_dead_codes():
    z = torch.randn(2000, 8, generator=torch.Generator().manual_seed(1))
    assert _fit_codebook(_quantizer_with_dead_codes(z), z, reseed=True) >= 28


def test_reseed_moves_only_unused_codes_and_is_deterministic():
    z = torch.randn(500, 8)
    runs = []
    for _ in range(2):
        rq = _quantizer_with_dead_codes(z)
        before = rq.codebooks.detach().clone()
        rq.train()
        rq(z)
        assert rq.reseed_dead(z, torch.Generator().manual_seed(3)) == [28]
        assert torch.equal(rq.codebooks[0, :4], before[0, :4])
        assert (rq.codebooks[0, 4:].abs() < 50).all()  # now on data residuals
        assert (rq.usage == 0).all()  # the count window restarts
        runs.append(rq.codebooks.detach().clone())
    assert torch.equal(runs[0], runs[1])


def _far_kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """A deliberately bad initialisation: one code on the data, the others out of reach."""
    return torch.cat([x.mean(0, keepdim=True), 100.0 + torch.randn(k - 1, x.shape[1])])


def test_training_reseeds_dead_codes(monkeypatch):
    monkeypatch.setattr(rqvae, "kmeans", _far_kmeans)
    x = clustered()
    cfg = RQVAEConfig(**{**SMALL, "epochs": 3, "reseed_every": 1, "eval_every": 1})
    report = train_rqvae(x, cfg)
    assert report.history[0]["epoch"] == 1 and report.history[0]["usage_l1"] <= 2 / 16  # collapsed by construction
    assert report.reseeded[0] == (1, [15, 15])
    assert report.final_metrics["usage_l1"] >= 0.75
    assert report.final_metrics["usage_l2"] >= 0.75


def test_training_without_reseeding_keeps_codes_dead(monkeypatch):
    monkeypatch.setattr(rqvae, "kmeans", _far_kmeans)
    cfg = RQVAEConfig(**{**SMALL, "epochs": 3, "reseed_every": 100, "eval_every": 1})
    report = train_rqvae(clustered(), cfg)
    assert report.reseeded == []
    assert report.final_metrics["usage_l1"] <= 2 / 16


# --- training contract -------------------------------------------------------------------


def test_training_is_deterministic_and_reports_progress():
    x = clustered()
    cfg = RQVAEConfig(**SMALL)
    seen: list[tuple[dict, int]] = []
    report = train_rqvae(x, cfg, log=lambda metrics, epoch: seen.append((metrics, epoch)))
    model_a, model_b = report.model, train_rqvae(x, cfg).model
    codes = model_a.encode_codes(torch.from_numpy(x))
    assert codes.dtype == torch.long and codes.shape == (2000, 2)
    assert torch.equal(codes, model_b.encode_codes(torch.from_numpy(x)))

    assert len(report.losses) == 4
    assert [e for _, e in seen] == [2, 4]
    assert report.history == [{"epoch": float(e), **m} for m, e in seen]
    assert [e for e, _ in report.reseeded] == [2]  # never after the last epoch
    assert report.final_metrics == seen[-1][0]
    assert {"recon_mse", "usage_l1", "perplexity_l2", "collision_share", "loss"} <= set(seen[0][0])
    assert report.final_metrics["loss"] == report.losses[-1]

    other = train_rqvae(x, cfg.model_copy(update={"seed": 8})).model
    assert not torch.equal(codes, other.encode_codes(torch.from_numpy(x)))


def test_training_learns_and_uses_the_codebooks():
    x = clustered()
    cfg = RQVAEConfig(**{**SMALL, "epochs": 60, "reseed_every": 5, "eval_every": 60})
    report = train_rqvae(x, cfg)
    assert report.losses[-1] < report.losses[0]
    assert report.final_metrics["recon_mse"] < 0.5  # scaled units: 1.0 = predicting the mean
    assert report.final_metrics["usage_l1"] >= 0.8
    assert report.final_metrics["usage_l2"] >= 0.8


def test_final_eval_when_epochs_is_not_a_multiple_of_eval_every():
    cfg = RQVAEConfig(**{**SMALL, "epochs": 3, "eval_every": 2})
    report = train_rqvae(clustered(300), cfg)
    assert [h["epoch"] for h in report.history] == [2, 3]


def test_fewer_items_than_codes_trains():
    report = train_rqvae(clustered(10), RQVAEConfig(**{**SMALL, "epochs": 2}))
    assert report.model.encode_codes(torch.from_numpy(clustered(10))).shape == (10, 2)
    assert report.final_metrics["usage_l1"] <= 10 / 16


def test_encode_codes_is_batched_and_restores_mode():
    x = torch.from_numpy(clustered(100))
    model = RQVAE(32, [16], 8, levels=2, codebook_size=4, beta=0.25)
    model.train()
    whole = model.encode_codes(x)
    assert torch.equal(whole, model.encode_codes(x, batch_size=7))
    assert model.training
    assert (model.quantizer.usage == 0).all()  # inference does not count as usage


# --- input validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "embeddings, message",
    [
        (np.zeros((0, 8), np.float32), "empty"),
        (np.zeros(8, np.float32), "2-D"),
        (np.zeros((2, 3, 4), np.float32), "2-D"),
        ([[0.0, 1.0]], "numpy array"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_bad_shapes_are_rejected(embeddings, message):
    with pytest.raises(DataError, match=message):
        train_rqvae(embeddings, RQVAEConfig(**SMALL))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_counted(bad):
    x = clustered(100)
    x[[3, 50], 1] = bad
    with pytest.raises(DataError, match=r"NaN/inf in 2 of 100 rows \(first at row 3\)"):
        train_rqvae(x, RQVAEConfig(**SMALL))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="rqvae.device='cuda' but CUDA is not available"):
        train_rqvae(clustered(10), RQVAEConfig(**{**SMALL, "device": "cuda"}))


# --- quality metrics ---------------------------------------------------------------------


def entropy(shares: list[float]) -> float:
    return -sum(p * math.log(p) for p in shares)


def test_quality_metrics_on_hand_made_codes():
    codes = np.array([[0, 1], [0, 1], [0, 2], [1, 3], [0, 1]])
    m = quality_metrics(codes, codebook_size=4, recon_mse=0.5)
    assert m["recon_mse"] == 0.5
    assert m["usage_l1"] == 0.5 and m["usage_l2"] == 0.75
    assert m["perplexity_l1"] == pytest.approx(math.exp(entropy([0.8, 0.2])))
    assert m["perplexity_l2"] == pytest.approx(math.exp(entropy([0.6, 0.2, 0.2])))
    assert m["collision_share"] == pytest.approx(3 / 5)  # the three (0, 1) items
    assert m["max_collision_group"] == 3


def test_quality_metrics_without_collisions():
    m = quality_metrics(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), 2, 0.0)
    assert m["collision_share"] == 0 and m["max_collision_group"] == 1
    assert m["perplexity_l1"] == pytest.approx(2) and m["usage_l2"] == 1


def test_quality_metrics_rejects_empty_codes():
    with pytest.raises(DataError, match="non-empty"):
        quality_metrics(np.zeros((0, 3), np.int64), 4, 0.0)
